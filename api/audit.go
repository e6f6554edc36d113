package api

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/sessionauth/api/middleware"
	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
)

// auditEventResponse is the contract's audit event object.
type auditEventResponse struct {
	ID        string              `json:"id"`
	At        string              `json:"at"`
	Event     models.Event        `json:"event"`
	ActorID   *string             `json:"actor_id"`
	UserID    *string             `json:"user_id"`
	IP        string              `json:"ip"`
	UserAgent string              `json:"user_agent"`
	Details   models.AuditDetails `json:"details"`
}

type auditPageResponse struct {
	Events     []auditEventResponse `json:"events"`
	NextBefore *string              `json:"next_before"`
}

func newAuditPageResponse(page services.AuditPage) auditPageResponse {
	out := auditPageResponse{Events: make([]auditEventResponse, 0, len(page.Events))}
	for _, e := range page.Events {
		details := e.Details
		if details == nil {
			details = models.AuditDetails{}
		}
		out.Events = append(out.Events, auditEventResponse{ID: e.ID, At: formatTime(e.At), Event: e.Event,
			ActorID: e.ActorID, UserID: e.UserID, IP: e.IP, UserAgent: e.UserAgent, Details: details})
	}
	if page.Next != nil {
		next := page.Next.String()
		out.NextBefore = &next
	}
	return out
}

// handleMyActivity answers the caller's own security events, newest first.
func handleMyActivity(audit *services.Audit) gin.HandlerFunc {
	return func(c *gin.Context) {
		q, err := parseAuditQuery(c, false)
		if err != nil {
			_ = c.Error(err)
			return
		}
		q.UserID = middleware.CurrentSession(c).UserID
		page, err := audit.List(c.Request.Context(), q)
		if err != nil {
			_ = c.Error(err)
			return
		}
		c.JSON(http.StatusOK, newAuditPageResponse(page))
	}
}

// handleListAudit answers every user's security events, newest first,
// filtered by user and event name.
func handleListAudit(audit *services.Audit) gin.HandlerFunc {
	return func(c *gin.Context) {
		q, err := parseAuditQuery(c, true)
		if err != nil {
			_ = c.Error(err)
			return
		}
		page, err := audit.List(c.Request.Context(), q)
		if err != nil {
			_ = c.Error(err)
			return
		}
		c.JSON(http.StatusOK, newAuditPageResponse(page))
	}
}

// parseAuditQuery reads limit (1..100, default 50) and the before cursor,
// and with filters also user_id (a canonical user id) and event (a known
// event name). An empty parameter is as if absent; anything else that is
// not valid is validation_failed naming it.
func parseAuditQuery(c *gin.Context, filters bool) (services.AuditQuery, error) {
	q := services.AuditQuery{Limit: 50}
	fields := map[string]string{}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			fields["limit"] = "must be a whole number from 1 to 100"
		}
		q.Limit = n
	}
	if v := c.Query("before"); v != "" {
		cursor, err := services.ParseAuditCursor(v)
		if err != nil {
			fields["before"] = "must be a next_before value of this listing"
		}
		q.Before = &cursor
	}
	if filters {
		if v := c.Query("user_id"); v != "" {
			if !services.ValidUserID(v) {
				fields["user_id"] = "must be a user id (a lower-case UUID)"
			}
			q.UserID = v
		}
		if v := models.Event(c.Query("event")); v != "" {
			if !v.Valid() {
				fields["event"] = "must be the name of a security event"
			}
			q.Event = v
		}
	}
	if len(fields) > 0 {
		return q, models.Validation(fields)
	}
	return q, nil
}
