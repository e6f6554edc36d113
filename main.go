// Command api serves the session-authentication JSON API; it also applies
// migrations (migrate) and creates users (create-user).
package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/gomodule/redigo/redis"
	"gorm.io/gorm"

	"github.com/sessionauth/api/api"
	"github.com/sessionauth/api/config"
	"github.com/sessionauth/api/middleware"
	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
	"github.com/sessionauth/api/services/commonpasswords"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		stop()
		os.Exit(1)
	}
}

// run is the composition root: config → logger → database → Redis and the
// session store → services → router → server with graceful shutdown.
func run(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	getenv, err := config.WithDotEnv(".env", getenv)
	if err != nil {
		return err
	}
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration:\n%w", err)
	}
	logOut := newBufferedLog(stderr)
	defer logOut.Close()
	log := newLogger(logOut, cfg.LogLevel)
	gin.SetMode(gin.ReleaseMode)

	db, err := services.OpenDatabase(services.DatabaseOptions{URL: cfg.DatabaseURL, SQLitePath: cfg.SQLitePath,
		MaxOpenConns: cfg.DBMaxOpenConns, MaxIdleConns: cfg.DBMaxIdleConns, ConnMaxLife: cfg.DBConnMaxLife})
	if err != nil {
		return err
	}
	defer closeDatabase(db)
	if len(args) > 0 {
		return runCommand(ctx, args, cfg, db, stdin, stdout)
	}
	if cfg.DatabaseURL == "" {
		log.Warn("DATABASE_URL unset: using the embedded SQLite file (development only)", "path", cfg.SQLitePath)
	}
	if cfg.AutoMigrate {
		go migrateUntilDone(ctx, db, log)
	}

	redisURL, stopRedis, err := redisFor(cfg, log)
	if err != nil {
		return err
	}
	defer stopRedis()
	pool := services.NewRedisPool(redisURL, cfg.RedisPoolSize, cfg.RedisTimeout)
	defer pool.Close()
	secret, err := sessionSecret(cfg, log)
	if err != nil {
		return err
	}

	var metrics *middleware.Metrics // nil: METRICS_ENABLED=false
	if cfg.MetricsEnabled {
		metrics = middleware.NewMetrics()
	}
	router, err := newRouter(cfg, log, db, pool, secret, metrics)
	if err != nil {
		return err
	}
	if metrics != nil && cfg.MetricsAddr != "" {
		stopMetrics, err := serveMetrics(cfg, metrics.Handler(), log)
		if err != nil {
			return err
		}
		defer stopMetrics()
	}
	srv := api.NewHTTPServer(cfg.HTTPAddr, router, api.ServerTimeouts{ReadHeader: cfg.ReadHeaderTimeout,
		Read: cfg.ReadTimeout, Write: cfg.WriteTimeout, Idle: cfg.IdleTimeout}, log)
	return serve(ctx, srv, cfg.ShutdownDrain, cfg.ShutdownTimeout, log)
}

// newRouter builds the services and the router. tests/ repeats these calls.
// metrics may be nil; GET /metrics is on this router only without METRICS_ADDR.
func newRouter(cfg config.Config, log *slog.Logger, db *gorm.DB, pool *redis.Pool, secret []byte, metrics *middleware.Metrics) (http.Handler, error) {
	now := time.Now
	gate := services.NewRedisGate(cfg.RedisPoolSize, cfg.RedisTimeout)
	lifetimes := models.SessionLifetimes{Idle: cfg.SessionIdle, Absolute: cfg.SessionAbsolute}
	keyPairs := [][]byte{secret, nil}
	if len(cfg.SessionSecretPrevious) > 0 {
		keyPairs = append(keyPairs, cfg.SessionSecretPrevious, nil)
	}
	store, codecs := middleware.NewSessionStore(pool, cfg.SessionKeyPrefix, cfg.SessionAbsolute, keyPairs...)
	hasher, err := services.NewHasher(services.Argon2Params{MemoryKiB: cfg.Argon2MemoryKiB, Iterations: cfg.Argon2Iterations,
		Parallelism: cfg.Argon2Parallelism}, cfg.HashConcurrency, cfg.HashWait)
	if err != nil {
		return nil, err
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
	return api.NewRouter(api.Deps{
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
}

// serveMetrics serves GET /metrics on a listener of its own (METRICS_ADDR),
// so the public port never shows it; stop closes it. A taken address stops the start.
func serveMetrics(cfg config.Config, handler http.Handler, log *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", handler)
	srv := api.NewHTTPServer(cfg.MetricsAddr, mux, api.ServerTimeouts{ReadHeader: cfg.ReadHeaderTimeout,
		Read: cfg.ReadTimeout, Write: cfg.WriteTimeout, Idle: cfg.IdleTimeout}, log)
	ln, err := net.Listen("tcp", cfg.MetricsAddr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics listener stopped", "err", err)
		}
	}()
	log.Info("metrics listening", "addr", ln.Addr().String())
	return func() { _ = srv.Close() }, nil
}

// serve runs srv until ctx ends, then drains (every answer closes its
// connection) and lets in-flight requests finish within timeout before Redis
// and the database are closed by run's defers.
func serve(ctx context.Context, srv *http.Server, drain, timeout time.Duration, log *slog.Logger) error {
	var draining atomic.Bool
	srv.Handler = api.DrainingHandler(srv.Handler, &draining)
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	log.Info("listening", "addr", srv.Addr)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down", "drain", drain.String(), "timeout", timeout.String())
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	draining.Store(true)
	select {
	case <-time.After(min(drain, timeout/2)):
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	}
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("serve: %w", err)
	}
	log.Info("stopped")
	return nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// redisFor returns REDIS_URL, or starts the in-process store in development.
func redisFor(cfg config.Config, log *slog.Logger) (string, func(), error) {
	if cfg.RedisURL != "" {
		return cfg.RedisURL, func() {}, nil
	}
	url, stop, err := services.StartEmbeddedRedis()
	if err != nil {
		return "", nil, err
	}
	log.Warn("REDIS_URL unset: using an in-process Redis-compatible store; sessions end with the process (development only)")
	return url, stop, nil
}

// sessionSecret returns SESSION_SECRET, or one generated for this run in
// development (config refuses a missing one in production).
func sessionSecret(cfg config.Config, log *slog.Logger) ([]byte, error) {
	if len(cfg.SessionSecret) > 0 {
		return cfg.SessionSecret, nil
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	log.Warn("SESSION_SECRET unset: generated one for this run; sessions end with the process (development only)")
	return secret, nil
}

// migrateUntilDone applies the schema, retrying while the database is down
// so that a start with the database down heals by itself.
func migrateUntilDone(ctx context.Context, db *gorm.DB, log *slog.Logger) {
	for attempt := 0; ; attempt++ {
		err := services.Migrate(ctx, db)
		if err == nil {
			log.Info("database schema up to date")
			return
		}
		if attempt == 0 {
			log.Warn("database not ready; will retry the migration", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

func closeDatabase(db *gorm.DB) {
	if sqlDB, err := db.DB(); err == nil {
		_ = sqlDB.Close()
	}
}
