// Package tests holds black-box integration tests: they start the real
// router over real PostgreSQL and Redis (TEST_DATABASE_URL, TEST_REDIS_URL),
// or over the embedded default (SQLite and an in-process Redis) when unset.
package tests

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"github.com/sessionauth/api/api"
	"github.com/sessionauth/api/config"
	"github.com/sessionauth/api/services"
)

// testPassword is long, uncommon and reused by every test user.
const testPassword = "correct horse battery staple"

// testServer is one API instance under test: the application main serves,
// built by api.New from a config.Config, behind an httptest server.
type testServer struct {
	URL    string
	Config config.Config
	App    *api.App
	Redis  *services.Redis
	DB     *gorm.DB
	Logs   *syncBuffer
	server *httptest.Server
}

// env is the test's settings on top of cheap Argon2 and an unsecured cookie
// (httptest serves plain HTTP).
type env map[string]string

// newServer starts the application with its own Redis key prefix and, on
// PostgreSQL, its own schema, so tests run in parallel without sharing state.
func newServer(t *testing.T, settings env) *testServer {
	t.Helper()
	return newDeps(t, settings).start(t)
}

// testDeps are the settings, the database and the Redis that one or more
// instances share.
type testDeps struct {
	settings env
}

func newDeps(t testing.TB, settings env) *testDeps {
	t.Helper()
	base := env{
		"APP_ENV": "development", "COOKIE_SECURE": "false", "ARGON2_MEMORY_KIB": "64", "ARGON2_ITERATIONS": "1",
		"HASH_CONCURRENCY": "4", "SESSION_SECRET": "test-secret-test-secret-test-secret-0001",
		"MFA_ENCRYPTION_KEY": "test-mfa-key-test-mfa-key-test-mfa-key-01",
		"SESSION_KEY_PREFIX": "t" + randomHex(6) + ":", "LOG_LEVEL": "debug",
	}
	if dsn := os.Getenv("TEST_DATABASE_URL"); dsn != "" {
		base["DATABASE_URL"] = newTestSchema(t, dsn)
	} else {
		base["SQLITE_PATH"] = filepath.Join(t.TempDir(), "app.db")
	}
	base["REDIS_URL"] = os.Getenv("TEST_REDIS_URL")
	if base["REDIS_URL"] == "" {
		url, stop, err := services.StartEmbeddedRedis()
		if err != nil {
			t.Fatalf("embedded redis: %v", err)
		}
		t.Cleanup(stop)
		base["REDIS_URL"] = url
	}
	for k, v := range settings {
		base[k] = v
	}
	return &testDeps{settings: base}
}

// start builds one instance with api.New, as main does; its log lines are
// kept in Logs.
func (d *testDeps) start(t testing.TB) *testServer {
	t.Helper()
	logs := &syncBuffer{}
	s := d.startWith(t, slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	s.Logs = logs
	return s
}

// startQuiet is start with the log discarded, for benchmarks and fuzzing.
func (d *testDeps) startQuiet(t testing.TB) *testServer { return d.startWith(t, discardLogger()) }

func (d *testDeps) startWith(t testing.TB, log *slog.Logger) *testServer {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return d.settings[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	app, err := api.New(t.Context(), cfg, log)
	if err != nil {
		t.Fatalf("api.New: %v", err)
	}
	srv := httptest.NewServer(app.Handler)
	t.Cleanup(func() {
		srv.Close()
		app.Close()
	})
	return &testServer{URL: srv.URL, Config: cfg, App: app, Redis: app.Redis, DB: app.DB, server: srv}
}

// newTestSchema creates a PostgreSQL schema of the test's own (dropped at
// cleanup) and returns dsn with it as the search path.
func newTestSchema(t testing.TB, dsn string) string {
	t.Helper()
	schema := "t_" + randomHex(8)
	admin, err := services.OpenDatabase(services.DatabaseOptions{URL: dsn, MaxOpenConns: 2, MaxIdleConns: 1, ConnMaxLife: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if err := admin.Exec("CREATE SCHEMA " + schema).Error; err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		admin.Exec("DROP SCHEMA " + schema + " CASCADE")
		if sqlDB, err := admin.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	return withSearchPath(dsn, schema)
}

func withSearchPath(dsn, schema string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		panic(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// uniqueEmail returns an email no other test uses.
func uniqueEmail(name string) string {
	return strings.ToLower(name) + "-" + randomHex(5) + "@example.com"
}

// mustReadAll reads a body for a failure message.
func mustReadAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
