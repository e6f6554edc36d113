// Command load is the product's load test (stdlib only): CONNS connections hold GET /me with one
// session cookie flat out while a trickle of logins (LOGIN_RATE per second, each followed by its
// logout) runs beside them, for DURATION. It reports throughput, p50, p99, non-2xx and 5xx counts of
// both, transport errors, and the server's peak RSS (VmHWM, reset at the start, and the highest
// VmRSS sampled every 100 ms) when it knows the server's PID.
//
//	go run ./scripts/bench/load -url http://127.0.0.1:18090 -pid 1234 -duration 60s
//	go run ./scripts/bench/load -server-bin /tmp/sessauth-bench -sigterm-after 30s   (env passes through)
//
// With -sigterm-after it sends SIGTERM to the server mid-run (plus a few logins 10 ms before, so
// that slow requests are in flight) and checks that every request written BEFORE the signal got a
// complete answer (transport errors are counted apart, by kind, before and after the signal) and
// that the server exited 0 within -shutdown-timeout. The exit code is only known for a server this
// program started itself (-server-bin); with -pid it checks only that the process went away.
// -burst-logins N fires N concurrent logins at once and reports them with the peak RSS, instead.
// scripts/load-test.sh builds and starts everything for you.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

type config struct {
	url, email, password, loginEmail, ua string
	conns                                int
	duration, sigtermAfter, shutdownTO   time.Duration
	reqTimeout                           time.Duration
	loginRate                            float64
	pid                                  int
	serverBin, serverLog                 string
	burst, sigtermLogins, loginUsers     int
	spoofXFF, register                   bool
	failOn5xx, resetHWM, strict          bool
}

const maxDuration = 15 * time.Minute

func main() {
	var c config
	flag.StringVar(&c.url, "url", envOr("LOAD_URL", "http://127.0.0.1:18090"), "product base URL (env LOAD_URL)")
	flag.IntVar(&c.conns, "conns", 64, "connections holding GET /me")
	flag.DurationVar(&c.duration, "duration", envDur("LOAD_DURATION", 60*time.Second), "run time (env LOAD_DURATION; at most 15m)")
	flag.Float64Var(&c.loginRate, "login-rate", 2, "logins per second beside the /me load (0: none)")
	flag.StringVar(&c.email, "email", "load-me@example.com", "user whose session GET /me uses (registered if missing)")
	flag.StringVar(&c.loginEmail, "login-email", "load-login@example.com", "user of the trickle logins (registered if missing)")
	flag.StringVar(&c.password, "password", "load-password-1", "password of both users")
	flag.StringVar(&c.ua, "user-agent", "sessauth-load/1.0", "User-Agent sent")
	flag.IntVar(&c.pid, "pid", 0, "server PID (peak RSS; SIGTERM target)")
	flag.StringVar(&c.serverBin, "server-bin", "", "start this server binary (with this process's environment) and observe its exit")
	flag.StringVar(&c.serverLog, "server-log", "/tmp/sessauth-load-server.log", "where -server-bin's output goes")
	flag.DurationVar(&c.sigtermAfter, "sigterm-after", 0, "send SIGTERM to the server after this long (0: never)")
	flag.DurationVar(&c.shutdownTO, "shutdown-timeout", envDur("SHUTDOWN_TIMEOUT", 15*time.Second), "the server's SHUTDOWN_TIMEOUT: it must exit within it after SIGTERM")
	flag.IntVar(&c.sigtermLogins, "sigterm-logins", 4, "logins started 10 ms before the SIGTERM, so slow requests are in flight (at most 4: a 6th concurrent attempt for one email is throttled)")
	flag.DurationVar(&c.reqTimeout, "request-timeout", 10*time.Second, "per-request timeout")
	flag.IntVar(&c.burst, "burst-logins", 0, "instead of the load: N concurrent logins at once")
	flag.IntVar(&c.loginUsers, "login-users", 1, "burst: spread the logins over N users, -login-email being a pattern with %d (1..N)")
	flag.BoolVar(&c.spoofXFF, "spoof-xff", false, "burst: a distinct X-Forwarded-For per login (counts only if the server trusts 127.0.0.1 as a proxy)")
	flag.BoolVar(&c.register, "register", true, "register the users first (201 or 409); false: they exist")
	flag.BoolVar(&c.strict, "sigterm-strict", true, "count requests sent before SIGTERM that got no byte of an answer as failures (false: only answers cut short)")
	flag.BoolVar(&c.failOn5xx, "fail-on-5xx", true, "exit 1 when any answer was 5xx")
	flag.BoolVar(&c.resetHWM, "reset-hwm", true, "reset the server's VmHWM at the start (root or same user)")
	flag.Parse()

	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "load:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	c.url = strings.TrimRight(c.url, "/")
	if c.duration <= 0 || c.duration > maxDuration {
		return fmt.Errorf("-duration must be in (0, %s]", maxDuration)
	}
	if c.sigtermAfter > 0 && c.sigtermAfter >= c.duration {
		return errors.New("-sigterm-after must be shorter than -duration")
	}
	if c.sigtermAfter > 0 && c.pid == 0 && c.serverBin == "" {
		return errors.New("-sigterm-after needs -pid or -server-bin")
	}
	// SIGINT/SIGTERM to this program end the run early; the deferred stop still ends the server.
	sctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	ctx, cancel := context.WithTimeout(sctx, c.duration+c.shutdownTO+2*time.Minute)
	defer cancel()

	srv, err := startOrAttach(ctx, c)
	if err != nil {
		return err
	}
	defer srv.stop()
	cl := newAuthClient(c.url, c.ua, c.reqTimeout)
	cl.register = c.register

	if c.burst > 0 {
		return runBurst(ctx, c, cl, srv)
	}
	return runLoad(ctx, c, cl, srv)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func envDur(k string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(k)); err == nil && d > 0 {
		return d
	}
	return def
}
