package services

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sessionauth/api/models"
)

func TestHasherVerifiesArgon2idAndBcrypt(t *testing.T) {
	ctx := context.Background()
	h, err := NewHasher(Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, 2, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	argon, _ := h.Hash(ctx, "right password")
	if !strings.HasPrefix(argon, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("got %q, want a PHC Argon2id string", argon)
	}
	bc, _ := bcrypt.GenerateFromPassword([]byte("right password"), bcrypt.MinCost)
	cases := []struct {
		name, password, hash string
		ok, rehash, fails    bool
	}{
		{"argon2id right", "right password", argon, true, false, false},
		{"argon2id wrong", "wrong password", argon, false, false, false},
		{"bcrypt right", "right password", string(bc), true, true, false},
		{"bcrypt wrong", "wrong password", string(bc), false, false, false},
		{"older parameters", "right password", mustHash(t, "right password", 32), true, true, false},
		{"malformed", "x", "$argon2id$v=19$m=64", false, false, true},
		{"unknown scheme", "x", "plaintext", false, false, true},
	}
	for _, tc := range cases {
		v, err := h.Verify(ctx, tc.password, tc.hash)
		if v.OK != tc.ok || v.Rehash != tc.rehash || (err != nil) != tc.fails {
			t.Errorf("%s: got ok=%v rehash=%v err=%v, want ok=%v rehash=%v fails=%v", tc.name, v.OK, v.Rehash, err, tc.ok, tc.rehash, tc.fails)
		}
	}
}

// TestBcryptNeverMatchesPastItsFirst72Bytes: bcrypt ignores what follows
// the 72nd byte, so without the length check any password sharing those
// bytes matched (and was rehashed in place of the owner's).
func TestBcryptNeverMatchesPastItsFirst72Bytes(t *testing.T) {
	ctx := context.Background()
	h, err := NewHasher(Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	owner := strings.Repeat("correct horse battery staple ", 3)[:72]
	stored, err := bcrypt.GenerateFromPassword([]byte(owner), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		password string
		ok       bool
	}{
		{owner, true},
		{owner + "!", false},
		{owner + " and anything an attacker appends", false},
		{owner[:71] + "é", false}, // 73 bytes: the multi-byte character crosses the limit
		{owner[:71], false},
	} {
		v, err := h.Verify(ctx, tc.password, string(stored))
		if err != nil || v.OK != tc.ok || v.Rehash != tc.ok {
			t.Errorf("%d bytes: got ok=%v rehash=%v err=%v, want ok=%v", len(tc.password), v.OK, v.Rehash, err, tc.ok)
		}
		if v.Family != "bcrypt cost 4" || v.Took <= 0 {
			t.Errorf("%d bytes: got family %q took %v, want bcrypt cost 4 and its time", len(tc.password), v.Family, v.Took)
		}
	}
}

func TestVerificationNamesTheHashFamily(t *testing.T) {
	ctx := context.Background()
	h, err := NewHasher(Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	bc10, _ := bcrypt.GenerateFromPassword([]byte("pw"), 10)
	for hash, want := range map[string]string{
		h.DummyHash():         "argon2id m=64,t=1,p=1",
		mustHash(t, "pw", 32): "argon2id m=32,t=1,p=1",
		string(bc10):          "bcrypt cost 10",
		"$2b$99$x":            "",
		"plaintext":           "",
	} {
		if v, _ := h.Verify(ctx, "a guess", hash); v.Family != want {
			t.Errorf("%.12s: got family %q, want %q", hash, v.Family, want)
		}
	}
}

func mustHash(t *testing.T, password string, memory uint32) string {
	t.Helper()
	h, err := NewHasher(Argon2Params{MemoryKiB: memory, Iterations: 1, Parallelism: 1}, 1, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s, err := h.Hash(context.Background(), password)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestHashingSaturationIsServiceUnavailable(t *testing.T) {
	h, err := NewHasher(Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1}, 1, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	release, err := h.acquire(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	start := time.Now()
	_, err = h.Hash(context.Background(), "password that waits")
	if !errors.Is(err, models.ErrUnavailable) {
		t.Fatalf("got %v, want service_unavailable", err)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond || waited > time.Second {
		t.Fatalf("waited %v, want about the 50 ms bound", waited)
	}
}
