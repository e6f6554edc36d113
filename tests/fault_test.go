package tests

import (
	"bytes"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// redisProcess is a redis-server of the test's own on a free loopback port,
// persisting every write to its append-only file before answering.
type redisProcess struct {
	t     *testing.T
	bin   string
	dir   string
	port  int
	extra []string // more redis-server arguments (replicaof, ...)
	cmd   *exec.Cmd
}

// startRedisProcess starts redis-server with the extra arguments, or skips
// in embedded mode when it is not installed (with TEST_REDIS_URL set it must
// be there: CI runs this).
func startRedisProcess(t *testing.T, extra ...string) *redisProcess {
	t.Helper()
	r := &redisProcess{t: t, bin: redisTool(t, "redis-server"), dir: t.TempDir(), port: freePort(t), extra: extra}
	t.Cleanup(func() {
		if r.cmd != nil {
			_ = r.cmd.Process.Kill() // SIGKILL also ends a stopped process
			_ = r.cmd.Wait()
		}
	})
	r.start()
	return r
}

// redisTool returns the path of a Redis program, or skips in embedded mode
// when it is not installed (with TEST_REDIS_URL set it must be there: CI
// installs it).
func redisTool(t *testing.T, name string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("TEST_REDIS_URL") == "" {
			t.Skipf("%s not installed (embedded mode)", name)
		}
		t.Fatalf("%s not found with TEST_REDIS_URL set: %v", name, err)
	}
	return bin
}

func (r *redisProcess) url() string { return "redis://127.0.0.1:" + strconv.Itoa(r.port) + "/0" }

// start runs redis-server on r's port and folder (loading the append-only
// file a previous run left) and waits until it answers PING.
func (r *redisProcess) start() {
	r.t.Helper()
	args := []string{"--port", strconv.Itoa(r.port), "--bind", "127.0.0.1", "--dir", r.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--logfile", filepath.Join(r.dir, "redis.log")}
	r.cmd = exec.Command(r.bin, append(args, r.extra...)...)
	if err := r.cmd.Start(); err != nil {
		r.t.Fatalf("start redis-server: %v", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		conn, err := redis.Dial("tcp", "127.0.0.1:"+strconv.Itoa(r.port), redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(time.Second))
		if err == nil {
			_, err = conn.Do("PING")
			_ = conn.Close()
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(r.dir, "redis.log"))
			r.t.Fatalf("redis-server does not answer: %v\n%s", err, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (r *redisProcess) signal(sig syscall.Signal) {
	r.t.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.t.Fatalf("signal %v: %v", sig, err)
	}
}

// kill ends redis-server with SIGKILL (no shutdown, no final write) and reaps it.
func (r *redisProcess) kill() {
	r.signal(syscall.SIGKILL)
	_ = r.cmd.Wait()
	r.cmd = nil
}

// faultProxy is a TCP proxy in front of Redis that a test can freeze (bytes
// held, as by a stopped process), cut (listener closed and connections
// dropped, as for a dead host) or restart (connections dropped, listener
// kept, as by a Redis restarted between two requests).
type faultProxy struct {
	t      testing.TB
	target string
	addr   string

	mu      sync.Mutex
	ln      net.Listener
	conns   map[net.Conn]struct{}
	running chan struct{} // closed while bytes flow; open while frozen
	trigger *proxyTrigger
}

// proxyTrigger runs action once, before the first chunk a client sends that
// contains pattern is passed on: a fault in the middle of one request.
type proxyTrigger struct {
	pattern []byte
	action  func()
}

// on arms action (freeze, cut, or a fault elsewhere) for the first command
// that contains pattern, such as a key only one step of a request writes.
func (p *faultProxy) on(pattern string, action func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trigger = &proxyTrigger{pattern: []byte(pattern), action: action}
}

// fire runs the armed trigger if chunk matches it, once.
func (p *faultProxy) fire(chunk []byte) {
	p.mu.Lock()
	tr := p.trigger
	if tr == nil || !bytes.Contains(chunk, tr.pattern) {
		p.mu.Unlock()
		return
	}
	p.trigger = nil
	p.mu.Unlock()
	tr.action()
}

// newFaultProxy proxies to the host of redisURL and returns the proxy and
// redisURL pointed at it.
func newFaultProxy(t testing.TB, redisURL string) (*faultProxy, string) {
	t.Helper()
	u, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	running := make(chan struct{})
	close(running)
	p := &faultProxy{t: t, target: u.Host, addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]struct{}{}, running: running}
	go p.serve(ln)
	t.Cleanup(func() {
		p.thaw() // release pipes held by a freeze
		p.cut()
	})
	u.Host = p.addr
	return p, u.String()
}

func (p *faultProxy) serve(ln net.Listener) {
	for {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		server, err := net.DialTimeout("tcp", p.target, time.Second)
		if err != nil {
			_ = client.Close()
			continue
		}
		p.mu.Lock()
		if p.ln != ln { // cut meanwhile
			p.mu.Unlock()
			_ = client.Close()
			_ = server.Close()
			return
		}
		p.conns[client], p.conns[server] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(client, server, true)
		go p.pipe(server, client, false)
	}
}

// pipe copies src to dst, holding each chunk while the proxy is frozen; a
// client's chunks may fire the trigger first.
func (p *faultProxy) pipe(src, dst net.Conn, fromClient bool) {
	defer func() {
		_ = src.Close()
		_ = dst.Close()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && fromClient {
			p.fire(buf[:n])
		}
		if n > 0 {
			p.mu.Lock()
			running := p.running
			p.mu.Unlock()
			<-running
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// freeze holds every byte from now on, like a SIGSTOPped Redis: connections
// are accepted, nothing is answered.
func (p *faultProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.running:
		p.running = make(chan struct{})
	default:
	}
}

// thaw lets the held bytes flow again.
func (p *faultProxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.running:
	default:
		close(p.running)
	}
}

// restart drops every open connection (as a restarted Redis does) and keeps
// accepting new ones.
func (p *faultProxy) restart() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dropLocked()
}

// cut closes the listener and every connection: dials are refused.
func (p *faultProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	p.dropLocked()
}

// mend listens again on the same address after cut.
func (p *faultProxy) mend() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return
	}
	var ln net.Listener
	var err error
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if ln, err = net.Listen("tcp", p.addr); err == nil || time.Now().After(deadline) {
			break
		}
	}
	if err != nil {
		p.t.Fatalf("proxy relisten on %s: %v", p.addr, err)
	}
	p.ln = ln
	go p.serve(ln)
}

func (p *faultProxy) dropLocked() {
	for c := range p.conns {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// probe is one /me answer under load.
type probe struct {
	start, end time.Time
	status     int
	retryAfter string
	err        error
}

// meTraffic sends GET /me from every client in a loop until stopped,
// recording each answer.
type meTraffic struct {
	mu     sync.Mutex
	probes []probe
	stop   chan struct{}
	wg     sync.WaitGroup
}

func startMeTraffic(clients []*client, limit time.Duration) *meTraffic {
	return startMePolling(clients, 5*time.Millisecond, limit)
}

// startMePolling sends GET /me from every client, pausing every between two
// requests of one client, until stopped or limit has passed.
func startMePolling(clients []*client, every, limit time.Duration) *meTraffic {
	tr := &meTraffic{stop: make(chan struct{})}
	deadline := time.Now().Add(limit)
	for _, c := range clients {
		tr.wg.Go(func() {
			for time.Now().Before(deadline) {
				select {
				case <-tr.stop:
					return
				default:
				}
				p := probe{start: time.Now()}
				res, err := c.http.Get(c.srv.URL + "/me")
				p.end, p.err = time.Now(), err
				if err == nil {
					p.status, p.retryAfter = res.StatusCode, res.Header.Get("Retry-After")
					_ = res.Body.Close()
				}
				tr.mu.Lock()
				tr.probes = append(tr.probes, p)
				tr.mu.Unlock()
				time.Sleep(every)
			}
		})
	}
	return tr
}

func (tr *meTraffic) finish() []probe {
	close(tr.stop)
	tr.wg.Wait()
	return tr.probes
}

// between returns the probes sent after from and answered before to.
func between(probes []probe, from, to time.Time) []probe {
	var out []probe
	for _, p := range probes {
		if !p.start.Before(from) && !p.end.After(to) {
			out = append(out, p)
		}
	}
	return out
}

// TestRedisProcessFaults runs a real redis-server under concurrent /me
// traffic and SIGSTOPs it (every answer 503 in bounded time, never 401 or
// 500), SIGCONTs it (answers 200 again), then SIGKILLs it and starts it again
// on the same append-only file: 503 while it is down, and afterwards every
// session that should live does, and every one ended before the crash stays
// ended, also after a crash and restart between two requests.
func TestRedisProcessFaults(t *testing.T) {
	t.Parallel()
	rp := startRedisProcess(t)
	const timeout = 300 * time.Millisecond
	deps := newDeps(t, env{"REDIS_TIMEOUT": timeout.String()})
	deps.settings["REDIS_URL"] = rp.url()
	s := deps.start(t)
	bound := outageBound(timeout)

	const users = 6
	clients, emails := s.registeredClients(t, users, "fault")
	gone := s.newClient(t)
	gone.register(uniqueEmail("gone"))
	goneCookie := gone.sessionCookie().Value
	gone.do("POST", "/logout", nil).want(t, 200)
	leaver := s.newClient(t)
	leaver.register(uniqueEmail("leaver"))
	leaverCookie := leaver.sessionCookie().Value

	traffic := startMeTraffic(clients, 20*time.Second)
	time.Sleep(300 * time.Millisecond)

	rp.signal(syscall.SIGSTOP)
	stoppedAt := time.Now()
	time.Sleep(time.Second)
	contAt := time.Now()
	rp.signal(syscall.SIGCONT)
	time.Sleep(time.Second)

	// Written just before the crash: appendfsync always keeps both.
	late := s.newClient(t)
	late.login(emails[0], testPassword).want(t, 200)
	leaver.do("POST", "/logout", nil).want(t, 200)

	killedAt := time.Now()
	rp.kill()
	wantReadiness(t, s.newClient(t), 503, map[string]string{"redis": "unavailable", "database": "ok"})
	time.Sleep(700 * time.Millisecond)
	restartAt := time.Now()
	rp.start()
	upAt := time.Now()
	time.Sleep(time.Second)
	probes := traffic.finish()

	for _, p := range probes {
		switch {
		case p.err != nil:
			t.Errorf("GET /me at %v: %v", p.start.Sub(stoppedAt), p.err)
		case p.status != 200 && p.status != 503:
			t.Errorf("GET /me at %v: got %d, want 200 or 503", p.start.Sub(stoppedAt), p.status)
		case p.status == 503 && p.retryAfter == "":
			t.Errorf("GET /me at %v: 503 without Retry-After", p.start.Sub(stoppedAt))
		case p.end.Sub(p.start) > bound:
			t.Errorf("GET /me at %v: answered %d after %v, want within %v", p.start.Sub(stoppedAt), p.status, p.end.Sub(p.start), bound)
		}
	}
	wantAll(t, "while stopped", between(probes, stoppedAt, contAt), 503)
	wantAll(t, "after SIGCONT", between(probes, contAt.Add(300*time.Millisecond), killedAt), 200)
	wantAll(t, "while killed", between(probes, killedAt, restartAt), 503)
	wantAll(t, "after the restart", between(probes, upAt, time.Now()), 200)
	t.Logf("%d answers: %d while stopped, %d while killed, %d after the restart",
		len(probes), len(between(probes, stoppedAt, contAt)), len(between(probes, killedAt, restartAt)), len(between(probes, upAt, time.Now())))

	// One more crash and restart, between two requests this time: every
	// pooled connection died with the old process, and none may cost a 503.
	fillPool(t, s, 8)
	rp.kill()
	rp.start()
	for _, c := range clients {
		c.do("GET", "/me", nil).want(t, 200)
	}
	late.do("GET", "/me", nil).want(t, 200)
	gone.setSessionCookie(goneCookie)
	gone.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	leaver.setSessionCookie(leaverCookie)
	leaver.do("GET", "/me", nil).want(t, 401, "not_authenticated")
}

// wantAll fails unless there are answers and each has one of the statuses.
func wantAll(t *testing.T, phase string, probes []probe, statuses ...int) {
	t.Helper()
	if len(probes) == 0 {
		t.Errorf("%s: no answer to check", phase)
	}
	for _, p := range probes {
		if !slices.Contains(statuses, p.status) {
			t.Errorf("%s: got %d, want %v", phase, p.status, statuses)
		}
	}
}
