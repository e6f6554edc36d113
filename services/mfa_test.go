package services

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDevelopmentMFAKeyIsKeptAcrossRestarts: without MFA_ENCRYPTION_KEY the
// key made at the first start is read back at the next, so TOTP secrets
// stored under it still open.
func TestDevelopmentMFAKeyIsKeptAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data", "mfa.key")
	first, err := LoadOrCreateKeyFile(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("got %v, %v; want a file readable by its owner only", info, err)
	}
	second, err := LoadOrCreateKeyFile(path)
	if err != nil || string(second) != string(first) || len(first) < 32 {
		t.Fatalf("got %q then %q (%v), want the same key of at least 32 bytes", first, second, err)
	}
	keys, _ := NewMFAKeys(first)
	sealed := keys.seal("u", "SECRET")
	again, _ := NewMFAKeys(second)
	if got, err := again.open("u", sealed); err != nil || got != "SECRET" {
		t.Fatalf("a secret sealed before the restart does not open after it: %q, %v", got, err)
	}
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreateKeyFile(path); err == nil {
		t.Fatal("a key file with a short key was accepted")
	}
}
