package tests

import (
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkMeHotPath serves GET /me through the whole router (every
// middleware, the cookie decode, the one Redis GET, the JSON answer) without
// the network stack, for allocs/op and a CPU profile:
//
//	go test -run '^$' -bench MeHotPath -benchmem -cpuprofile /tmp/me.prof ./tests
func BenchmarkMeHotPath(b *testing.B) {
	deps := newDeps(b, env{"LOG_LEVEL": "info"})
	handler := deps.startQuiet(b).App.Handler

	reg := httptest.NewRequest("POST", "/register", strings.NewReader(`{"email":"`+uniqueEmail("bench")+`","password":"`+testPassword+`","name":"B"}`))
	reg.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, reg)
	if rec.Code != 201 {
		b.Fatalf("register: %d %s", rec.Code, rec.Body.String())
	}
	cookie := rec.Result().Cookies()[0]

	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("GET", "/me", nil)
		req.AddCookie(cookie)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("got %d", w.Code)
		}
	}
}

// BenchmarkLoginUnknownVsWrongPassword measures POST /login through the whole
// router with real Argon2id at the OWASP parameters: an unknown email and a
// wrong password must cost the same (docs/benchmarks.md records the medians).
//
//	go test -run '^$' -bench LoginUnknownVsWrong -benchtime 30x -count 5 ./tests
func BenchmarkLoginUnknownVsWrongPassword(b *testing.B) {
	deps := newDeps(b, env{"ARGON2_MEMORY_KIB": "19456", "ARGON2_ITERATIONS": "2", "HASH_CONCURRENCY": "1",
		"LOGIN_MAX_FAILURES": "1000000", "LOGIN_IP_MAX_FAILURES": "1000000"})
	handler := deps.startQuiet(b).App.Handler
	email := uniqueEmail("timing")
	post := func(path, body string) int {
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, req)
		return w.Code
	}
	if code := post("/register", `{"email":"`+email+`","password":"`+testPassword+`","name":"T"}`); code != 201 {
		b.Fatalf("register: %d", code)
	}
	for _, tc := range []struct{ name, email string }{{"unknown-email", "nobody-" + email}, {"wrong-password", email}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if code := post("/login", `{"email":"`+tc.email+`","password":"not the password"}`); code != 401 {
					b.Fatalf("got %d, want 401", code)
				}
			}
		})
	}
}
