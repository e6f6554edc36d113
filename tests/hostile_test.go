package tests

import (
	"bufio"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sessionauth/api/api"
)

func TestSecretRotationKeepsOldCookiesUntilDropped(t *testing.T) {
	t.Parallel()
	const oldSecret = "old-secret-old-secret-old-secret-0001"
	const newSecret = "new-secret-new-secret-new-secret-0002"
	deps := newDeps(t, env{"SESSION_SECRET": oldSecret})
	before := deps.start(t)
	c := before.newClient(t)
	email := uniqueEmail("rotate")
	c.register(email)
	oldCookie := c.sessionCookie().Value

	deps.settings["SESSION_SECRET"] = newSecret
	deps.settings["SESSION_SECRET_PREVIOUS"] = oldSecret
	rotated := deps.start(t)
	viaRotated := rotated.newClient(t)
	viaRotated.setSessionCookie(oldCookie)
	viaRotated.do("GET", "/me", nil).want(t, 200)
	fresh := rotated.newClient(t)
	fresh.login(email, testPassword).want(t, 200)
	newCookie := fresh.sessionCookie().Value

	delete(deps.settings, "SESSION_SECRET_PREVIOUS")
	dropped := deps.start(t)
	old := dropped.newClient(t)
	old.setSessionCookie(oldCookie)
	old.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	current := dropped.newClient(t)
	current.setSessionCookie(newCookie)
	current.do("GET", "/me", nil).want(t, 200) // new cookies were signed with the new secret
}

func TestHostileCookiesAnswer401(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	c := s.newClient(t)
	c.register(uniqueEmail("hostile"))
	good := c.sessionCookie().Value
	name := s.Config.Cookie.Name
	tampered := []byte(good)
	tampered[len(tampered)/2] ^= 0x01
	for label, value := range map[string]string{
		"tampered":  string(tampered),
		"truncated": good[:len(good)/2],
		"huge":      strings.Repeat("A", 10<<10),
		"empty":     "",
		"non-ascii": "séssion-日本-%FF%FE",
		"garbage":   "MTcwMHxub3RhY29va2ll|deadbeef",
	} {
		res := s.newClient(t).do("GET", "/me", nil, "Cookie", name+"="+value)
		if res.Status != 401 || res.Body["error"] != "not_authenticated" {
			t.Fatalf("%s cookie: got %d %s, want 401 not_authenticated", label, res.Status, res.Raw)
		}
		s.newClient(t).do("POST", "/logout", nil, "Cookie", name+"="+value).want(t, 200)
	}
	c.do("GET", "/me", nil).want(t, 200)
}

// TestSlowLorisIsCutWhileOthersAreServed trickles headers byte by byte on
// one connection while a normal client is served, and sees the server close it.
func TestSlowLorisIsCutWhileOthersAreServed(t *testing.T) {
	t.Parallel()
	deps := newDeps(t, nil)
	s := deps.start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := api.NewHTTPServer("", s.App.Handler, api.ServerTimeouts{ReadHeader: 500 * time.Millisecond, Read: time.Second,
		Write: 2 * time.Second, Idle: time.Second}, discardLogger())
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	cut := make(chan time.Duration, 1)
	go func() {
		request := "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 200)
		for i := 0; i < len(request); i++ {
			if _, err := conn.Write([]byte{request[i]}); err != nil {
				cut <- time.Since(start)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		cut <- -1
	}()
	res, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("a normal client was not served while the slow one trickled: %v", err)
	}
	res.Body.Close()
	// The server answers the slow connection with a timeout and closes it.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	if elapsed := time.Since(start); elapsed > 4*time.Second {
		t.Fatalf("slow client held the connection %v", elapsed)
	}
	if line != "" && !strings.Contains(line, "408") && !strings.Contains(line, "400") {
		t.Fatalf("got %q from the server, want a close or a 408", line)
	}
	if d := <-cut; d < 0 {
		t.Fatal("the slow client finished its headers: it was never cut")
	}
}
