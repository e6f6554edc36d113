// Package config parses the environment once into a typed, validated Config.
// It is the only package that reads settings.
package config

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
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
	Audit      Audit
	Mail       Mail
	Accounts   Accounts
	MFA        MFA
	WebAuthn   WebAuthn

	// FrontendURL is the SPA's origin, for the links in mails; "" only in
	// production without MAIL_URL.
	FrontendURL         string
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
	URL         string         // as given; with Sentinel set, its parts are in Sentinel
	Sentinel    *RedisSentinel // redis+sentinel:// or rediss+sentinel://; nil for one server
	TLS         RedisTLS
	MinReplicas int // replicas that must acknowledge a session create or revoke (WAIT)
	Timeout     time.Duration
	PoolSize    int
}

// RedisSentinel is a redis+sentinel:// URL taken apart (services.Sentinel).
type RedisSentinel struct {
	Addrs            []string // host:port of every sentinel, in the URL's order
	Master           string   // the name the sentinels monitor
	SentinelPassword string   // REDIS_SENTINEL_PASSWORD; empty: the sentinels ask for none
	TLS              bool     // rediss+sentinel://: sentinels and data nodes over TLS
	Username         string   // the data nodes' ACL user, password and database
	Password         string
	DB               int
}

// RedisTLS are the PEM files of a private CA and of a client certificate
// (services.RedisTLSFiles); empty: the system's roots and no client certificate.
type RedisTLS struct {
	CAFile   string
	CertFile string
	KeyFile  string
}

// Session is the server side of sessions: signing secrets, the Redis key
// prefix of the deployment and the lifetimes.
type Session struct {
	Secret         []byte // empty in development: generated for the run
	SecretPrevious []byte
	KeyPrefix      string
	Lifetimes      SessionLifetimes
	TouchInterval  time.Duration
	MaxPerUser     int // live sessions per user; a login beyond it ends the oldest
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

// hostPrefix makes browsers accept a cookie only when it is Secure, host-only
// and for Path=/, so no sibling subdomain can set or shadow it.
const hostPrefix = "__Host-"

// defaultName is __Host-sessionId where the prefix's rules hold (a Secure,
// host-only cookie), else sessionId.
func (c Cookie) defaultName() string {
	if c.Secure && c.Domain == "" {
		return hostPrefix + "sessionId"
	}
	return "sessionId"
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

// Accounts are the settings of the account flows that go through mail.
type Accounts struct {
	PasswordResetTTL          time.Duration
	EmailVerificationTTL      time.Duration
	EmailVerificationRequired bool // login answers 403 email_not_verified to an unverified user
}

// MFA is the second factors' settings.
type MFA struct {
	// EncryptionKey encrypts TOTP secrets and keys recovery-code hashes; in
	// development without MFA_ENCRYPTION_KEY, a key generated once and kept
	// in KeyFile (beside the SQLite file), so a restart locks nobody out.
	EncryptionKey  []byte
	KeyFile        string
	PendingTimeout time.Duration // how long a half logged-in session waits for its second factor
	AdminRequired  bool          // admin routes answer 403 mfa_enrollment_required to an admin without a factor
	Issuer         string        // the name authenticator apps show
}

// Metrics are the Prometheus metrics: on or off, and on a listener of their
// own when Addr is set.
type Metrics struct {
	Enabled bool
	Addr    string
}

// Audit is the audit log's retention and how often the server prunes it.
type Audit struct {
	Retention     time.Duration
	PruneInterval time.Duration
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
		URL: p.str("REDIS_URL", ""),
		TLS: RedisTLS{
			CAFile:   p.str("REDIS_TLS_CA_FILE", ""),
			CertFile: p.str("REDIS_TLS_CERT_FILE", ""),
			KeyFile:  p.str("REDIS_TLS_KEY_FILE", ""),
		},
		MinReplicas: p.nonNegative("REDIS_MIN_REPLICAS", 0),
		Timeout:     p.duration("REDIS_TIMEOUT", 2*time.Second),
		PoolSize:    p.positive("REDIS_POOL_SIZE", 64),
	}
	c.Redis.Sentinel = p.redisURL(c.Redis.URL, p.str("REDIS_SENTINEL_PASSWORD", ""))
	c.Session = Session{
		Secret:         []byte(p.str("SESSION_SECRET", "")),
		SecretPrevious: []byte(p.str("SESSION_SECRET_PREVIOUS", "")),
		KeyPrefix:      p.str("SESSION_KEY_PREFIX", "sess:"),
		Lifetimes: SessionLifetimes{
			Idle:     p.duration("SESSION_IDLE_TIMEOUT", 24*time.Hour),
			Absolute: p.duration("SESSION_ABSOLUTE_TIMEOUT", 168*time.Hour),
		},
		TouchInterval: p.duration("SESSION_TOUCH_INTERVAL", time.Minute),
		MaxPerUser:    p.positive("MAX_SESSIONS_PER_USER", 50),
	}
	c.Cookie = Cookie{
		Secure:   p.boolean("COOKIE_SECURE", true),
		SameSite: p.sameSite("COOKIE_SAMESITE", "Strict"),
		Domain:   p.str("COOKIE_DOMAIN", ""),
	}
	c.Cookie.Name = p.str("SESSION_COOKIE_NAME", c.Cookie.defaultName())
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
	c.Audit = Audit{Retention: p.duration("AUDIT_RETENTION", 2160*time.Hour), PruneInterval: p.duration("AUDIT_PRUNE_INTERVAL", 5*time.Minute)}
	c.Mail, c.FrontendURL = p.mail(c.Production)
	c.Accounts = Accounts{
		PasswordResetTTL:          p.duration("PASSWORD_RESET_TTL", 30*time.Minute),
		EmailVerificationTTL:      p.duration("EMAIL_VERIFICATION_TTL", 24*time.Hour),
		EmailVerificationRequired: p.boolean("EMAIL_VERIFICATION_REQUIRED", false),
	}
	c.MFA = MFA{
		EncryptionKey:  []byte(p.str("MFA_ENCRYPTION_KEY", "")),
		KeyFile:        filepath.Join(filepath.Dir(c.Database.SQLitePath), "mfa.key"),
		PendingTimeout: p.duration("MFA_PENDING_TIMEOUT", 5*time.Minute),
		AdminRequired:  p.boolean("ADMIN_MFA_REQUIRED", false),
		Issuer:         p.str("MFA_ISSUER", "Session Auth"),
	}
	c.WebAuthn = p.webauthn(c.Production, c.FrontendURL, c.Browser.CORSAllowedOrigins, c.MFA.Issuer)
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
	if strings.HasPrefix(c.Cookie.Name, hostPrefix) && (c.Cookie.Domain != "" || !c.Cookie.Secure) {
		p.fail("SESSION_COOKIE_NAME %q needs a Secure, host-only cookie: unset COOKIE_DOMAIN and keep COOKIE_SECURE=true, or choose a name without __Host-", c.Cookie.Name)
	}
	if strings.HasPrefix(c.Cookie.Name, "__Secure-") && !c.Cookie.Secure {
		p.fail("SESSION_COOKIE_NAME %q needs COOKIE_SECURE=true", c.Cookie.Name)
	}
	if c.Cookie.SameSite == http.SameSiteNoneMode && !c.Cookie.Secure {
		p.fail("COOKIE_SAMESITE=None needs COOKIE_SECURE=true (browsers drop it otherwise)")
	}
	if n := len(c.MFA.EncryptionKey); n > 0 && n < 32 {
		p.fail("MFA_ENCRYPTION_KEY must be at least 32 bytes")
	}
	if c.Argon2.MemoryKiB < 8*uint32(c.Argon2.Parallelism) {
		p.fail("ARGON2_MEMORY_KIB must be at least 8 × ARGON2_PARALLELISM")
	}
	c.Redis.validate(p)
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
	if len(c.MFA.EncryptionKey) < 32 {
		p.fail("MFA_ENCRYPTION_KEY of at least 32 bytes is required in production (it encrypts TOTP secrets)")
	}
	if c.Accounts.EmailVerificationRequired && !c.Mail.Enabled() {
		p.fail("EMAIL_VERIFICATION_REQUIRED=true needs MAIL_URL in production (nobody could verify)")
	}
}

// Warnings are settings that start but that an operator should hear about,
// one sentence each, logged once at start.
func (c Config) Warnings() []string {
	var out []string
	if string(c.Session.Secret) == ExampleSecret || string(c.Session.SecretPrevious) == ExampleSecret {
		out = append(out, "SESSION_SECRET is the example value from .env.example: anyone can sign cookies for this server (production refuses it)")
	}
	out = append(out, c.mailWarnings()...)
	out = append(out, c.webauthnWarnings()...)
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

func (p *parser) nonNegative(key string, def int) int {
	v := p.str(key, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		p.fail("%s must be a whole number, 0 or more, got %q", key, v)
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
