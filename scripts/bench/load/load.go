package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
)

// shutdownResult is what the -sigterm-after check observed.
type shutdownResult struct {
	sent   time.Time
	exited bool
	code   int // -2: unknown (not our child)
	after  time.Duration
}

func runLoad(ctx context.Context, c config, cl *authClient, srv *server) error {
	meCookie, err := cl.sessionCookie(c.email, c.password, "Load Me")
	if err != nil {
		return err
	}
	if c.loginRate > 0 || (c.sigtermAfter > 0 && c.sigtermLogins > 0) {
		ck, err := cl.sessionCookie(c.loginEmail, c.password, "Load Login")
		if err != nil {
			return err
		}
		cl.logout(ck)
	}
	u, err := url.Parse(c.url)
	if err != nil || u.Host == "" {
		return fmt.Errorf("bad -url %q", c.url)
	}
	request := []byte(fmt.Sprintf("GET /me HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: application/json\r\nCookie: %s\r\n\r\n",
		u.Host, c.ua, meCookie))

	runCtx, stopRun := context.WithTimeout(ctx, c.duration)
	defer stopRun()
	var sig sigClock
	var wg, logins sync.WaitGroup
	meGroups := make([]*group, c.conns)
	loginG, logoutG := newGroup(), newGroup()
	start := time.Now()
	for i := range meGroups {
		meGroups[i] = newGroup()
		w := &meWorker{addr: u.Host, request: request, timeout: c.reqTimeout, g: meGroups[i]}
		wg.Add(1)
		go func() { defer wg.Done(); w.run(runCtx, &sig) }()
	}
	loginOnce := func() {
		defer logins.Done()
		r := cl.login(c.loginEmail, c.password)
		loginG.mu.Lock()
		loginG.add(r.start, r.start.Add(r.latency), r.status, r.err, sig.at())
		loginG.mu.Unlock()
		if r.cookie != "" {
			o := cl.logout(r.cookie)
			logoutG.mu.Lock()
			logoutG.add(o.start, o.start.Add(o.latency), o.status, o.err, sig.at())
			logoutG.mu.Unlock()
		}
	}
	if c.loginRate > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(time.Duration(float64(time.Second) / c.loginRate))
			defer t.Stop()
			for {
				select {
				case <-runCtx.Done():
					return
				case <-t.C:
					logins.Add(1)
					go loginOnce()
				}
			}
		}()
	}
	var sd *shutdownResult
	if c.sigtermAfter > 0 {
		sd = &shutdownResult{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			pause(runCtx, c.sigtermAfter-10*time.Millisecond)
			if runCtx.Err() != nil {
				return
			}
			for range c.sigtermLogins {
				logins.Add(1)
				go loginOnce()
			}
			time.Sleep(10 * time.Millisecond)
			sd.sent = time.Now()
			sig.set(sd.sent)
			if err := srv.signal(syscall.SIGTERM); err != nil {
				fmt.Printf("SIGTERM to pid %d failed: %v\n", srv.pid, err)
				return
			}
			sd.exited, sd.code, sd.after = srv.waitExit(sd.sent, c.shutdownTO+5*time.Second)
			time.Sleep(500 * time.Millisecond) // let the workers see the refusals, then stop
			stopRun()
		}()
	}
	<-runCtx.Done()
	elapsed := time.Since(start)
	wg.Wait()
	logins.Wait()

	me := newGroup()
	for _, g := range meGroups {
		me.merge(g)
	}
	return report(c, srv, me, loginG, logoutG, sd, elapsed)
}

func report(c config, srv *server, me, login, logout *group, sd *shutdownResult, elapsed time.Duration) error {
	secs := elapsed.Seconds()
	if sd != nil && !sd.sent.IsZero() {
		secs = c.sigtermAfter.Seconds() // rates over the part before the signal
	}
	fmt.Printf("duration=%s conns=%d login_rate=%.1f/s url=%s\n", elapsed.Round(time.Millisecond), c.conns, c.loginRate, c.url)
	fmt.Println(me.line("GET /me", secs))
	fmt.Println(login.line("POST /login", secs))
	fmt.Println(logout.line("POST /logout", secs))
	meS, ls := me.summarize(), login.summarize()
	fmt.Printf("GET /me 2xx bodies that were not the user JSON: %d\n", me.badBody)
	hwm, sampled := srv.peak()
	if srv.pid > 0 {
		fmt.Printf("server pid=%d peak_rss_mib=%.1f (VmHWM) max_sampled_rss_mib=%.1f\n", srv.pid, float64(hwm)/1024, float64(sampled)/1024)
	}
	fmt.Printf("LOADSUMMARY me_req_per_s=%.1f me_p50_ms=%s me_p99_ms=%s me_non2xx=%d me_5xx=%d me_transport_errors=%d login_n=%d login_p50_ms=%s login_p99_ms=%s login_non2xx=%d login_5xx=%d peak_rss_kib=%d\n",
		float64(me.before)/secs, ms(meS.p50), ms(meS.p99), meS.non2xx, meS.n5xx, meS.errsBefore+meS.errsAf,
		ls.n, ms(ls.p50), ms(ls.p99), ls.non2xx, ls.n5xx, hwm)
	var problems []string
	if c.failOn5xx && meS.n5xx+ls.n5xx+logout.summarize().n5xx > 0 {
		problems = append(problems, "5xx answers")
	}
	if sd == nil {
		if meS.errsBefore > 0 {
			problems = append(problems, "transport errors on GET /me")
		}
	} else if p := shutdownVerdict(c, me, login, logout, sd); p != "" {
		problems = append(problems, p)
	}
	if len(problems) > 0 {
		return errors.New("FAIL: " + strings.Join(problems, "; "))
	}
	fmt.Println("PASS")
	return nil
}

func shutdownVerdict(c config, me, login, logout *group, sd *shutdownResult) string {
	if sd.sent.IsZero() {
		return "SIGTERM was not sent"
	}
	hard, soft := 0, 0
	kinds := map[string]int{}
	for _, g := range []*group{me, login, logout} {
		for k, n := range g.errs {
			kind, ok := strings.CutPrefix(k, "before:")
			if !ok {
				continue
			}
			kinds[kind] += n
			if strings.HasPrefix(kind, "unanswered") {
				soft += n
			} else {
				hard += n
			}
		}
	}
	fmt.Printf("sigterm: sent at %s; requests written before it and answered after it (in flight): GET /me %d, POST /login %d, POST /logout %d\n",
		c.sigtermAfter, me.inflight, login.inflight, logout.inflight)
	fmt.Printf("sigterm: requests written before it that got NO complete answer: %d %s\n", hard+soft, fmtMap(kinds))
	fmt.Printf("sigterm:   of which cut short / timed out / other: %d; with no byte of an answer (closed as idle, or dropped from the accept queue): %d\n", hard, soft)
	failed := hard + soft
	if !c.strict {
		failed = hard
	}
	fmt.Printf("sigterm: after it (expected refusals/closes, not failures): GET /me %s, POST /login %s\n", afterOnly(me.errs), afterOnly(login.errs))
	limit := c.shutdownTO + time.Second
	switch {
	case !sd.exited:
		fmt.Printf("sigterm: server still running %s after the signal\n", sd.after.Round(time.Millisecond))
	case sd.code == -2:
		fmt.Printf("sigterm: server exited %s after the signal (exit code unknown: not started by this program)\n", sd.after.Round(time.Millisecond))
	default:
		fmt.Printf("sigterm: server exited with code %d, %s after the signal (limit %s = SHUTDOWN_TIMEOUT + 1 s)\n", sd.code, sd.after.Round(time.Millisecond), limit)
	}
	var p []string
	if failed > 0 {
		p = append(p, fmt.Sprintf("%d requests sent before SIGTERM got no complete answer", failed))
	}
	if !sd.exited || sd.after > limit {
		p = append(p, "server did not exit within the shutdown timeout")
	} else if sd.code != 0 && sd.code != -2 {
		p = append(p, fmt.Sprintf("server exited with code %d", sd.code))
	}
	return strings.Join(p, "; ")
}

func afterOnly(m map[string]int) string {
	out := map[string]int{}
	for k, v := range m {
		if s, ok := strings.CutPrefix(k, "after:"); ok {
			out[s] = v
		}
	}
	return fmtMap(out)
}

func runBurst(ctx context.Context, c config, cl *authClient, srv *server) error {
	emails := []string{c.loginEmail}
	if c.loginUsers > 1 {
		if !strings.Contains(c.loginEmail, "%d") {
			return errors.New("-login-users > 1 needs a -login-email pattern with %d")
		}
		emails = emails[:0]
		for i := 1; i <= c.loginUsers; i++ {
			emails = append(emails, fmt.Sprintf(c.loginEmail, i))
		}
	}
	for _, e := range emails {
		if err := cl.ensureUser(e, c.password, "Load Login"); err != nil {
			return err
		}
	}
	g := newGroup()
	var wg sync.WaitGroup
	var cookies []string
	gate := make(chan struct{})
	for i := range c.burst {
		var hdr []string
		if c.spoofXFF {
			hdr = []string{"X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255+1)}
		}
		email := emails[i%len(emails)]
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			r := cl.login(email, c.password, hdr...)
			g.mu.Lock()
			defer g.mu.Unlock()
			g.add(r.start, r.start.Add(r.latency), r.status, r.err, time.Time{})
			if r.cookie != "" {
				cookies = append(cookies, r.cookie)
			}
		}()
	}
	start := time.Now()
	close(gate)
	wg.Wait()
	elapsed := time.Since(start)
	hwm, sampled := srv.peak()
	s := g.summarize()
	fmt.Println(g.line(fmt.Sprintf("burst of %d concurrent POST /login over %d user(s)", c.burst, len(emails)), elapsed.Seconds()))
	fmt.Printf("BURSTSUMMARY n=%d users=%d wall_s=%.2f p50_ms=%s p99_ms=%s max_ms=%s non2xx=%d 5xx=%d transport_errors=%d statuses=%s peak_rss_kib=%d max_sampled_rss_kib=%d\n",
		c.burst, len(emails), elapsed.Seconds(), ms(s.p50), ms(s.p99), ms(s.max), s.non2xx, s.n5xx, s.errsBefore, fmtMap(g.status), hwm, sampled)
	for _, ck := range cookies {
		if ctx.Err() != nil {
			break
		}
		cl.logout(ck)
	}
	return nil
}
