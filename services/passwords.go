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

// Verification is the outcome of one password check.
type Verification struct {
	OK bool // the password matches
	// Rehash: the stored hash should be replaced by one of the current parameters.
	Rehash bool
	// Family names the hash's algorithm and cost ("bcrypt cost 12",
	// "argon2id m=19456,t=2,p=1"), whose verifications take about the same
	// time; "" when the hash could not be read.
	Family string
	// Took is the time spent hashing, the wait for a slot excluded.
	Took time.Duration
}

// bcryptMaxPassword is the most of a password bcrypt reads; it ignores the rest.
const bcryptMaxPassword = 72

// Verify checks password against encoded (Argon2id PHC or bcrypt) and says
// whether the stored hash should be replaced by one of the current
// parameters. A malformed hash is an error, never a match. It fails with
// service_unavailable when no hashing slot frees up in time.
func (h *Hasher) Verify(ctx context.Context, password, encoded string) (Verification, error) {
	release, err := h.acquire(ctx)
	if err != nil {
		return Verification{}, err
	}
	defer release()
	start := time.Now()
	var v Verification
	switch {
	case strings.HasPrefix(encoded, "$2a$"), strings.HasPrefix(encoded, "$2b$"), strings.HasPrefix(encoded, "$2y$"):
		v, err = verifyBcrypt(password, encoded)
	case strings.HasPrefix(encoded, "$argon2id$"):
		v, err = h.verifyArgon2(password, encoded)
	default:
		err = fmt.Errorf("unknown password hash format")
	}
	v.Took = time.Since(start)
	return v, err
}

// verifyBcrypt checks an imported bcrypt hash. bcrypt reads only the first
// 72 bytes of a password, so a longer one would match every password that
// shares them, and then be rehashed in place of the owner's: it never
// matches. The hash is computed all the same, so the check costs what every
// check of that family costs.
func verifyBcrypt(password, encoded string) (Verification, error) {
	cost, err := bcrypt.Cost([]byte(encoded))
	if err != nil {
		return Verification{}, err
	}
	v := Verification{Family: fmt.Sprintf("bcrypt cost %d", cost)}
	err = bcrypt.CompareHashAndPassword([]byte(encoded), []byte(password))
	switch {
	case errors.Is(err, bcrypt.ErrMismatchedHashAndPassword):
		return v, nil
	case err != nil:
		return v, err
	case len(password) > bcryptMaxPassword:
		return v, nil
	}
	v.OK, v.Rehash = true, true
	return v, nil
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

func (h *Hasher) verifyArgon2(password, encoded string) (Verification, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 {
		return Verification{}, errors.New("malformed argon2id hash")
	}
	var version int
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[2], "v=%d", &version); err != nil || version != argon2.Version {
		return Verification{}, errors.New("unsupported argon2 version")
	}
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Iterations, &p.Parallelism); err != nil {
		return Verification{}, errors.New("malformed argon2id parameters")
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || p.Iterations == 0 || p.Parallelism == 0 {
		return Verification{}, errors.New("malformed argon2id hash")
	}
	v := Verification{Family: fmt.Sprintf("argon2id m=%d,t=%d,p=%d", p.MemoryKiB, p.Iterations, p.Parallelism)}
	got := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, uint32(len(want)))
	if subtle.ConstantTimeCompare(got, want) == 1 {
		v.OK, v.Rehash = true, p != h.params || len(want) != argonKeyLen
	}
	return v, nil
}
