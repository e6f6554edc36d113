package tests

import (
	"math"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
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

// BenchmarkFailedLoginByStoredHash measures failed POST /login through the
// whole router, real Argon2id at the OWASP parameters, for every kind of
// account an attacker may probe: an unknown email, a wrong password for a
// current Argon2id hash, a disabled account, imported bcrypt at cost 10 and
// 12, and Argon2id of older (cheaper) parameters. The cases take turns, one
// login each per round, so a change of machine load hits them all alike;
// each reports its median in ms and the spread is the slowest median over
// the fastest (the contract asks for 0.8–1.25×; docs/benchmarks.md records
// the figures). One failure per case before the timer starts stands for a
// server that has been running: the padding learns each hash family from
// the verifications it sees.
//
//	go test -run '^$' -bench FailedLoginByStoredHash -benchtime 30x ./tests
func BenchmarkFailedLoginByStoredHash(b *testing.B) {
	deps := newDeps(b, env{"ARGON2_MEMORY_KIB": "19456", "ARGON2_ITERATIONS": "2", "HASH_CONCURRENCY": "1",
		"LOGIN_MAX_FAILURES": "1000000", "LOGIN_IP_MAX_FAILURES": "1000000", "REGISTER_IP_MAX": "1000000"})
	s := deps.startQuiet(b)
	post := func(path, body string) int {
		req := httptest.NewRequest("POST", path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		s.App.Handler.ServeHTTP(w, req)
		return w.Code
	}
	current, disabled := uniqueEmail("current"), uniqueEmail("disabled")
	for _, email := range []string{current, disabled} {
		if code := post("/register", `{"email":"`+email+`","password":"`+testPassword+`","name":"T"}`); code != 201 {
			b.Fatalf("register: %d", code)
		}
	}
	if err := s.DB.Model(&models.User{}).Where("email = ?", disabled).Update("disabled", true).Error; err != nil {
		b.Fatal(err)
	}
	older, err := services.NewHasher(services.Argon2Params{MemoryKiB: 4096, Iterations: 1, Parallelism: 1}, 1, time.Second)
	if err != nil {
		b.Fatal(err)
	}
	olderHash, _ := older.Hash(b.Context(), testPassword)
	bcrypt10, _ := bcrypt.GenerateFromPassword([]byte(testPassword), 10)
	bcrypt12, _ := bcrypt.GenerateFromPassword([]byte(testPassword), 12)
	cases := []struct{ name, email string }{
		{"unknown-email", "nobody-" + current}, {"argon2id-current", current}, {"disabled", disabled},
		{"bcrypt-10", uniqueEmail("bcrypt10")}, {"bcrypt-12", uniqueEmail("bcrypt12")}, {"argon2id-older", uniqueEmail("older")},
	}
	for i, hash := range map[int]string{3: string(bcrypt10), 4: string(bcrypt12), 5: olderHash} {
		user := models.User{ID: uuid.NewString(), Email: cases[i].email, Name: "Imported", Role: models.RoleUser, PasswordHash: hash, SessionVersion: 1}
		if err := s.DB.Create(&user).Error; err != nil {
			b.Fatal(err)
		}
	}
	login := func(email string) time.Duration {
		start := time.Now()
		if code := post("/login", `{"email":"`+email+`","password":"not the password"}`); code != 401 {
			b.Fatalf("got %d, want 401", code)
		}
		return time.Since(start)
	}
	for _, tc := range cases {
		login(tc.email)
	}
	took := make([][]time.Duration, len(cases))
	b.ResetTimer()
	for b.Loop() {
		for i, tc := range cases {
			took[i] = append(took[i], login(tc.email))
		}
	}
	b.StopTimer()
	fastest, slowest := time.Duration(math.MaxInt64), time.Duration(0)
	for i, tc := range cases {
		slices.Sort(took[i])
		median := took[i][len(took[i])/2]
		fastest, slowest = min(fastest, median), max(slowest, median)
		b.ReportMetric(float64(median.Microseconds())/1000, tc.name+"-p50-ms")
	}
	b.ReportMetric(float64(slowest)/float64(fastest), "slowest/fastest")
}
