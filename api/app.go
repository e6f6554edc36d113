package api

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"gorm.io/gorm"

	"github.com/sessionauth/api/config"
	"github.com/sessionauth/api/middleware"
	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
	"github.com/sessionauth/api/services/commonpasswords"
)

// App is the product built once from its configuration: main serves it, the
// commands use its services and the tests start it, so all three run the
// same composition. It is the one place that knows every package.
type App struct {
	Config config.Config
	// Handler is the whole HTTP API.
	Handler http.Handler
	// Metrics serves GET /metrics for a listener of its own (METRICS_ADDR);
	// nil when metrics are off, or in production without METRICS_ADDR.
	Metrics http.Handler
	DB      *gorm.DB
	Redis   *services.Redis
	Users   *services.Users
	Admin   *services.Admin
	Audit   *services.Audit
	// Mailer sends mail after the answer; nil when mail is off (production
	// without MAIL_URL), and a nil Mailer drops what it is given.
	Mailer *services.Mailer
	// MailTemplates builds every mail, with links to FRONTEND_URL.
	MailTemplates *services.MailTemplates

	base    context.Context    // New's context without its cancellation, for Close
	stop    context.CancelFunc // ends background work
	workers sync.WaitGroup
	closers []func()
}

// New builds the application from cfg: the database (PostgreSQL, or the
// embedded SQLite file in development), Redis (or the in-process store in
// development), the services, the session manager and the router. It does
// not need either dependency to be up: a start with one down serves as soon
// as it answers. With AUTO_MIGRATE the schema is applied before New returns
// when the database answers, else retried in the background.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (app *App, err error) {
	app = &App{Config: cfg}
	defer func() {
		if err != nil {
			app.Close()
		}
	}()
	for _, warning := range cfg.Warnings() {
		log.Warn(warning)
	}
	bg, metrics, err := app.openDependencies(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	deps, err := app.newServices(bg, cfg, log, metrics)
	if err != nil {
		return nil, err
	}
	app.Handler, err = NewRouter(deps)
	return app, err
}

// openDependencies opens the database and Redis (applying the schema when
// AUTO_MIGRATE), the metrics and the mailer, and returns the context of the
// application's background work.
func (a *App) openDependencies(ctx context.Context, cfg config.Config, log *slog.Logger) (context.Context, *middleware.Metrics, error) {
	if err := a.openDatabase(cfg, log); err != nil {
		return nil, nil, err
	}
	if err := a.openRedis(cfg, log); err != nil {
		return nil, nil, err
	}
	var bg context.Context
	a.base = context.WithoutCancel(ctx)
	bg, a.stop = context.WithCancel(a.base)
	if cfg.Database.AutoMigrate {
		a.migrate(ctx, bg, log)
	}
	// Metrics are served on METRICS_ADDR when set, else on the API's own port
	// in development only: in production they would show every visitor the
	// traffic, the logins and the outages, so without an address there are none.
	var metrics *middleware.Metrics // nil: none, and records nothing
	if cfg.Metrics.Enabled && (cfg.Metrics.Addr != "" || !cfg.Production) {
		metrics = middleware.NewMetrics()
		a.Metrics = metrics.Handler()
	}
	return bg, metrics, a.openMail(bg, cfg, log, metrics, cfg.Session.Secret)
}

// newServices builds the services, the session manager and what the router
// needs of them, and starts the background work that belongs to them.
func (a *App) newServices(bg context.Context, cfg config.Config, log *slog.Logger, metrics *middleware.Metrics) (Deps, error) {
	secrets, err := sessionSecrets(cfg, log)
	if err != nil {
		return Deps{}, err
	}
	hasher, err := services.NewHasher(services.Argon2Params(cfg.Argon2), cfg.Hashing.Concurrency, cfg.Hashing.Wait)
	if err != nil {
		return Deps{}, err
	}
	keys, err := mfaKeys(cfg, log)
	if err != nil {
		return Deps{}, err
	}
	lifetimes := models.SessionLifetimes(cfg.Session.Lifetimes)
	sessionStore := services.NewSessionStore(a.Redis, services.SessionStoreOptions{Lifetimes: lifetimes,
		MaxPerUser: cfg.Session.MaxPerUser, Counter: metrics})
	a.Users = services.NewUsers(a.DB, cfg.Database.Timeout)
	throttle := services.NewThrottle(a.Redis, services.ThrottleLimits(cfg.Throttle))
	auth := services.NewAuth(services.AuthOptions{
		Users: a.Users, Hasher: hasher, Throttle: throttle, VerificationRequired: cfg.Accounts.EmailVerificationRequired,
		Sessions: sessionStore, CommonPasswords: commonpasswords.New(), Log: log,
	})
	a.workers.Go(func() { learnHashCosts(bg, auth, log) })
	var passkeys *services.Passkeys // nil while passkeys are off: their routes answer 404
	if cfg.WebAuthn.Enabled() {
		passkeys, err = services.NewPasskeys(services.PasskeysOptions{RPID: cfg.WebAuthn.RPID, RPName: cfg.WebAuthn.RPName,
			Origins: cfg.WebAuthn.Origins, Users: a.Users, Sessions: sessionStore, Throttle: throttle, Redis: a.Redis,
			VerificationRequired: cfg.Accounts.EmailVerificationRequired})
		if err != nil {
			return Deps{}, err
		}
	}
	a.Admin = services.NewAdmin(a.Users, auth, sessionStore)
	a.Audit = services.NewAudit(services.AuditOptions{DB: a.DB, Timeout: cfg.Database.Timeout, Redis: a.Redis})
	a.pruneAudit(bg, log)
	var publicMetrics http.Handler // on the API's own port only without METRICS_ADDR (and so never in production)
	if cfg.Metrics.Addr == "" {
		publicMetrics = a.Metrics
	}
	return Deps{
		Log: log, Auth: auth, Admin: a.Admin, Users: a.Users, Audit: a.Audit, SessionStore: sessionStore,
		Accounts: services.NewAccounts(services.AccountsOptions{
			Users: a.Users, Auth: auth, Sessions: sessionStore, Throttle: throttle, Audit: a.Audit, Mailer: a.Mailer,
			Mails: a.MailTemplates, ResetTTL: cfg.Accounts.PasswordResetTTL, VerificationTTL: cfg.Accounts.EmailVerificationTTL, Log: log,
		}),
		MFA: services.NewMFA(services.MFAOptions{Users: a.Users, Auth: auth, Sessions: sessionStore, Throttle: throttle,
			Keys: keys, Issuer: cfg.MFA.Issuer, Passkeys: cfg.WebAuthn.Enabled()}),
		Passkeys: passkeys,
		SessionManager: middleware.NewSessionManager(middleware.SessionManagerOptions{
			Redis: a.Redis, Records: sessionStore, Versions: a.Users, KeyPrefix: a.Redis.Keys().Prefix(), Secrets: secrets,
			Cookie: middleware.CookieOptions(cfg.Cookie), Lifetimes: lifetimes, Touch: cfg.Session.TouchInterval,
			PendingTimeout: cfg.MFA.PendingTimeout,
		}),
		Ready: map[string]Pinger{
			"database": func(ctx context.Context) error { return services.PingDatabase(ctx, a.DB) },
			"redis":    a.Redis.Ping,
		},
		CORSAllowedOrigins: cfg.Browser.CORSAllowedOrigins, TrustedProxies: cfg.Browser.TrustedProxies,
		RegistrationEnabled: cfg.RegistrationEnabled, ReauthWindow: cfg.ReauthWindow, Now: time.Now,
		MailEnabled: cfg.Mail.Enabled(), AdminMFARequired: cfg.MFA.AdminRequired,
		Observe: metrics.Observe(), Metrics: publicMetrics,
	}, nil
}

// Close sends the queued mail within SHUTDOWN_TIMEOUT (unless DrainMail
// did), stops background work and closes Redis and the database (and the
// in-process Redis of development).
func (a *App) Close() {
	if a.Mailer != nil {
		ctx, cancel := context.WithTimeout(a.base, a.Config.HTTP.ShutdownTimeout)
		a.DrainMail(ctx)
		cancel()
	}
	if a.stop != nil {
		a.stop()
	}
	a.workers.Wait()
	for i := len(a.closers) - 1; i >= 0; i-- {
		a.closers[i]()
	}
	a.closers = nil
}

// Migrate applies the database schema.
func (a *App) Migrate(ctx context.Context) error { return services.Migrate(ctx, a.DB) }

func (a *App) openDatabase(cfg config.Config, log *slog.Logger) error {
	db, err := services.OpenDatabase(services.DatabaseOptions{URL: cfg.Database.URL, SQLitePath: cfg.Database.SQLitePath,
		MaxOpenConns: cfg.Database.MaxOpenConns, MaxIdleConns: cfg.Database.MaxIdleConns, ConnMaxLife: cfg.Database.ConnMaxLife})
	if err != nil {
		return err
	}
	a.DB = db
	a.closers = append(a.closers, func() {
		if sqlDB, err := db.DB(); err == nil {
			_ = sqlDB.Close()
		}
	})
	if cfg.Database.URL == "" {
		log.Warn("DATABASE_URL unset: using the embedded SQLite file (development only)", "path", cfg.Database.SQLitePath)
	}
	return nil
}

func (a *App) openRedis(cfg config.Config, log *slog.Logger) error {
	url := cfg.Redis.URL
	if url == "" {
		embedded, stop, err := services.StartEmbeddedRedis()
		if err != nil {
			return err
		}
		a.closers = append(a.closers, stop)
		url = embedded
		log.Warn("REDIS_URL unset: using an in-process Redis-compatible store; sessions end with the process (development only)")
	}
	tlsConfig, err := services.LoadRedisTLS(services.RedisTLSFiles(cfg.Redis.TLS))
	if err != nil {
		return err
	}
	a.Redis = services.NewRedis(services.RedisOptions{URL: url, Sentinel: (*services.Sentinel)(cfg.Redis.Sentinel),
		TLS: tlsConfig, MinReplicas: cfg.Redis.MinReplicas, PoolSize: cfg.Redis.PoolSize, Timeout: cfg.Redis.Timeout,
		KeyPrefix: cfg.Session.KeyPrefix})
	a.closers = append(a.closers, func() { _ = a.Redis.Close() })
	return nil
}

// migrate applies the schema now when the database answers, so a server or a
// test starts on an up-to-date schema, and otherwise keeps retrying in the
// background, so a start with the database down heals by itself.
func (a *App) migrate(ctx, bg context.Context, log *slog.Logger) {
	first, cancel := context.WithTimeout(ctx, a.Config.Database.Timeout+time.Second)
	err := a.Migrate(first)
	cancel()
	if err == nil {
		log.Info("database schema up to date")
		return
	}
	log.Warn("database not ready; will retry the migration", "err", err)
	a.workers.Go(func() {
		for {
			select {
			case <-bg.Done():
				return
			case <-time.After(2 * time.Second):
			}
			if err := a.Migrate(bg); err == nil {
				log.Info("database schema up to date")
				return
			}
		}
	})
}

// pruneAudit deletes the audit events older than AUDIT_RETENTION in the
// background: shortly after start, then every AUDIT_PRUNE_INTERVAL, each run
// by at most one instance of the deployment at a time (a lock in Redis).
func (a *App) pruneAudit(bg context.Context, log *slog.Logger) {
	retention, interval := a.Config.Audit.Retention, a.Config.Audit.PruneInterval
	a.workers.Go(func() {
		timer := time.NewTimer(min(interval, auditPruneFirst))
		defer timer.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-timer.C:
			}
			deleted, ran, err := a.Audit.PruneExclusive(bg, retention)
			switch {
			case err != nil && bg.Err() == nil:
				log.Warn("audit log pruning failed; will retry", "deleted", deleted, "err", err)
			case ran && deleted > 0:
				log.Info("audit log pruned", "deleted", deleted, "retention", retention.String())
			}
			timer.Reset(interval)
		}
	})
}

// auditPruneFirst is how soon after start the audit log is first pruned: a
// server restarted more often than AUDIT_PRUNE_INTERVAL still prunes.
const auditPruneFirst = 10 * time.Second

// learnHashCosts has the login pacer measure each password hash family
// stored in the database, so failed logins are padded to the slowest one
// moments after a start rather than after that family's first login. It
// retries while the database does not answer.
func learnHashCosts(bg context.Context, auth *services.Auth, log *slog.Logger) {
	for {
		ctx, cancel := context.WithTimeout(bg, time.Minute)
		families, err := auth.LearnHashCosts(ctx)
		cancel()
		if err == nil {
			log.Info("password hash families measured", "families", families)
			return
		}
		select {
		case <-bg.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}

// mfaKeys derives the second-factor keys from MFA_ENCRYPTION_KEY, or in
// development without it from a key generated once and kept beside the
// SQLite file (config refuses a missing one in production).
func mfaKeys(cfg config.Config, log *slog.Logger) (*services.MFAKeys, error) {
	material := cfg.MFA.EncryptionKey
	if len(material) == 0 {
		key, err := services.LoadOrCreateKeyFile(cfg.MFA.KeyFile)
		if err != nil {
			return nil, err
		}
		material = key
		log.Warn("MFA_ENCRYPTION_KEY unset: TOTP secrets are encrypted with a key kept in a file (development only)", "path", cfg.MFA.KeyFile)
	}
	return services.NewMFAKeys(material)
}

// sessionSecrets returns the signing secret first and the previous one, if
// any; in development without SESSION_SECRET one is generated for the run
// (config refuses a missing one in production).
func sessionSecrets(cfg config.Config, log *slog.Logger) ([][]byte, error) {
	secret := cfg.Session.Secret
	if len(secret) == 0 {
		if cfg.Production {
			return nil, errors.New("SESSION_SECRET is required in production")
		}
		secret = make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("generate session secret: %w", err)
		}
		log.Warn("SESSION_SECRET unset: generated one for this run; sessions end with the process (development only)")
	}
	secrets := [][]byte{secret}
	if len(cfg.Session.SecretPrevious) > 0 {
		secrets = append(secrets, cfg.Session.SecretPrevious)
	}
	return secrets, nil
}
