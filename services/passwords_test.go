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
		ok, rehash, err := h.Verify(ctx, tc.password, tc.hash)
		if ok != tc.ok || rehash != tc.rehash || (err != nil) != tc.fails {
			t.Errorf("%s: got ok=%v rehash=%v err=%v, want ok=%v rehash=%v fails=%v", tc.name, ok, rehash, err, tc.ok, tc.rehash, tc.fails)
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
