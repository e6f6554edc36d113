// Package config parses the environment once into a typed, validated Config.
// It is the only package that reads settings.
package config

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/joho/godotenv"
)

// ExampleSecret is the SESSION_SECRET shipped in .env.example; production refuses it.
const ExampleSecret = "change-me-to-a-random-string-of-at-least-32-bytes"

// Config is every setting of the contract, typed and with defaults applied.
type Config struct {
	Production bool
	HTTPAddr   string

	DatabaseURL string // empty: embedded SQLite at SQLitePath
	SQLitePath  string
	RedisURL    string // empty: in-process Redis-compatible store

	SessionSecret         []byte // empty in development: generated for the run
	SessionSecretPrevious []byte
	SessionCookieName     string
	SessionKeyPrefix      string
	SessionAbsolute       time.Duration
	SessionIdle           time.Duration
	SessionTouchInterval  time.Duration

	CookieSecure   bool
	CookieSameSite http.SameSite
	CookieDomain   string

	CORSAllowedOrigins []string
	TrustedProxies     []string

	RegistrationEnabled bool
	LoginMaxFailures    int
	LoginFailureWindow  time.Duration
	LoginIPMaxFailures  int
	RegisterIPMax       int
	RegisterWindow      time.Duration
	ReauthWindow        time.Duration

	HashConcurrency   int
	HashWait          time.Duration
	Argon2MemoryKiB   uint32
	Argon2Iterations  uint32
	Argon2Parallelism uint8

	AutoMigrate     bool
	RedisTimeout    time.Duration
	RedisPoolSize   int
	DatabaseTimeout time.Duration
	DBMaxOpenConns  int
	DBMaxIdleConns  int
	DBConnMaxLife   time.Duration
	ShutdownTimeout time.Duration
	ShutdownDrain   time.Duration

	ReadHeaderTimeout time.Duration
	ReadTimeout       time.Duration
	WriteTimeout      time.Duration
	IdleTimeout       time.Duration

	MetricsEnabled bool
	MetricsAddr    string
	LogLevel       string
}

// WithDotEnv returns a getenv that falls back to the KEY=value lines of the
// file at path (when it exists). The real environment wins over the file.
func WithDotEnv(path string, getenv func(string) string) (func(string) string, error) {
	file, err := godotenv.Read(path)
	if errors.Is(err, os.ErrNotExist) {
		return getenv, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return func(key string) string {
		if v := getenv(key); v != "" {
			return v
		}
		return file[key]
	}, nil
}

// Load reads every setting through getenv, applies the defaults and reports
// every problem at once (errors.Join), one line each.
func Load(getenv func(string) string) (Config, error) {
	p := parser{getenv: getenv}
	var c Config
	switch env := p.str("APP_ENV", "development"); env {
	case "development":
	case "production":
		c.Production = true
	default:
		p.fail("APP_ENV must be development or production, got %q", env)
	}
	c.HTTPAddr = p.str("HTTP_ADDR", ":8080")
	c.DatabaseURL = p.str("DATABASE_URL", "")
	c.SQLitePath = p.str("SQLITE_PATH", "./data/app.db")
	c.RedisURL = p.str("REDIS_URL", "")
	c.SessionSecret = []byte(p.str("SESSION_SECRET", ""))
	c.SessionSecretPrevious = []byte(p.str("SESSION_SECRET_PREVIOUS", ""))
	c.SessionCookieName = p.str("SESSION_COOKIE_NAME", "sessionId")
	c.SessionKeyPrefix = p.str("SESSION_KEY_PREFIX", "sess:")
	c.SessionAbsolute = p.duration("SESSION_ABSOLUTE_TIMEOUT", 168*time.Hour)
	c.SessionIdle = p.duration("SESSION_IDLE_TIMEOUT", 24*time.Hour)
	c.SessionTouchInterval = p.duration("SESSION_TOUCH_INTERVAL", time.Minute)
	c.CookieSecure = p.boolean("COOKIE_SECURE", true)
	c.CookieSameSite = p.sameSite("COOKIE_SAMESITE", "Strict")
	c.CookieDomain = p.str("COOKIE_DOMAIN", "")
	c.CORSAllowedOrigins = p.origins("CORS_ALLOWED_ORIGINS")
	c.TrustedProxies = p.list("TRUSTED_PROXIES")
	c.RegistrationEnabled = p.boolean("REGISTRATION_ENABLED", true)
	c.LoginMaxFailures = p.positive("LOGIN_MAX_FAILURES", 5)
	c.LoginFailureWindow = p.duration("LOGIN_FAILURE_WINDOW", 15*time.Minute)
	c.LoginIPMaxFailures = p.positive("LOGIN_IP_MAX_FAILURES", 100)
	c.RegisterIPMax = p.positive("REGISTER_IP_MAX", 20)
	c.RegisterWindow = p.duration("REGISTER_WINDOW", 15*time.Minute)
	c.ReauthWindow = p.duration("REAUTH_WINDOW", 15*time.Minute)
	c.HashConcurrency = p.positive("HASH_CONCURRENCY", max(1, runtime.NumCPU()/2))
	c.HashWait = p.duration("HASH_WAIT", 2*time.Second)
	c.Argon2MemoryKiB = uint32(p.positive("ARGON2_MEMORY_KIB", 19456))
	c.Argon2Iterations = uint32(p.positive("ARGON2_ITERATIONS", 2))
	c.Argon2Parallelism = uint8(min(p.positive("ARGON2_PARALLELISM", 1), 255))
	c.AutoMigrate = p.boolean("AUTO_MIGRATE", !c.Production)
	c.RedisTimeout = p.duration("REDIS_TIMEOUT", 2*time.Second)
	c.RedisPoolSize = p.positive("REDIS_POOL_SIZE", 64)
	c.DatabaseTimeout = p.duration("DATABASE_TIMEOUT", 2*time.Second)
	c.DBMaxOpenConns = p.positive("DATABASE_MAX_OPEN_CONNS", 20)
	c.DBMaxIdleConns = p.positive("DATABASE_MAX_IDLE_CONNS", 10)
	c.DBConnMaxLife = p.duration("DATABASE_CONN_MAX_LIFETIME", 30*time.Minute)
	c.ShutdownTimeout = p.duration("SHUTDOWN_TIMEOUT", 15*time.Second)
	c.ShutdownDrain = p.duration("SHUTDOWN_DRAIN", time.Second)
	c.ReadHeaderTimeout = p.duration("HTTP_READ_HEADER_TIMEOUT", 5*time.Second)
	c.ReadTimeout = p.duration("HTTP_READ_TIMEOUT", 15*time.Second)
	c.WriteTimeout = p.duration("HTTP_WRITE_TIMEOUT", 30*time.Second)
	c.IdleTimeout = p.duration("HTTP_IDLE_TIMEOUT", 2*time.Minute)
	c.MetricsEnabled = p.boolean("METRICS_ENABLED", true)
	c.MetricsAddr = p.str("METRICS_ADDR", "")
	c.LogLevel = p.str("LOG_LEVEL", "info")
	c.validate(&p)
	return c, errors.Join(p.errs...)
}

func (c *Config) validate(p *parser) {
	if c.SessionTouchInterval*10 > c.SessionIdle {
		p.fail("SESSION_TOUCH_INTERVAL must be at most a tenth of SESSION_IDLE_TIMEOUT")
	}
	if len(c.SessionSecret) > 0 && len(c.SessionSecret) < 32 {
		p.fail("SESSION_SECRET must be at least 32 bytes")
	}
	if len(c.SessionSecretPrevious) > 0 && len(c.SessionSecretPrevious) < 32 {
		p.fail("SESSION_SECRET_PREVIOUS must be at least 32 bytes")
	}
	if c.CookieSameSite == http.SameSiteNoneMode && !c.CookieSecure {
		p.fail("COOKIE_SAMESITE=None needs COOKIE_SECURE=true (browsers drop it otherwise)")
	}
	if c.Argon2MemoryKiB < 8*uint32(c.Argon2Parallelism) {
		p.fail("ARGON2_MEMORY_KIB must be at least 8 × ARGON2_PARALLELISM")
	}
	if c.RedisURL != "" {
		if u, err := url.Parse(c.RedisURL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			p.fail("REDIS_URL must look like redis://[user:pass@]host:port/db or rediss://…")
		}
	}
	if !c.Production {
		return
	}
	if c.DatabaseURL == "" {
		p.fail("DATABASE_URL is required in production")
	}
	if c.RedisURL == "" {
		p.fail("REDIS_URL is required in production")
	}
	if len(c.SessionSecret) < 32 {
		p.fail("SESSION_SECRET of at least 32 bytes is required in production")
	}
	if string(c.SessionSecret) == ExampleSecret || string(c.SessionSecretPrevious) == ExampleSecret {
		p.fail("SESSION_SECRET must not be the example value from .env.example")
	}
	if !c.CookieSecure {
		p.fail("COOKIE_SECURE=false is refused in production")
	}
}

// parser collects every problem instead of stopping at the first.
type parser struct {
	getenv func(string) string
	errs   []error
}

func (p *parser) fail(format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf(format, args...))
}

func (p *parser) str(key, def string) string {
	if v := strings.TrimSpace(p.getenv(key)); v != "" {
		return v
	}
	return def
}

func (p *parser) duration(key string, def time.Duration) time.Duration {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		p.fail("%s must be a positive duration such as 15m, got %q", key, v)
		return def
	}
	return d
}

func (p *parser) positive(key string, def int) int {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		p.fail("%s must be a positive integer, got %q", key, v)
		return def
	}
	return n
}

func (p *parser) boolean(key string, def bool) bool {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail("%s must be true or false, got %q", key, v)
		return def
	}
	return b
}

func (p *parser) sameSite(key, def string) http.SameSite {
	switch v := strings.ToLower(p.str(key, def)); v {
	case "strict":
		return http.SameSiteStrictMode
	case "lax":
		return http.SameSiteLaxMode
	case "none":
		return http.SameSiteNoneMode
	default:
		p.fail("%s must be Strict, Lax or None, got %q", key, v)
		return http.SameSiteStrictMode
	}
}

func (p *parser) list(key string) []string {
	var out []string
	for _, item := range strings.Split(p.str(key, ""), ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}

func (p *parser) origins(key string) []string {
	out := p.list(key)
	for _, o := range out {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			p.fail("%s: %q is not an origin (scheme://host[:port])", key, o)
		}
	}
	for i, o := range out {
		out[i] = strings.TrimSuffix(o, "/")
	}
	return out
}
