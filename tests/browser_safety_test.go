package tests

import (
	"net/http"
	"strings"
	"testing"

	"github.com/gin-gonic/gin"
)

const spaOrigin = "http://spa.example.test:5173"

func TestCORSAllowsOnlyConfiguredOrigins(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"CORS_ALLOWED_ORIGINS": spaOrigin + ",https://admin.example.test"})
	c := s.newClient(t)

	pre := c.do("OPTIONS", "/login", nil, "Origin", spaOrigin, "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "content-type")
	if pre.Status != http.StatusNoContent {
		t.Fatalf("got preflight %d, want 204", pre.Status)
	}
	h := pre.Header
	if h.Get("Access-Control-Allow-Origin") != spaOrigin || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("got preflight headers %v", h)
	}
	methods := h.Get("Access-Control-Allow-Methods")
	for _, m := range []string{"GET", "POST", "PATCH", "DELETE"} {
		if !strings.Contains(methods, m) {
			t.Fatalf("got Allow-Methods %q, want %s", methods, m)
		}
	}
	if !strings.Contains(strings.ToLower(h.Get("Access-Control-Allow-Headers")), "content-type") {
		t.Fatalf("got Allow-Headers %q, want Content-Type", h.Get("Access-Control-Allow-Headers"))
	}
	// A bodiless GET with Content-Type is preflighted too.
	if pre := c.do("OPTIONS", "/me", nil, "Origin", spaOrigin, "Access-Control-Request-Method", "GET",
		"Access-Control-Request-Headers", "content-type"); pre.Status != 204 {
		t.Fatalf("got /me preflight %d, want 204", pre.Status)
	}

	res := c.do("GET", "/me", nil, "Origin", spaOrigin).want(t, 401, "not_authenticated")
	if res.Header.Get("Access-Control-Allow-Origin") != spaOrigin || res.Header.Get("Access-Control-Allow-Credentials") != "true" ||
		!strings.Contains(res.Header.Get("Vary"), "Origin") {
		t.Fatalf("got %v, want CORS headers for the SPA origin", res.Header)
	}

	for _, origin := range []string{"http://evil.example.test", "null", spaOrigin + ".evil.test", "http://spa.example.test"} {
		res := c.do("GET", "/me", nil, "Origin", origin).want(t, 401, "not_authenticated")
		for name := range res.Header {
			if strings.HasPrefix(name, "Access-Control-") {
				t.Fatalf("origin %q got %s: %v", origin, name, res.Header)
			}
		}
		pre := c.do("OPTIONS", "/login", nil, "Origin", origin, "Access-Control-Request-Method", "POST")
		if pre.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Fatalf("origin %q got a preflight allowance", origin)
		}
	}
}

func TestCrossOriginProtectionOnEveryUnsafeRoute(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"CORS_ALLOWED_ORIGINS": spaOrigin})
	engine := s.App.Handler.(*gin.Engine)
	c := s.newClient(t)
	unsafe := 0
	for _, route := range engine.Routes() {
		switch route.Method {
		case "GET", "HEAD", "OPTIONS":
			continue
		}
		unsafe++
		path := strings.ReplaceAll(route.Path, ":id", "00000000-0000-0000-0000-000000000000")
		for _, hdrs := range [][]string{
			{"Sec-Fetch-Site", "cross-site"},
			{"Sec-Fetch-Site", "same-site", "Origin", "http://other.example.test"},
			{"Origin", "http://evil.example.test"},
		} {
			c.do(route.Method, path, `{}`, hdrs...).want(t, 403, "cross_origin_rejected")
		}
	}
	if unsafe < 9 {
		t.Fatalf("got %d unsafe routes, want at least 9", unsafe)
	}

	// A logged-in user survives a cross-site logout attempt; trusted,
	// same-origin and header-less requests pass.
	email := uniqueEmail("csrf")
	c.register(email)
	res := c.do("POST", "/logout", nil, "Sec-Fetch-Site", "cross-site", "Origin", "http://evil.example.test").want(t, 403, "cross_origin_rejected")
	if res.Header.Get("Set-Cookie") != "" {
		t.Fatal("a rejected logout expired the cookie")
	}
	c.do("GET", "/me", nil).want(t, 200)
	c.do("POST", "/login", map[string]any{"email": email, "password": testPassword}, "Origin", spaOrigin, "Sec-Fetch-Site", "same-site").want(t, 200)
	c.do("POST", "/login", map[string]any{"email": email, "password": testPassword}, "Sec-Fetch-Site", "same-origin").want(t, 200)
	c.do("POST", "/logout", nil).want(t, 200)
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	c := s.newClient(t)
	for _, res := range []*response{
		c.do("GET", "/healthz", nil), c.do("GET", "/me", nil), c.do("GET", "/nope", nil),
		c.do("DELETE", "/login", nil), c.do("POST", "/login", `{`),
	} {
		want := map[string]string{"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
			"Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY"}
		for name, value := range want {
			if res.Header.Get(name) != value {
				t.Fatalf("got %s %q, want %q (status %d)", name, res.Header.Get(name), value, res.Status)
			}
		}
		if res.Header.Get("Server") != "" || res.Header.Get("X-Powered-By") != "" {
			t.Fatalf("got a banner: %v", res.Header)
		}
	}
	if got := c.do("GET", "/healthz", nil, "X-Request-Id", "abc-123").Header.Get("X-Request-Id"); got != "abc-123" {
		t.Fatalf("got request id %q, want the sane one sent", got)
	}
	if got := c.do("GET", "/healthz", nil, "X-Request-Id", "bad id <script>").Header.Get("X-Request-Id"); got == "" || strings.ContainsAny(got, " <") {
		t.Fatalf("got request id %q, want a generated one", got)
	}
}
