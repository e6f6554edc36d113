package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"
	"math"

	"github.com/gin-gonic/gin"

	"github.com/sessionauth/api/middleware"
	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
)

// securityEvents is where handlers report security events: record both logs
// the event and stores it in the audit log.
type securityEvents struct {
	log   *slog.Logger
	audit *services.Audit
	users *services.Users // whose account a throttled email is, for the audit log
}

// record logs one security event (a stable event field, actor and user, the
// client IP, the request id and a short hash of the session id, never the id
// itself) and stores it in the audit log in the same request. details are
// the event's own facts; they must never hold a password, token, code,
// cookie or session id. A failed store is logged and the request goes on:
// a logout answers even while the database is down.
func (e *securityEvents) record(c *gin.Context, event models.Event, actorID, userID string, details ...slog.Attr) {
	e.logEvent(c, event, actorID, userID, details...)
	stored := models.AuditEvent{Event: event, ActorID: optional(actorID), UserID: optional(userID), IP: c.ClientIP(),
		UserAgent: c.Request.UserAgent(), Details: make(models.AuditDetails, len(details))}
	for _, d := range details {
		if d.Key != "" { // an empty attr stands for "nothing to add"
			stored.Details[d.Key] = d.Value.Resolve().Any()
		}
	}
	// The event happened whether or not the client waits for the answer.
	if err := e.audit.Record(context.WithoutCancel(c.Request.Context()), stored); err != nil {
		e.log.LogAttrs(c.Request.Context(), slog.LevelWarn, "audit event not stored", slog.String("event", string(event)),
			slog.String("request_id", middleware.RequestIDOf(c)), slog.Any("err", err))
	}
}

// logEvent writes the log line of a security event.
func (e *securityEvents) logEvent(c *gin.Context, event models.Event, actorID, userID string, details ...slog.Attr) {
	attrs := make([]slog.Attr, 0, 6+len(details))
	attrs = append(attrs,
		slog.String("event", string(event)),
		slog.String("actor_id", actorID),
		slog.String("user_id", userID),
		slog.String("ip", c.ClientIP()),
		slog.String("request_id", middleware.RequestIDOf(c)),
	)
	if rec := middleware.CurrentSession(c); rec != nil {
		attrs = append(attrs, slog.String("session", sessionHash(rec.ID)))
	}
	e.log.LogAttrs(c.Request.Context(), slog.LevelInfo, "security event", append(attrs, details...)...)
}

// loginFailure records a refused POST /login: a failed login, on the account
// when the email is one (never the typed email), or the first refusal of a
// throttled run.
func (e *securityEvents) loginFailure(c *gin.Context, err error) {
	switch {
	case errors.Is(err, models.ErrTooManyRequests):
		e.throttled(c, err, "")
	case errors.Is(err, models.ErrInvalidCredentials):
		e.record(c, models.EventLoginFailed, "", models.AccountOf(err))
	}
}

// proofFailure records a refused proof of a known user (a password at
// POST /password, /reauth, DELETE /me or POST /me/email, or a second-factor
// code) as a failed login on their account, and a throttled run once.
func (e *securityEvents) proofFailure(c *gin.Context, userID string, err error) {
	switch {
	case errors.Is(err, models.ErrTooManyRequests):
		e.throttled(c, err, userID)
	case errors.Is(err, models.ErrInvalidCurrentPassword):
		e.record(c, models.EventLoginFailed, userID, userID)
	case errors.Is(err, models.ErrInvalidCode):
		e.record(c, models.EventLoginFailed, userID, userID, slog.String("step", "second factor"))
	}
}

// passkeyFailure records a refused passkey login (or second step): a failed
// login on the account when it is known (the pending session's, or the
// credential's owner), or the first refusal of a throttled run. An assertion
// that names no account is not stored: nothing ties it to anyone.
func (e *securityEvents) passkeyFailure(c *gin.Context, pendingUserID string, err error) {
	switch {
	case errors.Is(err, models.ErrTooManyRequests):
		e.throttled(c, err, pendingUserID)
	case errors.Is(err, models.ErrInvalidCode), errors.Is(err, models.ErrInvalidCredentials):
		if userID := models.AccountOf(err); userID != "" {
			e.record(c, models.EventLoginFailed, pendingUserID, userID, slog.String("method", models.MethodPasskey))
		}
	}
}

// secondFactorUsed records the second factor that completed a login or a
// proof: mfa_used, or recovery_code_used for a recovery code.
func (e *securityEvents) secondFactorUsed(c *gin.Context, userID, method string) {
	switch method {
	case "":
	case models.MethodRecoveryCode:
		e.record(c, models.EventRecoveryCodeUsed, userID, userID)
	default:
		e.record(c, models.EventMFAUsed, userID, userID, slog.String("method", method))
	}
}

// throttled records login_throttled once per throttle counter and window:
// later refusals of the same run are only logged. A run on an email counter
// is stored on that email's account when there is one; a run on an IP
// counter concerns many accounts and names none.
func (e *securityEvents) throttled(c *gin.Context, err error, actorID string) {
	var refused *services.ThrottledError
	if !errors.As(err, &refused) {
		return
	}
	details := []slog.Attr{slog.String("counter", refused.Kind),
		slog.Int("retry_after", int(math.Ceil(refused.Err.RetryAfter.Seconds())))}
	ctx := context.WithoutCancel(c.Request.Context())
	if first, err := e.audit.FirstRefusal(ctx, refused); err != nil || !first {
		e.logEvent(c, models.EventLoginThrottled, actorID, actorID, append(details, slog.Bool("stored", false))...)
		return
	}
	userID := actorID
	if userID == "" && refused.Kind == "login:email" {
		if user, err := e.users.FindByEmail(ctx, refused.Subject); err == nil {
			userID = user.ID
		}
	}
	e.record(c, models.EventLoginThrottled, actorID, userID, details...)
}

// sessionHash identifies a session in logs without revealing its id.
func sessionHash(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:6])
}

// optional is nil for "", else a pointer to s (a NULL column).
func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
