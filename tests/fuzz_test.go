package tests

import (
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzLoginAndRegister drives /login and /register with arbitrary bodies,
// content types and cookies, and accepts only contract answers: a known
// status with the contract's error shape, never a 5xx. The seed corpus in
// testdata/fuzz runs as a normal test; `go test -fuzz FuzzLoginAndRegister ./tests` explores.
func FuzzLoginAndRegister(f *testing.F) {
	f.Add("/login", "application/json", `{"email":"a@b.c","password":"12345678"}`, "")
	f.Add("/register", "application/json", `{"email":"a@b.c","password":"correct horse","name":"A"}`, "")
	f.Add("/login", "application/json; charset=utf-8", `{"email":"\u0000","password":[1,2]}`, "sessionId=%%%")
	f.Add("/register", "text/plain", `{}`, "sessionId=MTcwMHxBQUFB|x")
	f.Add("/login", "", ``, "")
	f.Add("/register", "application/json", `{"email":"`+strings.Repeat("é", 300)+`@x.y","password":null,"name":{}}`, "")
	f.Add("/login", "application/json", `{"email":"a@b.c","password":"12345678"}{"x":1}`, "")
	f.Add("/login", "application/JSON;;", `[]`, "a=b; sessionId=")

	deps := newDeps(f, env{"REGISTER_IP_MAX": "1000000", "LOGIN_MAX_FAILURES": "1000000", "LOGIN_IP_MAX_FAILURES": "1000000"})
	handler := deps.startQuiet(f).App.Handler
	allowed := map[int]bool{200: true, 201: true, 400: true, 401: true, 409: true, 413: true, 415: true, 429: true}

	f.Fuzz(func(t *testing.T, path, contentType, body, cookie string) {
		if path != "/login" && path != "/register" {
			path = "/login"
		}
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		if contentType != "" && validHeaderValue(contentType) {
			req.Header.Set("Content-Type", contentType)
		}
		if cookie != "" && validHeaderValue(cookie) {
			req.Header.Set("Cookie", cookie)
		}
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if !allowed[rec.Code] {
			t.Fatalf("got status %d for %q %q: %s", rec.Code, contentType, body, rec.Body.String())
		}
		if rec.Code >= 400 {
			var e struct {
				Error   string `json:"error"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" || e.Message == "" {
				t.Fatalf("got a non-contract error body %q", rec.Body.String())
			}
		}
		if rec.Header().Get("Cache-Control") != "no-store" {
			t.Fatal("missing Cache-Control")
		}
	})
}

// validHeaderValue mirrors net/http's check, so the fuzzer only sends
// requests a real client could.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
