package tests

import (
	"database/sql"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"gorm.io/gorm"

	"github.com/sessionauth/api/services"
)

// newProxiedServer starts an instance whose Redis is reached through a fault proxy.
func newProxiedServer(t *testing.T, settings env) (*testServer, *faultProxy) {
	t.Helper()
	deps := newDeps(t, settings)
	proxy, proxied := newFaultProxy(t, deps.settings["REDIS_URL"])
	deps.settings["REDIS_URL"] = proxied
	return deps.start(t), proxy
}

// outageBound is how long a request may take to answer 503 when a dependency
// with per-call timeout is down or frozen: the wait for a connection, one
// dial and one command, each bounded by it, plus slack for -race.
func outageBound(timeout time.Duration) time.Duration { return 3*timeout + 700*time.Millisecond }

// call is one request of a scenario.
type call struct {
	c            *client
	method, path string
	body         any
}

// timedResponse is an answer and how long it took.
type timedResponse struct {
	call
	res     *response
	elapsed time.Duration
}

// doAll sends every call at once and returns the answers in order.
func doAll(calls []call) []timedResponse {
	out := make([]timedResponse, len(calls))
	var wg sync.WaitGroup
	for i, cl := range calls {
		wg.Go(func() {
			start := time.Now()
			res := cl.c.do(cl.method, cl.path, cl.body)
			out[i] = timedResponse{call: cl, res: res, elapsed: time.Since(start)}
		})
	}
	wg.Wait()
	return out
}

// want503InTime fails unless every answer is 503 service_unavailable with a
// Retry-After of at least 1 s, within bound.
func want503InTime(t *testing.T, answers []timedResponse, bound time.Duration) {
	t.Helper()
	for _, a := range answers {
		where := a.method + " " + a.path
		if a.res.Status != 503 || a.res.Body["error"] != "service_unavailable" {
			t.Errorf("%s: got %d %s, want 503 service_unavailable", where, a.res.Status, a.res.Raw)
			continue
		}
		if n, err := strconv.Atoi(a.res.Header.Get("Retry-After")); err != nil || n < 1 {
			t.Errorf("%s: got Retry-After %q, want whole seconds >= 1", where, a.res.Header.Get("Retry-After"))
		}
		if a.elapsed > bound {
			t.Errorf("%s: answered 503 after %v, want within %v", where, a.elapsed.Round(time.Millisecond), bound)
		}
	}
}

// wantReadiness fails unless /readyz answers status with these checks.
func wantReadiness(t *testing.T, c *client, status int, checks map[string]string) {
	t.Helper()
	res := c.do("GET", "/readyz", nil).want(t, status)
	got := decodeBody[struct {
		Checks map[string]string `json:"checks"`
	}](res).Checks
	for name, want := range checks {
		if got[name] != want {
			t.Fatalf("/readyz: got checks %v, want %s %s", got, name, want)
		}
	}
	if status == 503 && res.Header.Get("Retry-After") == "" {
		t.Fatalf("/readyz 503 without Retry-After")
	}
}

// eventuallyReady polls /readyz until it answers 200, within limit.
func eventuallyReady(t *testing.T, c *client, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		res := c.do("GET", "/readyz", nil)
		if res.Status == 200 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d after %v: %s", res.Status, limit, res.Raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func credentials(email string) map[string]any {
	return map[string]any{"email": email, "password": testPassword}
}

func registration(email string) map[string]any {
	return map[string]any{"email": email, "password": testPassword, "name": "Test User"}
}

// TestRedisFrozenAnswers503InTime: a Redis that accepts connections and never
// answers (a stopped process, a full network queue) costs every request that
// needs it one REDIS_TIMEOUT and a 503, never a 401 (which would log the SPA
// out) nor a hang; when it answers again the same cookie works.
func TestRedisFrozenAnswers503InTime(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	s, proxy := newProxiedServer(t, env{"REDIS_TIMEOUT": timeout.String()})
	keeper := s.newClient(t)
	keeper.register(uniqueEmail("keeper"))
	victim := s.newClient(t)
	victimEmail := uniqueEmail("victim")
	victim.register(victimEmail)

	proxy.freeze()
	answers := doAll([]call{
		{keeper, "GET", "/me", nil},
		{keeper, "GET", "/sessions", nil},
		{victim, "POST", "/logout-all", nil},
		{victim, "POST", "/logout", nil},
		{victim, "DELETE", "/sessions/AAAAAAAAAAAAAAAAAAAAAA", nil},
		{s.newClient(t), "POST", "/login", credentials(victimEmail)},
		{s.newClient(t), "POST", "/register", registration(uniqueEmail("frozen"))},
	})
	want503InTime(t, answers, outageBound(timeout))
	wantReadiness(t, keeper, 503, map[string]string{"redis": "unavailable", "database": "ok"})
	keeper.do("GET", "/healthz", nil).want(t, 200)

	proxy.thaw()
	keeper.do("GET", "/me", nil).want(t, 200)
	victim.do("GET", "/me", nil).want(t, 200)
	wantReadiness(t, keeper, 200, map[string]string{"redis": "ok", "database": "ok"})
}

// TestRedisDownAnswers503AndRecovers: with Redis refusing connections every
// request that needs the session store answers 503 at once; when Redis is
// back the same cookies work, without a restart of the API.
func TestRedisDownAnswers503AndRecovers(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	s, proxy := newProxiedServer(t, env{"REDIS_TIMEOUT": timeout.String()})
	alice := s.newClient(t)
	aliceEmail := uniqueEmail("alice")
	alice.register(aliceEmail)
	bob := s.newClient(t)
	bob.register(uniqueEmail("bob"))

	proxy.cut()
	answers := doAll([]call{
		{alice, "GET", "/me", nil},
		{alice, "GET", "/sessions", nil},
		{bob, "POST", "/logout-all", nil},
		{bob, "POST", "/logout", nil},
		{s.newClient(t), "POST", "/login", credentials(aliceEmail)},
		{s.newClient(t), "POST", "/register", registration(uniqueEmail("down"))},
	})
	want503InTime(t, answers, outageBound(timeout))
	// Again, now that the pool holds no connection at all.
	want503InTime(t, doAll([]call{{alice, "GET", "/me", nil}, {bob, "GET", "/me", nil}}), outageBound(timeout))
	wantReadiness(t, alice, 503, map[string]string{"redis": "unavailable", "database": "ok"})
	alice.do("GET", "/healthz", nil).want(t, 200)

	proxy.mend()
	alice.do("GET", "/me", nil).want(t, 200)
	bob.do("GET", "/me", nil).want(t, 200)
	wantReadiness(t, alice, 200, map[string]string{"redis": "ok", "database": "ok"})
	bob.do("POST", "/logout", nil).want(t, 200)
	bob.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	s.newClient(t).login(aliceEmail, testPassword).want(t, 200)
}

// TestRedisRestartAnswersNo503 restarts Redis between two requests: every
// pooled connection died with the old process. Before redialConn each of
// them failed one request with 503 (8 of 16 /me in a row here); now none.
func TestRedisRestartAnswersNo503(t *testing.T) {
	t.Parallel()
	s, proxy := newProxiedServer(t, env{"REDIS_TIMEOUT": "500ms"})
	const users = 16
	clients, emails := s.registeredClients(t, users, "restart")
	fillPool(t, s, 8)
	idle := s.Redis.Pool().Stats().IdleCount

	proxy.restart()
	failures := 0
	for _, c := range clients { // one at a time: each would take the next dead connection
		if res := c.do("GET", "/me", nil); res.Status != 200 {
			failures++
			t.Logf("GET /me: got %d %s", res.Status, res.Raw)
		}
	}
	t.Logf("pooled connections before the restart: %d; answers other than 200 after it: %d of %d", idle, failures, users)
	if failures > 0 {
		t.Fatalf("got %d failed answers after a Redis restart, want 0", failures)
	}

	// Writes (Lua scripts, whose cache the new process lacks) and concurrent
	// borrowers after a second restart.
	fillPool(t, s, 8)
	proxy.restart()
	calls := []call{{clients[0], "POST", "/logout", nil}, {clients[1], "POST", "/logout-all", nil},
		{s.newClient(t), "POST", "/login", credentials(emails[2])}}
	for _, c := range clients[3:] {
		calls = append(calls, call{c, "GET", "/sessions", nil})
	}
	for _, a := range doAll(calls) {
		if a.res.Status != 200 {
			t.Errorf("%s %s after a restart: got %d %s, want 200", a.method, a.path, a.res.Status, a.res.Raw)
		}
	}
}

// fillPool leaves at least n idle connections in the server's pool.
func fillPool(t *testing.T, s *testServer, n int) {
	t.Helper()
	conns := make([]interface{ Close() error }, n)
	for i := range conns {
		conn := s.Redis.Pool().Get()
		if _, err := conn.Do("PING"); err != nil {
			t.Fatalf("PING: %v", err)
		}
		conns[i] = conn
	}
	for _, conn := range conns {
		_ = conn.Close()
	}
	if idle := s.Redis.Pool().Stats().IdleCount; idle < n {
		t.Fatalf("got %d idle connections, want at least %d", idle, n)
	}
}

// TestStartWithRedisDown: the API starts with Redis unreachable, is alive
// (/healthz) but not ready (/readyz names redis), answers 503, and serves as
// soon as Redis answers, without a restart.
func TestStartWithRedisDown(t *testing.T) {
	t.Parallel()
	const timeout = 300 * time.Millisecond
	deps := newDeps(t, env{"REDIS_TIMEOUT": timeout.String()})
	proxy, proxied := newFaultProxy(t, deps.settings["REDIS_URL"])
	deps.settings["REDIS_URL"] = proxied
	proxy.cut()
	s := deps.start(t)
	c := s.newClient(t)
	email := uniqueEmail("early")

	c.do("GET", "/healthz", nil).want(t, 200)
	wantReadiness(t, c, 503, map[string]string{"redis": "unavailable", "database": "ok"})
	want503InTime(t, doAll([]call{{c, "POST", "/register", registration(email)}}), outageBound(timeout))

	proxy.mend()
	eventuallyReady(t, c, 3*time.Second)
	c.register(email)
	c.do("GET", "/me", nil).want(t, 200)
}

// pgCluster is a PostgreSQL server of the test's own, in its temp folder, so
// the test can kill and start it without touching the shared one.
type pgCluster struct {
	t    *testing.T
	bin  string
	dir  string
	port int
}

// newPGCluster initialises a cluster, run as the postgres user when the test
// runs as root (PostgreSQL refuses root). Only embedded mode skips: with
// TEST_DATABASE_URL set the PostgreSQL binaries must be there.
func newPGCluster(t *testing.T) *pgCluster {
	t.Helper()
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("TEST_DATABASE_URL unset: embedded mode has no PostgreSQL to take down")
	}
	bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(bins) == 0 {
		t.Fatal("no /usr/lib/postgresql/*/bin/initdb: install PostgreSQL's server package")
	}
	slices.Sort(bins)
	tmp := t.TempDir()
	pg := &pgCluster{t: t, bin: filepath.Dir(bins[len(bins)-1]), dir: filepath.Join(tmp, "pg"), port: freePort(t)}
	if err := os.Mkdir(pg.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 { // let postgres reach its folder through the test's temp folders
		for dir := tmp; dir != os.TempDir() && dir != "/"; dir = filepath.Dir(dir) {
			if err := os.Chmod(dir, 0o711); err != nil {
				t.Fatal(err)
			}
		}
		pg.run("chown", "postgres:postgres", pg.dir)
	}
	pg.run(filepath.Join(pg.bin, "initdb"), "-D", pg.dir, "-A", "trust", "-U", "postgres", "-N", "-E", "UTF8", "--locale=C")
	t.Cleanup(func() {
		_ = pg.command(filepath.Join(pg.bin, "pg_ctl"), "-D", pg.dir, "-m", "immediate", "-w", "stop").Run()
	})
	return pg
}

// url is the cluster's connection URL.
func (pg *pgCluster) url() string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(pg.port) + "/postgres?sslmode=disable"
}

func (pg *pgCluster) start() {
	pg.t.Helper()
	pg.run(filepath.Join(pg.bin, "pg_ctl"), "-D", pg.dir, "-l", filepath.Join(pg.dir, "server.log"), "-w", "-o",
		"-p "+strconv.Itoa(pg.port)+" -k "+pg.dir+" -c listen_addresses=127.0.0.1 -c fsync=off", "start")
}

// kill stops the server at once, as a crash would (no clean shutdown).
func (pg *pgCluster) kill() {
	pg.t.Helper()
	pg.run(filepath.Join(pg.bin, "pg_ctl"), "-D", pg.dir, "-m", "immediate", "-w", "stop")
}

func (pg *pgCluster) command(name string, args ...string) *exec.Cmd {
	if os.Geteuid() == 0 && name != "chown" {
		return exec.Command("runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

func (pg *pgCluster) run(name string, args ...string) {
	pg.t.Helper()
	if out, err := pg.command(name, args...).CombinedOutput(); err != nil {
		pg.t.Fatalf("%s %v: %v\n%s", filepath.Base(name), args, err, out)
	}
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// TestDatabaseDown runs the API on a PostgreSQL of its own: started while the
// database is down it is alive but not ready, and serves once the database
// comes; in an outage the calls that need the database answer 503 within
// DATABASE_TIMEOUT while the session calls keep working from Redis; it
// recovers by itself.
func TestDatabaseDown(t *testing.T) {
	t.Parallel()
	pg := newPGCluster(t)
	pg.start()
	db, err := services.OpenDatabase(services.DatabaseOptions{URL: pg.url(), MaxOpenConns: 10, MaxIdleConns: 5, ConnMaxLife: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeDB(db) })
	if err := services.Migrate(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	pg.kill()

	const timeout = 500 * time.Millisecond
	s := newServer(t, env{"DATABASE_TIMEOUT": timeout.String(), "DATABASE_URL": pg.url()})
	c := s.newClient(t)

	// Started with the database down.
	c.do("GET", "/healthz", nil).want(t, 200)
	wantReadiness(t, c, 503, map[string]string{"database": "unavailable", "redis": "ok"})
	want503InTime(t, doAll([]call{{c, "POST", "/register", registration(uniqueEmail("early"))}}), outageBound(timeout))
	pg.start()
	eventuallyReady(t, c, 5*time.Second)

	admin, _ := s.newAdmin(t)
	user := s.newClient(t)
	userEmail := uniqueEmail("user")
	user.register(userEmail)
	other := s.newClient(t)
	other.login(userEmail, testPassword).want(t, 200)
	spare := s.newClient(t)
	spare.login(userEmail, testPassword).want(t, 200)

	// An outage: only what needs a user row fails.
	pg.kill()
	want503InTime(t, doAll([]call{
		{s.newClient(t), "POST", "/login", credentials(userEmail)},
		{s.newClient(t), "POST", "/register", registration(uniqueEmail("late"))},
		{user, "POST", "/password", map[string]any{"current_password": testPassword, "new_password": "another long passphrase 42"}},
		{user, "POST", "/reauth", map[string]any{"password": testPassword}},
		{admin, "GET", "/admin/users", nil},
		{admin, "POST", "/admin/users", map[string]any{"email": uniqueEmail("made"), "password": testPassword, "name": "Made", "role": "user"}},
	}), outageBound(timeout))
	// A client retrying as often as the throttle allows is not locked out
	// by the outage: a 503 is no failed login.
	for range s.Config.Throttle.LoginMaxFailures {
		want503InTime(t, doAll([]call{{s.newClient(t), "POST", "/login", credentials(userEmail)}}), outageBound(timeout))
	}
	wantReadiness(t, c, 503, map[string]string{"database": "unavailable", "redis": "ok"})
	user.do("GET", "/me", nil).want(t, 200)
	if n := len(user.sessions()); n != 3 {
		t.Fatalf("got %d sessions, want 3", n)
	}
	spare.do("POST", "/logout", nil).want(t, 200)
	other.do("POST", "/logout-all", nil).want(t, 200)
	user.do("GET", "/me", nil).want(t, 401, "not_authenticated")

	// Back by itself: every call works again at once.
	pg.start()
	eventuallyReady(t, c, 5*time.Second)
	for i := 0; i < 3; i++ {
		s.newClient(t).login(userEmail, testPassword).want(t, 200)
	}
	admin.do("GET", "/admin/users", nil).want(t, 200)
	s.newClient(t).register(uniqueEmail("after"))

	// The server ends every connection between two requests (a restart
	// quicker than pgx's default one-second idle check, a failover, an idle
	// killer): no pooled connection may fail a request.
	fillDBPool(t, s.DB, 5)
	terminateBackends(t, pg)
	for i := 0; i < 6; i++ {
		s.newClient(t).login(userEmail, testPassword).want(t, 200)
	}
}

// terminateBackends ends every client connection to the cluster but its own.
func terminateBackends(t *testing.T, pg *pgCluster) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), pg.url())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n int
	err = conn.QueryRow(t.Context(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'`).Scan(&n)
	if err != nil || n == 0 {
		t.Fatalf("terminated %d backends: %v", n, err)
	}
}

// fillDBPool leaves n idle connections in db's pool, each just reused (so
// the driver's own idle check would not look at them again for a second).
func fillDBPool(t *testing.T, db *gorm.DB, n int) {
	t.Helper()
	sqlDB, err := db.DB()
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		conns := make([]*sql.Conn, n)
		for i := range conns {
			if conns[i], err = sqlDB.Conn(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := conns[i].PingContext(t.Context()); err != nil {
				t.Fatal(err)
			}
		}
		for _, conn := range conns {
			_ = conn.Close()
		}
	}
}

func closeDB(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		_ = sqlDB.Close()
	}
}
