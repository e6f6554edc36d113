package services

import (
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/hotp"
)

func TestTOTPStepAcceptsOneStepOfDriftAndNamesTheStep(t *testing.T) {
	secret, _, err := newTOTPKey("Test", "a@example.com")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 29, 12, 0, 15, 0, time.UTC) // mid-step
	current := now.Unix() / totpPeriod
	code := func(step int64) string {
		c, err := hotp.GenerateCodeCustom(secret, uint64(step), totpOpts)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for _, tc := range []struct {
		step   int64
		wantOK bool
	}{{current - 2, false}, {current - 1, true}, {current, true}, {current + 1, true}, {current + 2, false}} {
		step, ok := totpStep(secret, code(tc.step), now)
		if ok != tc.wantOK || (ok && step != tc.step) {
			t.Errorf("code of step %d (current %d): got step %d, %v; want %v", tc.step, current, step, ok, tc.wantOK)
		}
	}
	for _, bad := range []string{"", "12345", "1234567", "abcdef"} {
		if _, ok := totpStep(secret, bad, now); ok {
			t.Errorf("code %q accepted", bad)
		}
	}
	if _, ok := totpStep(secret, " "+code(current)+" ", now); !ok {
		t.Error("a code with spaces around it refused")
	}
}

func TestMFAKeysSealPerUserAndHashRecoveryCodesCanonically(t *testing.T) {
	keys, err := NewMFAKeys([]byte(strings.Repeat("k", 32)))
	if err != nil {
		t.Fatal(err)
	}
	sealed := keys.seal("user-a", "JBSWY3DPEHPK3PXP")
	if strings.Contains(string(sealed), "JBSWY3DPEHPK3PXP") {
		t.Fatal("the secret is stored in clear")
	}
	if got, err := keys.open("user-a", sealed); err != nil || got != "JBSWY3DPEHPK3PXP" {
		t.Fatalf("got %q, %v", got, err)
	}
	if _, err := keys.open("user-b", sealed); err == nil {
		t.Fatal("a secret copied to another user decrypts")
	}
	other, _ := NewMFAKeys([]byte(strings.Repeat("x", 32)))
	if _, err := other.open("user-a", sealed); err == nil {
		t.Fatal("another key decrypts the secret")
	}
	codes := newRecoveryCodes()
	if len(codes) != 10 || len(codes[0]) != 11 || codes[0][5] != '-' {
		t.Fatalf("got codes %q, want 10 of XXXXX-XXXXX", codes)
	}
	code := codes[0]
	if keys.recoveryHash(code) != keys.recoveryHash(strings.ToLower(strings.ReplaceAll(code, "-", " "))) {
		t.Fatal("a code typed in lower case with a space does not match")
	}
	if keys.recoveryHash(code) == other.recoveryHash(code) {
		t.Fatal("recovery hashes are not keyed")
	}
}
