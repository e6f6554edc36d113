package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
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
