package services

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
	"golang.org/x/crypto/hkdf"
)

// The contract's TOTP: RFC 6238 with SHA-1, 6 digits, 30-second steps, one
// step of clock drift accepted either way.
const (
	totpPeriod = 30
	totpSkew   = 1
	// recoveryCodeCount codes make a set; each is 10 characters of base32
	// (50 bits), shown once.
	recoveryCodeCount = 10
)

var totpOpts = hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}

// MFAKeys are the keys derived from MFA_ENCRYPTION_KEY: one encrypts TOTP
// secrets at rest (AES-256-GCM), the other keys the hashes of recovery codes,
// so a database dump alone reveals neither.
type MFAKeys struct {
	secrets  cipher.AEAD
	recovery []byte
}

// NewMFAKeys derives the keys from the operator's key material (at least 32
// bytes; config checks it).
func NewMFAKeys(material []byte) (*MFAKeys, error) {
	derive := func(purpose string) []byte {
		key := make([]byte, 32)
		_, _ = io.ReadFull(hkdf.New(sha256.New, material, nil, []byte("session-auth "+purpose)), key)
		return key
	}
	block, err := aes.NewCipher(derive("totp secrets"))
	if err != nil {
		return nil, fmt.Errorf("mfa key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("mfa key: %w", err)
	}
	return &MFAKeys{secrets: aead, recovery: derive("recovery codes")}, nil
}

// seal encrypts a TOTP secret for storage: nonce then ciphertext, bound to
// the user so that a secret copied to another row does not decrypt.
func (k *MFAKeys) seal(userID, secret string) []byte {
	nonce := make([]byte, k.secrets.NonceSize())
	_, _ = rand.Read(nonce)
	return k.secrets.Seal(nonce, nonce, []byte(secret), []byte(userID))
}

// open decrypts what seal stored for the user.
func (k *MFAKeys) open(userID string, sealed []byte) (string, error) {
	n := k.secrets.NonceSize()
	if len(sealed) < n {
		return "", errors.New("totp secret: too short")
	}
	plain, err := k.secrets.Open(nil, sealed[:n], sealed[n:], []byte(userID))
	if err != nil {
		return "", fmt.Errorf("totp secret: %w (was MFA_ENCRYPTION_KEY changed?)", err)
	}
	return string(plain), nil
}

// recoveryHash is how a recovery code is stored and looked up: a keyed hash
// of its canonical form (upper case, no dashes or spaces), found directly
// rather than by verifying every code of the user.
func (k *MFAKeys) recoveryHash(code string) string {
	canonical := strings.ToUpper(strings.NewReplacer("-", "", " ", "").Replace(strings.TrimSpace(code)))
	mac := hmac.New(sha256.New, k.recovery)
	mac.Write([]byte(canonical))
	return hex.EncodeToString(mac.Sum(nil))
}

// newRecoveryCodes returns a set of codes as shown to the user (XXXXX-XXXXX).
func newRecoveryCodes() []string {
	codes := make([]string, recoveryCodeCount)
	for i := range codes {
		b := make([]byte, 7)
		_, _ = rand.Read(b)
		s := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)[:10]
		codes[i] = s[:5] + "-" + s[5:]
	}
	return codes
}

// newTOTPKey makes a new TOTP secret for the account, with its otpauth:// URI.
func newTOTPKey(issuer, account string) (secret, uri string, err error) {
	key, err := totp.Generate(totp.GenerateOpts{Issuer: issuer, AccountName: account, Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		return "", "", fmt.Errorf("totp secret: %w", err)
	}
	return key.Secret(), key.URL(), nil
}

// totpStep returns the time step whose code matches code at now, within one
// step of drift, or false. totp.ValidateCustom only answers yes or no; the
// step is what lets a code be accepted once (a step later than the last one
// accepted). Every candidate is compared, in constant time.
func totpStep(secret, code string, now time.Time) (int64, bool) {
	code = strings.TrimSpace(code)
	if len(code) != 6 {
		return 0, false
	}
	current := now.Unix() / totpPeriod
	var found int64
	ok := false
	for step := current - totpSkew; step <= current+totpSkew; step++ {
		want, err := hotp.GenerateCodeCustom(secret, uint64(step), totpOpts)
		if err == nil && subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			found, ok = step, true
		}
	}
	return found, ok
}
