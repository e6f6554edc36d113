package services

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/sessionauth/api/models"
)

// Argon2Params are the Argon2id cost parameters (OWASP: 19 MiB, 2 iterations, 1 lane).
type Argon2Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

const (
	argonSaltLen = 16
	argonKeyLen  = 32
)

// Hasher hashes and verifies passwords with Argon2id in PHC string form and
// accepts imported bcrypt hashes. Every hash and verification takes a slot of
// a bounded semaphore, so a login flood can exhaust neither memory nor the CPU
// that other requests need.
type Hasher struct {
	params Argon2Params
	slots  chan struct{}
	wait   time.Duration
	dummy  string
}

// NewHasher returns a Hasher running at most concurrency hashes at once; a
// caller waits at most wait for a slot.
func NewHasher(params Argon2Params, concurrency int, wait time.Duration) (*Hasher, error) {
	h := &Hasher{params: params, slots: make(chan struct{}, max(1, concurrency)), wait: wait}
	dummy, err := h.encode(make([]byte, 32)) // a hash nobody's password matches in practice
	if err != nil {
		return nil, err
	}
	h.dummy = dummy
	return h, nil
}

// DummyHash is a hash of the current parameters, verified for unknown emails
// so that they cost the same time as a wrong password.
func (h *Hasher) DummyHash() string { return h.dummy }

// Hash returns the PHC string of password. It fails with service_unavailable
// when no hashing slot frees up in time.
func (h *Hasher) Hash(ctx context.Context, password string) (string, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return h.encode([]byte(password))
}

// Verify reports whether password matches encoded (Argon2id PHC or bcrypt),
// and whether the stored hash should be replaced by one of the current
// parameters. A malformed hash is an error, never a match.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (ok, rehash bool, err error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return false, false, err
	}
	defer release()
	switch {
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		err := bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password))
		if errors.Is(err, bcrypt.ErrMismatchedHashAndPassword) {
			return false, false, nil
		}
		return err == nil, err == nil, err
	case strings.HasPrefix(encoded, "$argon2id$"):
		return h.verifyArgon2(password, encoded)
	default:
		return false, false, fmt.Errorf("unknown password hash format")
	}
}

func (h *Hasher) acquire(ctx context.Context) (func(), error) {
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots }, nil
	default:
	}
	timer := time.NewTimer(h.wait)
	defer timer.Stop()
	select {
	case h.slots <- struct{}{}:
		return func() { <-h.slots }, nil
	case <-timer.C:
		return nil, models.Unavailable("hashing", errors.New("no hashing slot within the wait"))
	case <-ctx.Done():
		return nil, models.Unavailable("hashing", ctx.Err())
	}
}

func (h *Hasher) encode(password []byte) (string, error) {
	salt := make([]byte, argonSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("read salt: %w", err)
	}
	p := h.params
	key := argon2.IDKey(password, salt, p.Iterations, p.MemoryKiB, p.Parallelism, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

func (h *Hasher) verifyArgon2(password, encoded string) (ok, rehash bool, err error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 {
		return false, false, errors.New("malformed argon2id hash")
	}
	var version int
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return false, false, errors.New("unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &p.Parallelism); err != nil {
		return false, false, errors.New("malformed argon2id parameters")
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || p.Iterations == 0 || p.Parallelism == 0 {
		return false, false, errors.New("malformed argon2id hash")
	}
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) != 1 {
		return false, false, nil
	}
	return true, p != h.params || len(want) != argonKeyLen, nil
}
