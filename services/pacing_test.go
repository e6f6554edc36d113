package services

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sessionauth/api/models"
)

func TestLoginPacerPadsToTheSlowestFamilyWithinTheLimit(t *testing.T) {
	p := NewLoginPacer(time.Second)
	if got := p.Pad(0); got != 0 {
		t.Fatalf("got %v before any verification, want 0", got)
	}
	p.Observe("argon2id m=19456,t=2,p=1", 28*time.Millisecond)
	p.Observe("bcrypt cost 12", 270*time.Millisecond)
	p.Observe("argon2id m=4096,t=1,p=1", 7*time.Millisecond)
	p.Observe("", time.Hour) // an unreadable hash teaches nothing
	for took, want := range map[time.Duration]time.Duration{
		28 * time.Millisecond:  242 * time.Millisecond,
		7 * time.Millisecond:   263 * time.Millisecond,
		270 * time.Millisecond: 0,
		300 * time.Millisecond: 0, // a slow verification of the slowest family waits nothing more
	} {
		if got := p.Pad(took); got != want {
			t.Errorf("Pad(%v): got %v, want %v", took, got, want)
		}
	}
	p.Observe("bcrypt cost 16", 5*time.Second)
	if got := p.Pad(0); got != time.Second {
		t.Fatalf("got %v, want the limit of 1s", got)
	}
}

// TestLoginPacerBoundsWhatOneSampleDoes: a verification slowed down (a busy
// machine, or an attacker loading it) moves the estimate by a thirty-second,
// however slow it was, so it cannot make every later failure wait much
// longer; a lasting change is followed.
func TestLoginPacerBoundsWhatOneSampleDoes(t *testing.T) {
	p := NewLoginPacer(MaxLoginPadding)
	p.Observe("f", 96*time.Millisecond)
	p.Observe("f", 10*time.Second)
	if got := p.Pad(0); got != 99*time.Millisecond {
		t.Fatalf("got %v after one outlier, want 99ms", got)
	}
	for range 100 {
		p.Observe("f", 200*time.Millisecond)
	}
	if got := p.Pad(0); got < 190*time.Millisecond || got > 210*time.Millisecond {
		t.Fatalf("got %v, want the estimate to follow a lasting change to about 200ms", got)
	}
	// Samples around a median: the estimate settles on it, not on the mean.
	for i := range 300 {
		p.Observe("f", []time.Duration{300, 310, 320, 900}[i%4]*time.Millisecond)
	}
	if got := p.Pad(0); got < 290*time.Millisecond || got > 340*time.Millisecond {
		t.Fatalf("got %v, want about the median (310–320ms), not the mean (457ms)", got)
	}
	for i := range 2 * maxHashFamilies {
		p.Observe(string(rune('a'+i)), time.Millisecond)
	}
	if n := len(p.estimates); n != maxHashFamilies {
		t.Fatalf("got %d estimates, want at most %d", n, maxHashFamilies)
	}
}

// TestFailedLoginsWaitForTheSlowestFamily drives Auth.Login through every
// failure path with a fake clock: the hasher reports how long each family
// takes and the pacer records the sleep it is asked for, so every failure
// must ask for the slowest family's time minus its own.
func TestFailedLoginsWaitForTheSlowestFamily(t *testing.T) {
	hasher := &countingHasher{dummy: "current:no password matches this", took: map[string]time.Duration{
		"current": 28 * time.Millisecond, "bcrypt12": 270 * time.Millisecond, "argon-old": 7 * time.Millisecond,
	}}
	var asked []time.Duration
	pacer := NewLoginPacer(MaxLoginPadding)
	pacer.sleep = func(_ context.Context, d time.Duration) { asked = append(asked, d) }
	auth, users := newTestAuthWithPacer(t, hasher, pacer)
	ctx := context.Background()
	for email, hash := range map[string]string{"current@example.com": "current:right password",
		"legacy@example.com": "bcrypt12:right password", "old@example.com": "argon-old:right password",
		"disabled@example.com": "current:right password"} {
		user, err := users.Create(ctx, NewUser{Email: email, Name: "U", Role: models.RoleUser, PasswordHash: hash})
		if err != nil {
			t.Fatal(err)
		}
		if email == "disabled@example.com" {
			disabled := true
			noSessions := func(context.Context, string, int64) (int, error) { return 0, nil }
			if _, _, err := users.Update(ctx, user.ID, UserPatch{Disabled: &disabled}, noSessions); err != nil {
				t.Fatal(err)
			}
		}
	}
	// A legacy user logs in: the bcrypt family is now known, and a success waits nothing.
	if _, err := auth.Login(ctx, "legacy@example.com", "right password", "192.0.2.1"); err != nil || len(asked) != 0 {
		t.Fatalf("got %v and sleeps %v, want a success that waits nothing", err, asked)
	}
	cases := []struct {
		name, email, password string
		want                  time.Duration
	}{
		{"unknown email", "nobody@example.com", "any password", 242 * time.Millisecond},
		{"wrong password", "current@example.com", "wrong password", 242 * time.Millisecond},
		{"disabled", "disabled@example.com", "right password", 242 * time.Millisecond},
		{"older argon2id", "old@example.com", "wrong password", 263 * time.Millisecond},
		{"bcrypt cost 12", "legacy@example.com", "wrong password", 0},
	}
	for _, tc := range cases {
		asked = nil
		if _, err := auth.Login(ctx, tc.email, tc.password, "192.0.2.1"); !errors.Is(err, models.ErrInvalidCredentials) {
			t.Fatalf("%s: got %v, want invalid_credentials", tc.name, err)
		}
		var got time.Duration
		for _, d := range asked {
			got += d
		}
		if got != tc.want {
			t.Errorf("%s: got a wait of %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestPaddingHoldsNoHashingSlot: while a failed login waits, another
// verification gets the only hashing slot at once, so padding cannot
// starve the logins of others.
func TestPaddingHoldsNoHashingSlot(t *testing.T) {
	h, err := NewHasher(Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, 1, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	pacer := NewLoginPacer(MaxLoginPadding)
	pacer.Observe("bcrypt cost 14", time.Second)
	waiting, done := make(chan struct{}), make(chan struct{})
	pacer.sleep = func(context.Context, time.Duration) {
		close(waiting)
		<-done
	}
	auth, _ := newTestAuthWithPacer(t, h, pacer)
	var wg sync.WaitGroup
	wg.Go(func() { _, _ = auth.Login(context.Background(), "nobody@example.com", "a guess", "192.0.2.2") })
	<-waiting
	if _, err := h.Verify(context.Background(), "another", h.DummyHash()); err != nil {
		t.Fatalf("got %v while a failure was padded, want the slot free", err)
	}
	close(done)
	wg.Wait()
}

// TestLearnHashCostsMeasuresEveryStoredFamilyAtStart: the families come
// from the database, so the first probe of a legacy account after a start is
// already padded like the others.
func TestLearnHashCostsMeasuresEveryStoredFamilyAtStart(t *testing.T) {
	h, err := NewHasher(Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pacer := NewLoginPacer(MaxLoginPadding)
	auth, users := newTestAuthWithPacer(t, h, pacer)
	ctx := context.Background()
	older := mustHash(t, "pw", 32)
	bc4, _ := bcrypt.GenerateFromPassword([]byte("pw"), 4)
	bc5, _ := bcrypt.GenerateFromPassword([]byte("pw"), 5)
	bc5b, _ := bcrypt.GenerateFromPassword([]byte("other"), 5)
	current, _ := h.Hash(ctx, "pw")
	for i, hash := range []string{older, string(bc4), string(bc5), string(bc5b), current, current, "garbage"} {
		if _, err := users.Create(ctx, NewUser{Email: fmt.Sprintf("u%d@example.com", i), Name: "U", Role: models.RoleUser, PasswordHash: hash}); err != nil {
			t.Fatal(err)
		}
	}
	samples, err := users.HashSamples(ctx, paramsPrefix(h.DummyHash()), maxHashFamilies)
	if err != nil || len(samples) != 4 || slices.Contains(samples, current) {
		t.Fatalf("got samples %q, %v; want one per family (bcrypt 4, bcrypt 5, older Argon2id, garbage), none current", samples, err)
	}
	families, err := auth.LearnHashCosts(ctx)
	slices.Sort(families)
	want := []string{"argon2id m=32,t=1,p=1", "argon2id m=64,t=1,p=1", "bcrypt cost 4", "bcrypt cost 5"}
	if err != nil || !slices.Equal(families, want) {
		t.Fatalf("got %q, %v; want %q", families, err, want)
	}
	for _, f := range want {
		if pacer.estimates[f] <= 0 {
			t.Errorf("got no estimate for %s", f)
		}
	}
}

func TestParamsPrefix(t *testing.T) {
	for in, want := range map[string]string{
		"$argon2id$v=19$m=64,t=1,p=1$c2FsdA$a2V5": "$argon2id$v=19$m=64,t=1,p=1$",
		"dummy": "dummy",
	} {
		if got := paramsPrefix(in); got != want {
			t.Errorf("paramsPrefix(%q): got %q, want %q", in, got, want)
		}
	}
}
