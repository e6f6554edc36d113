package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"log/slog"

	"github.com/gin-gonic/gin"

	"github.com/sessionauth/api/middleware"
	"github.com/sessionauth/api/models"
)

// securityEvent logs one security event with a stable event field, the user,
// the client IP and a short hash of the session id (never the id itself).
func securityEvent(c *gin.Context, log *slog.Logger, event, userID string, attrs ...slog.Attr) {
	base := []slog.Attr{
		slog.String("event", event),
		slog.String("user_id", userID),
		slog.String("ip", c.ClientIP()),
		slog.String("request_id", middleware.RequestIDOf(c)),
	}
	if rec := middleware.CurrentSession(c); rec != nil {
		base = append(base, slog.String("session", sessionHash(rec.ID)))
	}
	log.LogAttrs(c.Request.Context(), slog.LevelInfo, "security event", append(base, attrs...)...)
}

// sessionHash identifies a session in logs without revealing its id.
func sessionHash(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:6])
}

func loginFailureEvent(c *gin.Context, log *slog.Logger, err error) {
	switch {
	case errors.Is(err, models.ErrTooManyRequests):
		securityEvent(c, log, "login_throttled", "")
	case errors.Is(err, models.ErrInvalidCredentials):
		securityEvent(c, log, "login_failed", "")
	}
}

func passwordFailureEvent(c *gin.Context, log *slog.Logger, userID string, err error) {
	switch {
	case errors.Is(err, models.ErrTooManyRequests):
		securityEvent(c, log, "login_throttled", userID)
	case errors.Is(err, models.ErrInvalidCurrentPassword):
		securityEvent(c, log, "login_failed", userID)
	}
}
