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

// Config is every setting of the contract, typed, grouped by what it
// configures and with defaults applied. The groups convert straight to the
// option types their constructors take (services.Argon2Params(c.Argon2),
// services.ThrottleLimits(c.Throttle), middleware.CookieOptions(c.Cookie),
// api.ServerTimeouts(c.HTTP.Timeouts)), so no field is copied by hand.
type Config struct {
	Production bool
	HTTP       HTTP
	Database   Database
	Redis      Redis
	Session    Session
	Cookie     Cookie
	Browser    Browser
	Throttle   Throttle
	Argon2     Argon2
	Hashing    Hashing
	Metrics    Metrics

	RegistrationEnabled bool
	ReauthWindow        time.Duration
	LogLevel            string
}

// HTTP is the listener, its timeouts and the graceful shutdown.
type HTTP struct {
	Addr            string
	Timeouts        HTTPTimeouts
	ShutdownTimeout time.Duration
	ShutdownDrain   time.Duration
}

// HTTPTimeouts bound every phase of a connection (api.ServerTimeouts).
type HTTPTimeouts struct {
	ReadHeader time.Duration
	Read       time.Duration
	Write      time.Duration
	Idle       time.Duration
}

// Database is the user database: PostgreSQL at URL, or the embedded SQLite
// file at SQLitePath when URL is empty.
type Database struct {
	URL          string
	SQLitePath   string
	Timeout      time.Duration
	MaxOpenConns int
	MaxIdleConns int
	ConnMaxLife  time.Duration
	AutoMigrate  bool
}

// Redis is the session store; an empty URL is the in-process store.
type Redis struct {
	URL      string
	Timeout  time.Duration
	PoolSize int
}

// Session is the server side of sessions: signing secrets, the Redis key
// prefix of the deployment and the lifetimes.
type Session struct {
	Secret         []byte // empty in development: generated for the run
	SecretPrevious []byte
	KeyPrefix      string
	Lifetimes      SessionLifetimes
	TouchInterval  time.Duration
}

// SessionLifetimes are the idle and absolute timeouts (models.SessionLifetimes).
type SessionLifetimes struct {
	Idle     time.Duration
	Absolute time.Duration
}

// Cookie is the session cookie's name and attributes (middleware.CookieOptions).
type Cookie struct {
	Name     string
	Secure   bool
	SameSite http.SameSite
	Domain   string
}

// Browser is what the API trusts of browsers and proxies.
type Browser struct {
	CORSAllowedOrigins []string
	TrustedProxies     []string
}

// Throttle is the contract's throttling settings (services.ThrottleLimits).
type Throttle struct {
	LoginMaxFailures   int
	LoginIPMaxFailures int
	LoginWindow        time.Duration
	RegisterIPMax      int
	RegisterWindow     time.Duration
}

// Argon2 is the Argon2id cost of new hashes (services.Argon2Params).
type Argon2 struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

// Hashing bounds concurrent password hashing and the wait for a slot.
type Hashing struct {
	Concurrency int
	Wait        time.Duration
}

// Metrics are the Prometheus metrics: on or off, and on a listener of their
// own when Addr is set.
type Metrics struct {
	Enabled bool
	Addr    string
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
	c.HTTP = HTTP{
		Addr: p.str("HTTP_ADDR", ":8080"),
		Timeouts: HTTPTimeouts{
			ReadHeader: p.duration("HTTP_READ_HEADER_TIMEOUT", 5*time.Second),
			Read:       p.duration("HTTP_READ_TIMEOUT", 15*time.Second),
			Write:      p.duration("HTTP_WRITE_TIMEOUT", 30*time.Second),
			Idle:       p.duration("HTTP_IDLE_TIMEOUT", 2*time.Minute),
		},
		ShutdownTimeout: p.duration("SHUTDOWN_TIMEOUT", 15*time.Second),
		ShutdownDrain:   p.duration("SHUTDOWN_DRAIN", time.Second),
	}
	c.Database = Database{
		URL:          p.str("DATABASE_URL", ""),
		SQLitePath:   p.str("SQLITE_PATH", "./data/app.db"),
		Timeout:      p.duration("DATABASE_TIMEOUT", 2*time.Second),
		MaxOpenConns: p.positive("DATABASE_MAX_OPEN_CONNS", 20),
		MaxIdleConns: p.positive("DATABASE_MAX_IDLE_CONNS", 10),
		ConnMaxLife:  p.duration("DATABASE_CONN_MAX_LIFETIME", 30*time.Minute),
		AutoMigrate:  p.boolean("AUTO_MIGRATE", !c.Production),
	}
	c.Redis = Redis{
		URL:      p.str("REDIS_URL", ""),
		Timeout:  p.duration("REDIS_TIMEOUT", 2*time.Second),
		PoolSize: p.positive("REDIS_POOL_SIZE", 64),
	}
	c.Session = Session{
		Secret:         []byte(p.str("SESSION_SECRET", "")),
		SecretPrevious: []byte(p.str("SESSION_SECRET_PREVIOUS", "")),
		KeyPrefix:      p.str("SESSION_KEY_PREFIX", "sess:"),
		Lifetimes: SessionLifetimes{
			Idle:     p.duration("SESSION_IDLE_TIMEOUT", 24*time.Hour),
			Absolute: p.duration("SESSION_ABSOLUTE_TIMEOUT", 168*time.Hour),
		},
		TouchInterval: p.duration("SESSION_TOUCH_INTERVAL", time.Minute),
	}
	c.Cookie = Cookie{
		Name:     p.str("SESSION_COOKIE_NAME", "sessionId"),
		Secure:   p.boolean("COOKIE_SECURE", true),
		SameSite: p.sameSite("COOKIE_SAMESITE", "Strict"),
		Domain:   p.str("COOKIE_DOMAIN", ""),
	}
	c.Browser = Browser{
		CORSAllowedOrigins: p.origins("CORS_ALLOWED_ORIGINS"),
		TrustedProxies:     p.list("TRUSTED_PROXIES"),
	}
	c.Throttle = Throttle{
		LoginMaxFailures:   p.positive("LOGIN_MAX_FAILURES", 5),
		LoginIPMaxFailures: p.positive("LOGIN_IP_MAX_FAILURES", 100),
		LoginWindow:        p.duration("LOGIN_FAILURE_WINDOW", 15*time.Minute),
		RegisterIPMax:      p.positive("REGISTER_IP_MAX", 20),
		RegisterWindow:     p.duration("REGISTER_WINDOW", 15*time.Minute),
	}
	c.Argon2 = Argon2{
		MemoryKiB:   uint32(p.positive("ARGON2_MEMORY_KIB", 19456)),
		Iterations:  uint32(p.positive("ARGON2_ITERATIONS", 2)),
		Parallelism: uint8(min(p.positive("ARGON2_PARALLELISM", 1), 255)),
	}
	c.Hashing = Hashing{
		Concurrency: p.positive("HASH_CONCURRENCY", max(1, runtime.NumCPU()/2)),
		Wait:        p.duration("HASH_WAIT", 2*time.Second),
	}
	c.Metrics = Metrics{Enabled: p.boolean("METRICS_ENABLED", true), Addr: p.str("METRICS_ADDR", "")}
	c.RegistrationEnabled = p.boolean("REGISTRATION_ENABLED", true)
	c.ReauthWindow = p.duration("REAUTH_WINDOW", 15*time.Minute)
	c.LogLevel = p.str("LOG_LEVEL", "info")
	c.validate(&p)
	return c, errors.Join(p.errs...)
}

func (c *Config) validate(p *parser) {
	if c.Session.TouchInterval*10 > c.Session.Lifetimes.Idle {
		p.fail("SESSION_TOUCH_INTERVAL must be at most a tenth of SESSION_IDLE_TIMEOUT")
	}
	if n := len(c.Session.Secret); n > 0 && n < 32 {
		p.fail("SESSION_SECRET must be at least 32 bytes")
	}
	if n := len(c.Session.SecretPrevious); n > 0 && n < 32 {
		p.fail("SESSION_SECRET_PREVIOUS must be at least 32 bytes")
	}
	if c.Cookie.SameSite == http.SameSiteNoneMode && !c.Cookie.Secure {
		p.fail("COOKIE_SAMESITE=None needs COOKIE_SECURE=true (browsers drop it otherwise)")
	}
	if c.Argon2.MemoryKiB < 8*uint32(c.Argon2.Parallelism) {
		p.fail("ARGON2_MEMORY_KIB must be at least 8 × ARGON2_PARALLELISM")
	}
	if c.Redis.URL != "" {
		if u, err := url.Parse(c.Redis.URL); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			p.fail("REDIS_URL must look like redis://[user:pass@]host:port/db or rediss://…")
		}
	}
	if !c.Production {
		return
	}
	if c.Database.URL == "" {
		p.fail("DATABASE_URL is required in production")
	}
	if c.Redis.URL == "" {
		p.fail("REDIS_URL is required in production")
	}
	if len(c.Session.Secret) < 32 {
		p.fail("SESSION_SECRET of at least 32 bytes is required in production")
	}
	if string(c.Session.Secret) == ExampleSecret || string(c.Session.SecretPrevious) == ExampleSecret {
		p.fail("SESSION_SECRET must not be the example value from .env.example")
	}
	if !c.Cookie.Secure {
		p.fail("COOKIE_SECURE=false is refused in production")
	}
}

// Warnings are settings that start but that an operator should hear about,
// one sentence each, logged once at start.
func (c Config) Warnings() []string {
	var out []string
	if string(c.Session.Secret) == ExampleSecret || string(c.Session.SecretPrevious) == ExampleSecret {
		out = append(out, "SESSION_SECRET is the example value from .env.example: anyone can sign cookies for this server (production refuses it)")
	}
	if c.Production && c.Metrics.Enabled && c.Metrics.Addr == "" {
		out = append(out, "METRICS_ADDR is unset: /metrics is not served in production (set it to a private address such as 127.0.0.1:9090)")
	}
	return out
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
