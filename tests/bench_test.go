package tests

import (
	"net/http/httptest"
	"testing"
)

// BenchmarkMeHotPath serves GET /me through the whole router (every
// middleware, the cookie decode, the one Redis GET, the JSON answer) without
// the network stack, for allocs/op and a CPU profile:
//
//	go test -run '^$' -bench MeHotPath -benchmem -cpuprofile /tmp/me.prof ./tests
func BenchmarkMeHotPath(b *testing.B) {
	deps := newDeps(b, env{"LOG_LEVEL": "info"})
	s := deps.start(b)
	handler := buildRouter(b, s.Config, discardLogger(), s.DB, s.Redis)

	reg := httptest.NewRequest("POST", "/register", stringsReader(`{"email":"`+uniqueEmail("bench")+`","password":"`+testPassword+`","name":"B"}`))
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
