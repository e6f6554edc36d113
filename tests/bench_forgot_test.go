package tests

import (
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
)

// BenchmarkForgotKnownVsUnknown measures POST /password/forgot through the
// whole router: a known and an unknown email must get their 202 in the same
// time, because the account is looked up by the mail worker after the answer
// (docs/benchmarks.md records the medians). Each round times one request of
// each, in a random order, and each request is followed by a pause, outside
// the timing, in which the worker builds that request's mail (lookup, token,
// audit event), so neither case is timed while the other's mail is built.
// Every known email is a fresh account, so each one gets its token and mail
// (a reused one would hit the limit of 3 mails per email and stop the work).
// It reports the median of each case in µs and unknown/known.
//
//	go test -run '^$' -bench ForgotKnownVsUnknown -benchtime 200x -count 5 ./tests
func BenchmarkForgotKnownVsUnknown(b *testing.B) {
	s := newDeps(b, env{"REGISTER_IP_MAX": "1000000", "LOG_LEVEL": "info"}).startQuiet(b)
	forgot := func(email string) time.Duration {
		req := httptest.NewRequest("POST", "/password/forgot", strings.NewReader(`{"email":"`+email+`"}`))
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		start := time.Now()
		s.App.Handler.ServeHTTP(w, req)
		took := time.Since(start)
		if w.Code != 202 {
			b.Fatalf("POST /password/forgot: got %d, want 202: %s", w.Code, w.Body.String())
		}
		return took
	}
	const pause = 10 * time.Millisecond
	known, unknown := []time.Duration{}, []time.Duration{}
	forgot(uniqueEmail("warm-up")) // the first request pays for lazy set-up
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		user, err := s.App.Admin.CreateUser(b.Context(), services.Registration{Email: uniqueEmail("known"), Name: "K",
			Password: testPassword, Role: models.RoleUser})
		if err != nil {
			b.Fatalf("seed user: %v", err)
		}
		knownFirst := rand.IntN(2) == 0
		for i := range 2 {
			b.StartTimer()
			if (i == 0) == knownFirst {
				known = append(known, forgot(user.Email))
			} else {
				unknown = append(unknown, forgot(uniqueEmail("nobody")))
			}
			b.StopTimer()
			time.Sleep(pause)
		}
		b.StartTimer()
	}
	b.StopTimer()
	wantMailsBuilt(b, s, len(known))
	slices.Sort(known)
	slices.Sort(unknown)
	k, u := known[len(known)/2], unknown[len(unknown)/2]
	b.ReportMetric(float64(k.Nanoseconds())/1e3, "known-µs")
	b.ReportMetric(float64(u.Nanoseconds())/1e3, "unknown-µs")
	b.ReportMetric(float64(u)/float64(k), "unknown/known")
}

// wantMailsBuilt fails unless the worker issued a reset for every known
// email (its audit event): otherwise the known case did not do the work it
// stands for.
func wantMailsBuilt(b *testing.B, s *testServer, want int) {
	b.Helper()
	var n int64
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		s.DB.Model(&models.AuditEvent{}).Where("event = ?", models.EventPasswordResetRequested).Count(&n)
		if n >= int64(want) {
			return
		}
	}
	b.Fatalf("the worker issued %d resets for %d known emails", n, want)
}
