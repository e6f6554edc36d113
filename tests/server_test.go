// Package tests holds black-box integration tests: they start the real
// router over real PostgreSQL and Redis (TEST_DATABASE_URL, TEST_REDIS_URL),
// or over the embedded default (SQLite and an in-process Redis) when unset.
package tests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"gorm.io/gorm"

	"github.com/sessionauth/api/api"
	"github.com/sessionauth/api/config"
	"github.com/sessionauth/api/middleware"
	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
	"github.com/sessionauth/api/services/commonpasswords"
)

// testPassword is long, uncommon and reused by every test user.
const testPassword = "correct horse battery staple"

// testServer is one API instance under test.
type testServer struct {
	URL     string
	Config  config.Config
	Redis   *redis.Pool
	DB      *gorm.DB
	Logs    *syncBuffer
	Metrics *middleware.Metrics // nil when METRICS_ENABLED=false
	server  *httptest.Server
}

// env is the test's settings on top of cheap Argon2 and an unsecured cookie
// (httptest serves plain HTTP).
type env map[string]string

// newServer starts the real router with its own Redis key prefix and, on
// PostgreSQL, its own schema, so tests run in parallel without sharing state.
func newServer(t *testing.T, settings env) *testServer {
	t.Helper()
	deps := newDeps(t, settings)
	return deps.start(t)
}

// testDeps are the database and Redis that one or more instances share.
type testDeps struct {
	settings env
	db       *gorm.DB
	redisURL string
}

func newDeps(t testing.TB, settings env) *testDeps {
	t.Helper()
	base := env{
		"APP_ENV": "development", "COOKIE_SECURE": "false", "ARGON2_MEMORY_KIB": "64", "ARGON2_ITERATIONS": "1",
		"HASH_CONCURRENCY": "4", "SESSION_SECRET": "test-secret-test-secret-test-secret-0001",
		"SESSION_KEY_PREFIX": "t" + randomHex(6) + ":", "LOG_LEVEL": "debug",
	}
	for k, v := range settings {
		base[k] = v
	}
	d := &testDeps{settings: base}
	d.db = openTestDatabase(t)
	d.redisURL = os.Getenv("TEST_REDIS_URL")
	if d.redisURL == "" {
		url, stop, err := services.StartEmbeddedRedis()
		if err != nil {
			t.Fatalf("embedded redis: %v", err)
		}
		t.Cleanup(stop)
		d.redisURL = url
	}
	return d
}

// start builds one instance the way main's newRouter does.
func (d *testDeps) start(t testing.TB) *testServer {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return d.settings[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pool := services.NewRedisPool(d.redisURL, cfg.RedisPoolSize, cfg.RedisTimeout)
	t.Cleanup(func() { _ = pool.Close() })
	metrics := newMetrics(cfg)
	handler := newRouter(t, cfg, log, d.db, pool, metrics)
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return &testServer{URL: srv.URL, Config: cfg, Redis: pool, DB: d.db, Logs: logs, Metrics: metrics, server: srv}
}

// newMetrics builds the collectors as main's run does: nil when METRICS_ENABLED=false.
func newMetrics(cfg config.Config) *middleware.Metrics {
	if !cfg.MetricsEnabled {
		return nil
	}
	return middleware.NewMetrics()
}

// buildRouter is newRouter with metrics built as run() builds them.
func buildRouter(t testing.TB, cfg config.Config, log *slog.Logger, db *gorm.DB, pool *redis.Pool) http.Handler {
	t.Helper()
	return newRouter(t, cfg, log, db, pool, newMetrics(cfg))
}

// newRouter repeats main.newRouter's constructor calls (package main cannot be imported).
func newRouter(t testing.TB, cfg config.Config, log *slog.Logger, db *gorm.DB, pool *redis.Pool, metrics *middleware.Metrics) http.Handler {
	t.Helper()
	now := time.Now
	gate := services.NewRedisGate(cfg.RedisPoolSize, cfg.RedisTimeout)
	lifetimes := models.SessionLifetimes{Idle: cfg.SessionIdle, Absolute: cfg.SessionAbsolute}
	keyPairs := [][]byte{cfg.SessionSecret, nil}
	if len(cfg.SessionSecretPrevious) > 0 {
		keyPairs = append(keyPairs, cfg.SessionSecretPrevious, nil)
	}
	store, codecs := middleware.NewSessionStore(pool, cfg.SessionKeyPrefix, cfg.SessionAbsolute, keyPairs...)
	hasher, err := services.NewHasher(services.Argon2Params{MemoryKiB: cfg.Argon2MemoryKiB, Iterations: cfg.Argon2Iterations,
		Parallelism: cfg.Argon2Parallelism}, cfg.HashConcurrency, cfg.HashWait)
	if err != nil {
		t.Fatal(err)
	}
	users := services.NewUsers(db, cfg.DatabaseTimeout)
	sessions := services.NewSessions(pool, gate, cfg.SessionKeyPrefix, lifetimes, cfg.RedisTimeout, now, metrics)
	throttle := services.NewThrottle(pool, gate, cfg.SessionKeyPrefix, services.ThrottleLimits{
		LoginMaxFailures: cfg.LoginMaxFailures, LoginIPMaxFailures: cfg.LoginIPMaxFailures, LoginWindow: cfg.LoginFailureWindow,
		RegisterIPMax: cfg.RegisterIPMax, RegisterWindow: cfg.RegisterWindow}, cfg.RedisTimeout)
	auth := services.NewAuth(users, hasher, throttle, sessions, commonpasswords.New(), log)
	var publicMetrics http.Handler
	if cfg.MetricsAddr == "" {
		publicMetrics = metrics.Handler()
	}
	router, err := api.NewRouter(api.Deps{
		Log: log, Auth: auth, Admin: services.NewAdmin(users, auth, sessions), Sessions: sessions,
		SessionMiddleware: middleware.NewSessions(store, codecs, sessions, gate, middleware.CookieOptions{
			Name: cfg.SessionCookieName, Secure: cfg.CookieSecure, SameSite: cfg.CookieSameSite, Domain: cfg.CookieDomain,
		}, lifetimes, cfg.SessionTouchInterval, now),
		Ready: map[string]api.Pinger{
			"database": func(ctx context.Context) error { return services.PingDatabase(ctx, db) },
			"redis":    func(ctx context.Context) error { return services.PingRedis(ctx, pool) },
		},
		CORSAllowedOrigins: cfg.CORSAllowedOrigins, TrustedProxies: cfg.TrustedProxies,
		RegistrationEnabled: cfg.RegistrationEnabled, ReauthWindow: cfg.ReauthWindow, Now: now,
		Observe: metrics.Observe(), Metrics: publicMetrics,
	})
	if err != nil {
		t.Fatal(err)
	}
	return router
}

// openTestDatabase opens TEST_DATABASE_URL in a schema of the test's own, or
// an SQLite file in the test's temp folder, and migrates it.
func openTestDatabase(t testing.TB) *gorm.DB {
	t.Helper()
	ctx := context.Background()
	dsn := os.Getenv("TEST_DATABASE_URL")
	opts := services.DatabaseOptions{SQLitePath: filepath.Join(t.TempDir(), "app.db"), MaxOpenConns: 10, MaxIdleConns: 5, ConnMaxLife: time.Minute}
	if dsn != "" {
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
		opts.URL = withSearchPath(dsn, schema)
	}
	db, err := services.OpenDatabase(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	if err := services.Migrate(ctx, db); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return db
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
