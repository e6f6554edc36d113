package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/sessionauth/api/services"
)

// sentinelMaster is the name the test's sentinels monitor.
const sentinelMaster = "sessions"

// sentinelTopology is a primary, two replicas and three sentinels of the
// test's own, on free loopback ports (never the system's sentinel on 26379).
type sentinelTopology struct {
	t         *testing.T
	nodes     []*redisProcess // nodes[0] is the first primary
	sentinels []*sentinelProcess
}

// startSentinelTopology starts the nodes (append-only, replicas in sync)
// and the sentinels (down after 1 s, quorum 2), and waits until every
// sentinel knows both replicas and the two other sentinels, so a failover
// can be voted.
func startSentinelTopology(t *testing.T) *sentinelTopology {
	t.Helper()
	bin := redisTool(t, "redis-sentinel")
	noSyncDelay := []string{"--repl-diskless-sync-delay", "0"}
	primary := startRedisProcess(t, noSyncDelay...)
	topo := &sentinelTopology{t: t, nodes: []*redisProcess{primary}}
	for range 2 {
		replicaOf := append([]string{"--replicaof", "127.0.0.1", strconv.Itoa(primary.port)}, noSyncDelay...)
		topo.nodes = append(topo.nodes, startRedisProcess(t, replicaOf...))
	}
	for _, replica := range topo.nodes[1:] {
		topo.waitReplicaOf(replica, primary.port, 10*time.Second)
	}
	for range 3 {
		topo.sentinels = append(topo.sentinels, startSentinel(t, bin, primary.port))
	}
	t.Cleanup(func() {
		if t.Failed() { // what the sentinels decided, for the failure's reader
			for _, s := range topo.sentinels {
				log, _ := os.ReadFile(filepath.Join(s.dir, "sentinel.log"))
				t.Logf("sentinel on %d:\n%s", s.port, tail(log, 3000))
			}
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for _, s := range topo.sentinels {
		for {
			info := s.masterInfo()
			if info["num-slaves"] == "2" && info["num-other-sentinels"] == "2" {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("sentinel on %d does not see the topology: %v", s.port, info)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return topo
}

// url is REDIS_URL for the product: every sentinel, the master name, db 0.
func (topo *sentinelTopology) url() string {
	hosts := make([]string, len(topo.sentinels))
	for i, s := range topo.sentinels {
		hosts[i] = "127.0.0.1:" + strconv.Itoa(s.port)
	}
	return "redis+sentinel://" + strings.Join(hosts, ",") + "/" + sentinelMaster + "/0"
}

// primaryPort is the port the sentinels name as the primary now.
func (topo *sentinelTopology) primaryPort() int {
	topo.t.Helper()
	conn := dialLoopback(topo.t, topo.sentinels[0].port)
	defer conn.Close()
	addr, err := redis.Strings(conn.Do("SENTINEL", "get-master-addr-by-name", sentinelMaster))
	if err != nil || len(addr) != 2 {
		topo.t.Fatalf("get-master-addr-by-name: %v %v", addr, err)
	}
	port, _ := strconv.Atoi(addr[1])
	return port
}

// waitReplicaOf waits until node replicates, in sync, from the primary on
// port (0: the one the sentinels name).
func (topo *sentinelTopology) waitReplicaOf(node *redisProcess, port int, limit time.Duration) {
	topo.t.Helper()
	deadline := time.Now().Add(limit)
	want := port
	for {
		if port == 0 {
			want = topo.primaryPort()
		}
		role := nodeRole(topo.t, node.port)
		if len(role) >= 4 && role[0] == "slave" && role[2] == strconv.Itoa(want) && role[3] == "connected" {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(node.dir, "redis.log"))
			topo.t.Fatalf("node %d is not a replica of %d in sync after %v: ROLE %v\n%s", node.port, want, limit, role, tail(log, 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitSettled waits until every sentinel sees both replicas as healthy
// replicas of the primary, so no sentinel still means to reconfigure one (a
// failover started meanwhile would race with it).
func (topo *sentinelTopology) waitSettled(limit time.Duration) {
	topo.t.Helper()
	deadline := time.Now().Add(limit)
	for _, s := range topo.sentinels {
		for !s.settled() {
			if time.Now().After(deadline) {
				topo.t.Fatalf("sentinel on %d does not see two healthy replicas after %v", s.port, limit)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// settled reports whether the sentinel sees two replicas, each reporting the
// replica role with its link to the primary up.
func (s *sentinelProcess) settled() bool {
	conn, err := redis.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.port), redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(time.Second))
	if err != nil {
		return false
	}
	defer conn.Close()
	replicas, err := redis.Values(conn.Do("SENTINEL", "REPLICAS", sentinelMaster))
	if err != nil || len(replicas) != 2 {
		return false
	}
	for _, r := range replicas {
		info, err := redis.StringMap(r, nil)
		if err != nil || info["flags"] != "slave" || info["role-reported"] != "slave" || info["master-link-status"] != "ok" {
			return false
		}
	}
	return true
}

// nodeRole is the node's ROLE answer as strings (the replica list of a
// primary left out), or nil when it does not answer.
func nodeRole(t *testing.T, port int) []string {
	t.Helper()
	conn, err := redis.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(time.Second))
	if err != nil {
		return nil
	}
	defer conn.Close()
	reply, err := redis.Values(conn.Do("ROLE"))
	if err != nil {
		return nil
	}
	var out []string
	for _, v := range reply {
		switch v := v.(type) {
		case []byte:
			out = append(out, string(v))
		case int64:
			out = append(out, strconv.FormatInt(v, 10))
		}
	}
	return out
}

// sentinelProcess is a redis-sentinel of the test's own.
type sentinelProcess struct {
	t    *testing.T
	port int
	dir  string
	cmd  *exec.Cmd
}

func startSentinel(t *testing.T, bin string, primaryPort int) *sentinelProcess {
	t.Helper()
	s := &sentinelProcess{t: t, port: freePort(t), dir: t.TempDir()}
	// Sentinel rewrites its configuration file, so each has its own.
	conf := fmt.Sprintf("port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\nsentinel resolve-hostnames no\n"+
		"sentinel monitor %[4]s 127.0.0.1 %[5]d 2\nsentinel down-after-milliseconds %[4]s 1000\n"+
		"sentinel failover-timeout %[4]s 10000\nsentinel parallel-syncs %[4]s 2\n",
		s.port, s.dir, filepath.Join(s.dir, "sentinel.log"), sentinelMaster, primaryPort)
	path := filepath.Join(s.dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cmd = exec.Command(bin, path)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start redis-sentinel: %v", err)
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
	})
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := redis.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.port), redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(time.Second))
		if err == nil {
			_, err = conn.Do("PING")
			_ = conn.Close()
		}
		if err == nil {
			return s
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "sentinel.log"))
			t.Fatalf("redis-sentinel does not answer: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// masterInfo is SENTINEL MASTER for the test's master, or nil.
func (s *sentinelProcess) masterInfo() map[string]string {
	conn, err := redis.Dial("tcp", "127.0.0.1:"+strconv.Itoa(s.port), redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(time.Second))
	if err != nil {
		return nil
	}
	defer conn.Close()
	info, _ := redis.StringMap(conn.Do("SENTINEL", "MASTER", sentinelMaster))
	return info
}

func dialLoopback(t *testing.T, port int) redis.Conn {
	t.Helper()
	conn, err := redis.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(2*time.Second))
	if err != nil {
		t.Fatalf("dial %d: %v", port, err)
	}
	return conn
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// wantUnavailable fails unless res is 503 service_unavailable with a
// Retry-After of whole seconds, at least 1.
func wantUnavailable(t *testing.T, what string, res *response) {
	t.Helper()
	if res.Status != 503 || res.Body["error"] != "service_unavailable" {
		t.Fatalf("%s: got %d %s, want 503 service_unavailable", what, res.Status, res.Raw)
	}
	if n, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || n < 1 {
		t.Fatalf("%s: got Retry-After %q, want whole seconds >= 1", what, res.Header.Get("Retry-After"))
	}
}

// TestRedisSentinelFailover runs the product on a primary, two replicas and
// three sentinels with REDIS_MIN_REPLICAS=1. With both replicas frozen a
// logout cannot be confirmed: 503 with Retry-After, also when sent again,
// and 200 once they answer. Then, under /me polled every 100 ms, the primary
// is SIGKILLed: the poller sees only 200 and 503 (never 401), /me is back
// within 15 s without a restart, /readyz names no address meanwhile, every
// live session works and every logged-out one stays 401, a new login lands
// on the new primary, and the old primary comes back as a replica without
// one failed answer.
func TestRedisSentinelFailover(t *testing.T) {
	t.Parallel()
	topo := startSentinelTopology(t)
	deps := newDeps(t, env{"REDIS_TIMEOUT": "500ms", "REDIS_MIN_REPLICAS": "1"})
	deps.settings["REDIS_URL"] = topo.url()
	s := deps.start(t)
	wantReadiness(t, s.newClient(t), 200, map[string]string{"redis": "ok"})

	clients, emails := s.registeredClients(t, 4, "failover")
	var goneCookies []string
	for range 3 {
		gone := s.newClient(t)
		gone.register(uniqueEmail("gone"))
		goneCookies = append(goneCookies, gone.sessionCookie().Value)
		gone.do("POST", "/logout", nil).want(t, 200)
	}

	frozen := s.newClient(t)
	frozen.register(uniqueEmail("frozen"))
	goneCookies = append(goneCookies, frozen.sessionCookie().Value)
	for _, replica := range topo.nodes[1:] {
		replica.signal(syscall.SIGSTOP)
	}
	wantUnavailable(t, "logout with both replicas frozen", frozen.do("POST", "/logout", nil))
	wantUnavailable(t, "the same logout sent again", frozen.do("POST", "/logout", nil))
	for _, replica := range topo.nodes[1:] {
		replica.signal(syscall.SIGCONT)
	}
	frozen.do("POST", "/logout", nil).want(t, 200)

	oldPrimary := topo.nodes[0]
	traffic := startMePolling(clients, 100*time.Millisecond, 40*time.Second)
	time.Sleep(500 * time.Millisecond)
	killedAt := time.Now()
	oldPrimary.kill()
	ready := s.newClient(t).do("GET", "/readyz", nil)
	wantReadiness(t, s.newClient(t), 503, map[string]string{"redis": "unavailable"})
	if strings.Contains(ready.Raw, "127.0.0.1") || strings.Contains(ready.Raw, strconv.Itoa(oldPrimary.port)) {
		t.Errorf("/readyz names an internal address: %s", ready.Raw)
	}
	for s.newClient(t).do("GET", "/readyz", nil).Status != 200 || clients[0].do("GET", "/me", nil).Status != 200 {
		if time.Since(killedAt) > 15*time.Second {
			t.Fatalf("/me not back within 15 s of the kill")
		}
		time.Sleep(100 * time.Millisecond)
	}
	healedAt := time.Now()
	time.Sleep(time.Second)
	probes := traffic.finish()
	unavailable, lastFailure := 0, killedAt
	for _, p := range probes {
		switch {
		case p.err != nil:
			t.Errorf("GET /me at %v: %v", p.start.Sub(killedAt), p.err)
		case p.status == 503 && p.retryAfter == "":
			t.Errorf("GET /me at %v: 503 without Retry-After", p.start.Sub(killedAt))
		case p.status == 503:
			unavailable++
			if p.end.After(lastFailure) {
				lastFailure = p.end
			}
		case p.status != 200:
			t.Errorf("GET /me at %v: got %d, want 200 or 503 (never 401 in a failover)", p.start.Sub(killedAt), p.status)
		}
	}
	wantAll(t, "after the failover", between(probes, healedAt, time.Now()), 200)

	// The old primary comes back (the sentinels turn it into a replica, which
	// takes them 10-20 s) while the rest is checked, and nothing breaks.
	traffic = startMePolling(clients, 100*time.Millisecond, 60*time.Second)
	oldPrimary.start()
	restartedAt := time.Now()

	// Nothing lost: live sessions live, ended ones stay ended.
	for _, c := range clients {
		c.do("GET", "/me", nil).want(t, 200)
	}
	for _, cookie := range goneCookies {
		if s.cookieAlive(t, cookie) {
			t.Error("a session logged out before the failover is alive after it")
		}
	}
	newPort := topo.primaryPort()
	if newPort == oldPrimary.port {
		t.Fatalf("the sentinels still name the killed primary")
	}
	t.Logf("failover: /me back %v after the SIGKILL (last 503 %v after it); %d of %d polled answers were 503, none 401; 0 of %d sessions lost",
		healedAt.Sub(killedAt).Round(100*time.Millisecond), lastFailure.Sub(killedAt).Round(100*time.Millisecond),
		unavailable, len(probes), len(clients)+len(goneCookies))

	// A new login lands on the new primary (with a replica to confirm it).
	late := s.newClient(t)
	var res *response
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if res = late.login(emails[0], testPassword); res.Status != 503 || time.Now().After(deadline) {
			break
		}
	}
	userID := res.want(t, 200).user().ID
	wantSessionOn(t, newPort, s.Redis.Keys(), userID, 2)

	topo.waitReplicaOf(oldPrimary, 0, 30*time.Second)
	topo.waitSettled(30 * time.Second)
	time.Sleep(500 * time.Millisecond)
	t.Logf("old primary a healthy replica for every sentinel %v after its restart", time.Since(restartedAt).Round(100*time.Millisecond))
	wantAll(t, "while the old primary rejoined as a replica", traffic.finish(), 200)
	clients[1].do("POST", "/logout", nil).want(t, 200)
	clients[1].do("GET", "/me", nil).want(t, 401, "not_authenticated")
	late.do("GET", "/me", nil).want(t, 200)
	s.newClient(t).login(emails[2], testPassword).want(t, 200)

	// A planned failover: the old primary stays up, answering as a primary
	// until the sentinels reconfigure it seconds later. The product follows
	// the sentinels within about a second, not when the old primary is
	// finally demoted: a login confirmed by a replica of the new primary
	// within 5 s, and no 401 meanwhile.
	live := []*client{clients[0], clients[2], clients[3], late}
	traffic = startMePolling(live, 100*time.Millisecond, 40*time.Second)
	conn := dialLoopback(t, topo.sentinels[0].port)
	if _, err := conn.Do("SENTINEL", "FAILOVER", sentinelMaster); err != nil {
		t.Fatalf("SENTINEL FAILOVER: %v", err)
	}
	_ = conn.Close()
	movedAt := time.Now()
	for topo.primaryPort() == newPort {
		if time.Since(movedAt) > 10*time.Second {
			t.Fatalf("SENTINEL FAILOVER named no new primary within 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	switchedAt := time.Now()
	for s.newClient(t).login(emails[3], testPassword).Status != 200 {
		if time.Since(switchedAt) > 5*time.Second {
			t.Fatalf("no login confirmed within 5 s of the sentinels naming a new primary")
		}
		time.Sleep(100 * time.Millisecond)
	}
	confirmedAt := time.Now()
	time.Sleep(500 * time.Millisecond)
	planned := traffic.finish()
	wantAll(t, "during a planned failover", planned, 200, 503)
	wantAll(t, "after a planned failover", between(planned, confirmedAt, time.Now()), 200)
	t.Logf("planned failover: sentinels switched %v after SENTINEL FAILOVER, logins confirmed %v after that",
		switchedAt.Sub(movedAt).Round(100*time.Millisecond), confirmedAt.Sub(switchedAt).Round(100*time.Millisecond))
}

// wantSessionOn fails unless the user's index on the node at port holds
// want sessions, each with its record there.
func wantSessionOn(t *testing.T, port int, keys services.RedisKeys, userID string, want int) {
	t.Helper()
	conn := dialLoopback(t, port)
	defer conn.Close()
	index, err := redis.Strings(conn.Do("ZRANGE", keys.UserSessions(userID), 0, -1))
	if err != nil {
		t.Fatal(err)
	}
	if len(index) != want {
		t.Fatalf("got %d sessions of the user on the primary on %d, want %d", len(index), port, want)
	}
	for _, id := range index {
		if n, err := redis.Int(conn.Do("EXISTS", keys.Session(id))); err != nil || n != 1 {
			t.Fatalf("session record missing on the new primary: %v", err)
		}
	}
}
