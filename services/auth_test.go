package services

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services/commonpasswords"
)

// countingHasher records every verification, so a test can see which hash
// each login path verified. A stored hash is "hash:<password>" or
// "<family>:<password>" with a family of took (in took, by family name).
type countingHasher struct {
	dummy    string
	verified []string
	took     map[string]time.Duration
}

func (h *countingHasher) Hash(_ context.Context, pw string) (string, error) { return "hash:" + pw, nil }
func (h *countingHasher) DummyHash() string                                 { return h.dummy }
func (h *countingHasher) Verify(_ context.Context, pw, encoded string) (Verification, error) {
	h.verified = append(h.verified, encoded)
	family, stored, _ := strings.Cut(encoded, ":")
	return Verification{OK: stored == pw, Family: family, Took: h.took[family]}, nil
}

func newTestAuth(t *testing.T, hasher PasswordHasher) (*Auth, *Users) {
	return newTestAuthWithLimit(t, hasher, 100)
}

func newTestAuthWithLimit(t *testing.T, hasher PasswordHasher, maxFailures int) (*Auth, *Users) {
	return newTestAuthWith(t, hasher, maxFailures, nil)
}

func newTestAuthWithPacer(t *testing.T, hasher PasswordHasher, pacer *LoginPacer) (*Auth, *Users) {
	return newTestAuthWith(t, hasher, 100, pacer)
}

// newTestStores opens a migrated SQLite database and an in-process Redis of
// the test's own.
func newTestStores(t *testing.T) (*gorm.DB, *Redis) {
	t.Helper()
	db, err := OpenDatabase(DatabaseOptions{SQLitePath: filepath.Join(t.TempDir(), "a.db")})
	if err != nil {
		t.Fatal(err)
	}
	if err := Migrate(context.Background(), db); err != nil {
		t.Fatal(err)
	}
	url, stop, err := StartEmbeddedRedis()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	rdb := NewRedis(RedisOptions{URL: url, PoolSize: 4, Timeout: time.Second, KeyPrefix: "unit:"})
	t.Cleanup(func() { _ = rdb.Close() })
	return db, rdb
}

func newTestAuthWith(t *testing.T, hasher PasswordHasher, maxFailures int, pacer *LoginPacer) (*Auth, *Users) {
	t.Helper()
	db, rdb := newTestStores(t)
	users := NewUsers(db, time.Second)
	throttle := NewThrottle(rdb, ThrottleLimits{LoginMaxFailures: maxFailures, LoginIPMaxFailures: 100,
		LoginWindow: time.Minute, RegisterIPMax: 100, RegisterWindow: time.Minute})
	sessions := NewSessionStore(rdb, SessionStoreOptions{Lifetimes: models.SessionLifetimes{Idle: time.Hour, Absolute: time.Hour}})
	return NewAuth(AuthOptions{Users: users, Hasher: hasher, Throttle: throttle, Sessions: sessions,
		CommonPasswords: commonpasswords.New(), Pacer: pacer, Log: slog.New(slog.DiscardHandler)}), users
}

// TestUnknownEmailVerifiesTheDummyHash shows the unknown-email path runs the
// same verifier as a wrong password, once, on the dummy hash.
func TestUnknownEmailVerifiesTheDummyHash(t *testing.T) {
	hasher := &countingHasher{dummy: "dummy-hash-of-current-parameters"}
	auth, users := newTestAuth(t, hasher)
	ctx := context.Background()
	if _, err := users.Create(ctx, NewUser{Email: "known@example.com", Name: "K", Role: models.RoleUser, PasswordHash: "hash:right password"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, email, password, wantHash string
	}{
		{"unknown email", "nobody@example.com", "any password", "dummy-hash-of-current-parameters"},
		{"wrong password", "known@example.com", "wrong password", "hash:right password"},
	}
	for _, tc := range cases {
		hasher.verified = nil
		_, err := auth.Login(ctx, tc.email, tc.password, "192.0.2.1")
		if !errors.Is(err, models.ErrInvalidCredentials) {
			t.Fatalf("%s: got %v, want invalid_credentials", tc.name, err)
		}
		if len(hasher.verified) != 1 || hasher.verified[0] != tc.wantHash {
			t.Fatalf("%s: got verifications %v, want exactly one of %q", tc.name, hasher.verified, tc.wantHash)
		}
	}
}

func TestDummyHashHasTheCurrentParameters(t *testing.T) {
	h, err := NewHasher(Argon2Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	real, err := h.Hash(context.Background(), "some password")
	if err != nil {
		t.Fatal(err)
	}
	params := func(s string) string { return s[:len("$argon2id$v=19$m=19456,t=2,p=1$")] }
	if params(h.DummyHash()) != params(real) {
		t.Fatalf("got dummy %q, want the parameters of %q", params(h.DummyHash()), params(real))
	}
}

// BenchmarkLoginPaths measures an unknown email against a wrong password with
// real Argon2id at the OWASP parameters; docs/benchmarks.md records the medians.
func BenchmarkLoginPaths(b *testing.B) {
	h, err := NewHasher(Argon2Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1}, 1, time.Minute)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	stored, _ := h.Hash(ctx, "the right password")
	b.Run("unknown-email", func(b *testing.B) {
		for b.Loop() {
			_, _ = h.Verify(ctx, "a guess", h.DummyHash())
		}
	})
	b.Run("wrong-password", func(b *testing.B) {
		for b.Loop() {
			_, _ = h.Verify(ctx, "a guess", stored)
		}
	})
}

// cancelingHasher is a hasher during whose verification the client goes away.
type cancelingHasher struct {
	countingHasher
	cancel context.CancelFunc
}

func (h *cancelingHasher) Verify(ctx context.Context, pw, encoded string) (Verification, error) {
	h.cancel()
	return h.countingHasher.Verify(ctx, pw, encoded)
}

// TestAbandonedCorrectLoginIsNotAFailure: a client that gives up while its
// correct password is being verified must not leave a failure counted.
func TestAbandonedCorrectLoginIsNotAFailure(t *testing.T) {
	hasher := &cancelingHasher{countingHasher: countingHasher{dummy: "dummy"}}
	auth, users := newTestAuthWithLimit(t, hasher, 1)
	if _, err := users.Create(context.Background(), NewUser{Email: "a@example.com", Name: "A", Role: models.RoleUser, PasswordHash: "hash:right password"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		hasher.cancel = cancel
		if _, err := auth.Login(ctx, "a@example.com", "right password", "192.0.2.9"); err != nil {
			t.Fatalf("login %d: got %v", i, err)
		}
	}
	// LoginMaxFailures is 1 here: one leftover count would throttle this.
	hasher.cancel = func() {}
	if _, err := auth.Login(context.Background(), "a@example.com", "right password", "192.0.2.9"); err != nil {
		t.Fatalf("got %v after abandoned logins, want success", err)
	}
}
