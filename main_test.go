package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sys/unix"
)

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	settings := map[string]string{"SQLITE_PATH": filepath.Join(dir, "app.db"), "ARGON2_MEMORY_KIB": "64", "ARGON2_ITERATIONS": "1"}
	getenv := func(k string) string { return settings[k] }
	runCmd := func(stdin string, args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := run(context.Background(), args, getenv, strings.NewReader(stdin), &out, &errOut)
		return strings.TrimSpace(out.String()), err
	}
	if out, err := runCmd("", "migrate"); err != nil || out != "migrations applied" {
		t.Fatalf("migrate: got %q, %v", out, err)
	}
	// Without MFA_ENCRYPTION_KEY, development keeps the key beside the SQLite file.
	if info, err := os.Stat(filepath.Join(dir, "mfa.key")); err != nil || info.Mode().Perm() != 0o600 {
		t.Fatalf("got %v, %v; want the development MFA key beside the SQLite file", info, err)
	}
	id, err := runCmd("a long admin passphrase\n", "create-user", "--email", "Admin@Example.com", "--name", "Admin", "--role", "admin", "--password-stdin")
	if err != nil || uuid.Validate(id) != nil {
		t.Fatalf("create-user: got %q, %v; want a UUID", id, err)
	}
	cases := []struct {
		name, stdin string
		args        []string
		want        string
	}{
		{"taken email", "another long passphrase\n", []string{"--email", "admin@example.com", "--name", "A", "--role", "admin", "--password-stdin"}, "already taken"},
		{"bad role", "another long passphrase\n", []string{"--email", "b@example.com", "--name", "B", "--role", "root", "--password-stdin"}, "role"},
		{"short password", "short\n", []string{"--email", "c@example.com", "--name", "C", "--role", "user", "--password-stdin"}, "8 to 128"},
		{"common password", "password1\n", []string{"--email", "d@example.com", "--name", "D", "--role", "user", "--password-stdin"}, "too common"},
		{"no stdin flag", "", []string{"--email", "e@example.com", "--name", "E", "--role", "user"}, "--password-stdin"},
		{"bad email", "another long passphrase\n", []string{"--email", "nope", "--name", "F", "--role", "user", "--password-stdin"}, "email"},
		// The contract's text rules hold outside HTTP too: full-width is the same address, other scripts are refused.
		{"full-width email", "another long passphrase\n", []string{"--email", "ａｄｍｉｎ@ｅｘａｍｐｌｅ.ｃｏｍ", "--name", "G", "--role", "user", "--password-stdin"}, "already taken"},
		{"cyrillic email", "another long passphrase\n", []string{"--email", "\u0430dmin@example.com", "--name", "H", "--role", "user", "--password-stdin"}, "ASCII"},
		{"invisible name", "another long passphrase\n", []string{"--email", "i@example.com", "--name", "\u3164 \u3164", "--role", "user", "--password-stdin"}, "visible"},
		{"zero-width name", "another long passphrase\n", []string{"--email", "j@example.com", "--name", "\u200b", "--role", "user", "--password-stdin"}, "name"},
	}
	for _, tc := range cases {
		_, err := runCmd(tc.stdin, append([]string{"create-user"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: got %v, want one line mentioning %q", tc.name, err, tc.want)
		}
	}
	if _, err := runCmd("", "frobnicate"); err == nil {
		t.Error("unknown command: got no error")
	}
}

func TestProductionRefusesToStartWithWeakSettings(t *testing.T) {
	getenv := func(k string) string { return map[string]string{"APP_ENV": "production", "COOKIE_SECURE": "false"}[k] }
	err := run(context.Background(), nil, getenv, strings.NewReader(""), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || strings.Count(err.Error(), "\n") < 3 {
		t.Fatalf("got %v, want one line per problem", err)
	}
}

// TestCreateUserPromptsOnATerminalWithoutEcho runs create-user with a
// pseudo-terminal as stdin: it must prompt, and the typed password must not
// come back as echo.
func TestCreateUserPromptsOnATerminalWithoutEcho(t *testing.T) {
	ptmx, tty := openPTY(t)
	const password = "a secret typed passphrase"
	settings := map[string]string{"SQLITE_PATH": filepath.Join(t.TempDir(), "app.db"), "ARGON2_MEMORY_KIB": "64", "ARGON2_ITERATIONS": "1"}
	var out bytes.Buffer
	var errOut lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(context.Background(), []string{"create-user", "--email", "tty@example.com", "--name", "T", "--role", "user", "--password-stdin"},
			func(k string) string { return settings[k] }, tty, &out, &errOut)
	}()
	echoed := make(chan string, 1)
	go func() {
		buf := make([]byte, 4096)
		var seen strings.Builder
		for { // ends when the terminal side is closed (EIO)
			n, err := ptmx.Read(buf)
			seen.Write(buf[:n])
			if err != nil {
				echoed <- seen.String()
				return
			}
		}
	}()
	for !strings.Contains(errOut.String(), "Password:") {
		select {
		case err := <-done:
			t.Fatalf("create-user ended before prompting: %v, stderr %q", err, errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if _, err := ptmx.Write([]byte(password + "\n")); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("create-user: %v", err)
	}
	if uuid.Validate(strings.TrimSpace(out.String())) != nil {
		t.Fatalf("got %q, want the new user's id", out.String())
	}
	_ = tty.Close()
	if got := <-echoed; strings.Contains(got, password) {
		t.Fatalf("the terminal echoed the password: %q", got)
	}
}

// openPTY opens a pseudo-terminal pair: the controlling side and the terminal.
func openPTY(t *testing.T) (ptmx, tty *os.File) {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	t.Cleanup(func() { _ = ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty, err = os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tty.Close() })
	return ptmx, tty
}

// lockedBuffer is a bytes.Buffer read while another goroutine writes it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
