package api

import (
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/sessionauth/api/middleware"
	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
)

type sessionResponse struct {
	ID         string `json:"id"`
	CreatedAt  string `json:"created_at"`
	LastSeenAt string `json:"last_seen_at"`
	ExpiresAt  string `json:"expires_at"`
	IP         string `json:"ip"`
	UserAgent  string `json:"user_agent"`
	Current    bool   `json:"current"`
}

type sessionsResponse struct {
	Sessions []sessionResponse `json:"sessions"`
}

func handleListSessions(sessions *services.SessionStore) gin.HandlerFunc {
	return func(c *gin.Context) {
		current := middleware.CurrentSession(c)
		list, err := sessions.List(c.Request.Context(), current.UserID)
		if err != nil {
			_ = c.Error(err)
			return
		}
		c.JSON(http.StatusOK, sessionsResponse{Sessions: newSessionResponses(list, sessions.Lifetimes(), current.ID)})
	}
}

// newSessionResponses lists sessions by handle, the one with currentID (if
// any) marked current.
func newSessionResponses(list []models.Session, lifetimes models.SessionLifetimes, currentID string) []sessionResponse {
	out := make([]sessionResponse, 0, len(list))
	for _, s := range list {
		out = append(out, sessionResponse{
			ID: s.Handle(), CreatedAt: unixTime(s.CreatedAt), LastSeenAt: unixTime(s.LastSeenAt),
			ExpiresAt: formatTime(s.ExpiresAt(lifetimes)), IP: s.IP, UserAgent: s.UserAgent,
			Current: currentID != "" && s.ID == currentID,
		})
	}
	return out
}

// handleDeleteSession revokes one of the caller's sessions by handle; a
// handle that is not the caller's is 404, whoever it belongs to.
func handleDeleteSession(sessions *services.SessionStore, sess *middleware.SessionManager, events *securityEvents) gin.HandlerFunc {
	return func(c *gin.Context) {
		current := middleware.CurrentSession(c)
		handle := c.Param("id")
		if !validHandle(handle) {
			_ = c.Error(models.ErrNotFound)
			return
		}
		deleted, err := sessions.RevokeHandle(c.Request.Context(), current.UserID, handle)
		if err != nil {
			_ = c.Error(err)
			return
		}
		if !deleted {
			_ = c.Error(models.ErrNotFound)
			return
		}
		if handle == current.Handle() {
			sess.ExpireCookie(c)
		}
		events.record(c, models.EventSessionRevoked, current.UserID, current.UserID, slog.String("session", handle))
		c.Status(http.StatusNoContent)
	}
}

// validHandle accepts the 22 base64url characters of a handle.
func validHandle(h string) bool {
	if len(h) != 22 {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}
