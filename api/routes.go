// Package api translates HTTP to service calls and back: the router, the
// handlers and their request and response shapes.
package api

import (
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sessionauth/api/middleware"
	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
)

// Deps is everything the router needs, built once by New.
type Deps struct {
	Log      *slog.Logger
	Auth     *services.Auth
	Admin    *services.Admin
	Accounts *services.Accounts
	MFA      *services.MFA
	// Passkeys is nil while passkeys are off (no origin): their routes answer 404.
	Passkeys            *services.Passkeys
	Users               *services.Users
	Audit               *services.Audit
	SessionStore        *services.SessionStore
	SessionManager      *middleware.SessionManager
	Ready               map[string]Pinger
	CORSAllowedOrigins  []string
	TrustedProxies      []string
	RegistrationEnabled bool
	ReauthWindow        time.Duration
	// MailEnabled is false in production without MAIL_URL: the mail routes answer 404.
	MailEnabled bool
	// AdminMFARequired: admin routes need the caller to have a second factor.
	AdminMFARequired bool
	Now              func() time.Time
	// Extra middleware run first on every request (metrics), may be nil.
	Observe gin.HandlerFunc
	// Metrics serves GET /metrics on this router; nil when metrics are off
	// or served on their own listener (METRICS_ADDR).
	Metrics http.Handler
}

// NewRouter returns the whole API on a bare gin.Engine (never gin.Default):
// no redirects, 404 and 405 in the contract's shape, client IPs only from
// trusted proxies.
func NewRouter(d Deps) (*gin.Engine, error) {
	r := gin.New()
	r.RedirectTrailingSlash = false
	r.RedirectFixedPath = false
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true // c.Value reaches the request context
	if err := r.SetTrustedProxies(d.TrustedProxies); err != nil {
		return nil, fmt.Errorf("TRUSTED_PROXIES: %w", err)
	}
	crossOrigin, err := middleware.CrossOriginProtection(d.CORSAllowedOrigins)
	if err != nil {
		return nil, fmt.Errorf("CORS_ALLOWED_ORIGINS: %w", err)
	}
	if d.Observe != nil {
		r.Use(d.Observe)
	}
	r.Use(
		middleware.RequestID(),
		middleware.SecurityHeaders(),
		middleware.RequestLog(d.Log),
		middleware.Errors(d.Log),
		middleware.Recover(d.Log),
		middleware.CORS(d.CORSAllowedOrigins),
		crossOrigin,
	)
	r.NoRoute(middleware.NotFound())
	r.NoMethod(middleware.MethodNotAllowed())
	addRoutes(r, d)
	return r, nil
}

// addRoutes shows the whole API: public, authenticated, admin.
func addRoutes(r *gin.Engine, d Deps) {
	v := newValidator()
	sess := d.SessionManager
	events := &securityEvents{log: d.Log, audit: d.Audit, users: d.Users}

	r.GET("/healthz", handleHealthz())
	r.GET("/readyz", handleReadyz(d.Ready))
	r.GET("/openapi.yaml", handleOpenAPI())
	if d.Metrics != nil {
		r.GET("/metrics", gin.WrapH(d.Metrics))
	}

	public := r.Group("/", sess.Middleware())
	public.POST("/register", handleRegister(d.RegistrationEnabled, v, d.Auth, d.Accounts, sess, events))
	public.POST("/login", sess.Optional(), handleLogin(v, d.Auth, d.MFA, sess, events))
	public.POST("/logout", sess.Optional(), handleLogout(sess, events))
	public.POST("/login/mfa", sess.RequirePending(), handleLoginMFA(v, d.MFA, sess, events))

	authed := r.Group("/", sess.Middleware(), sess.RequireAuth())
	authed.GET("/me", handleMe())
	authed.GET("/me/activity", handleMyActivity(d.Audit))
	authed.POST("/logout-all", handleLogoutAll(d.SessionStore, sess, events))
	authed.GET("/sessions", handleListSessions(d.SessionStore))
	authed.DELETE("/sessions/:id", handleDeleteSession(d.SessionStore, sess, events))
	authed.POST("/password", handleChangePassword(v, d.Auth, d.Accounts, sess, events))
	authed.POST("/reauth", handleReauth(v, d.MFA, sess, events))
	authed.PATCH("/me", handleRename(v, d.Accounts))
	authed.DELETE("/me", handleDeleteAccount(v, d.Accounts, sess, events))

	recent := middleware.RequireRecentAuth(d.ReauthWindow, d.Now)
	authed.POST("/mfa/totp", recent, handleBeginTOTP(d.MFA))
	authed.POST("/mfa/totp/confirm", handleConfirmTOTP(v, d.MFA, d.Accounts, sess, events))
	authed.DELETE("/mfa/totp", recent, handleDisableTOTP(d.MFA, d.Accounts, events))
	authed.POST("/mfa/recovery-codes", recent, handleNewRecoveryCodes(d.MFA))

	adminOnly := []gin.HandlerFunc{middleware.RequireRole(models.RoleAdmin), middleware.RequireSecondFactor(d.AdminMFARequired), recent}
	admin := authed.Group("/admin", adminOnly...)
	admin.GET("/users", handleListUsers(d.Admin))
	admin.POST("/users", handleCreateUser(v, d.Admin, events))
	admin.GET("/users/:id", handleGetUser(d.Admin, d.SessionStore.Lifetimes()))
	admin.PATCH("/users/:id", handlePatchUser(v, d.Admin, sess, events))
	admin.POST("/users/:id/logout-all", handleAdminLogoutAll(d.Admin, sess, events))
	admin.DELETE("/users/:id", handleDeleteUser(d.Admin, sess, events))
	admin.DELETE("/users/:id/sessions/:sid", handleAdminDeleteSession(d.Admin, sess, events))
	admin.DELETE("/users/:id/mfa", handleAdminRemoveMFA(d.MFA, d.Accounts, sess, events))
	admin.GET("/audit", handleListAudit(d.Audit))

	// Off in production without MAIL_URL: 404 before anything else is checked.
	mail := r.Group("/", requireFeature(d.MailEnabled), sess.Middleware())
	mail.POST("/password/forgot", handleForgotPassword(v, d.Accounts))
	mail.POST("/password/reset", handleResetPassword(v, d.Accounts, events))
	mail.POST("/email/verify", handleVerifyEmail(v, d.Accounts, events))
	mailAuthed := mail.Group("/", sess.RequireAuth())
	mailAuthed.POST("/email/verification", handleSendVerification(d.Accounts))
	mailAuthed.POST("/me/email", handleRequestEmailChange(v, d.Accounts, events))
	mailAuthed.Group("/admin", adminOnly...).POST("/users/:id/password-reset", handleAdminPasswordReset(d.Accounts))

	// Off without any origin: 404 before anything else is checked. The login
	// finish also completes a pending session's second step.
	passkeys := r.Group("/", requireFeature(d.Passkeys != nil), sess.Middleware())
	passkeys.POST("/login/passkey/begin", handleBeginPasskeyLogin(d.Passkeys, events))
	passkeys.POST("/login/passkey/finish", sess.Optional(), handleFinishPasskeyLogin(v, d.Passkeys, sess, events))
	passkeysAuthed := passkeys.Group("/", sess.RequireAuth())
	passkeysAuthed.GET("/passkeys", handleListPasskeys(d.Passkeys))
	passkeysAuthed.POST("/passkeys/register/begin", recent, handleBeginPasskeyRegistration(d.Passkeys))
	passkeysAuthed.POST("/passkeys/register/finish", handleFinishPasskeyRegistration(v, d.Passkeys, d.Accounts, sess, events))
	passkeysAuthed.DELETE("/passkeys/:id", recent, handleDeletePasskey(d.Passkeys, d.Accounts, events))
	passkeysAuthed.POST("/reauth/passkey/begin", handleBeginPasskeyReauth(d.Passkeys))
	passkeysAuthed.POST("/reauth/passkey/finish", handleFinishPasskeyReauth(v, d.Passkeys, sess, events))
}
