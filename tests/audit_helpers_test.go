package tests

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionauth/api/models"
)

// Helpers for the audit log.

// auditEventBody is the contract's audit event object.
type auditEventBody struct {
	ID        string         `json:"id"`
	At        string         `json:"at"`
	Event     string         `json:"event"`
	ActorID   *string        `json:"actor_id"`
	UserID    *string        `json:"user_id"`
	IP        string         `json:"ip"`
	UserAgent string         `json:"user_agent"`
	Details   map[string]any `json:"details"`
}

// auditPageBody is one page of GET /me/activity or GET /admin/audit.
type auditPageBody struct {
	Events     []auditEventBody `json:"events"`
	NextBefore *string          `json:"next_before"`
}

// eventNames lists the names of events, in order.
func eventNames(events []auditEventBody) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.Event
	}
	return out
}

// auditPage gets one page of path (GET /me/activity or /admin/audit) with query.
func (c *client) auditPage(path string, query url.Values) auditPageBody {
	c.t.Helper()
	if len(query) > 0 {
		path += "?" + query.Encode()
	}
	return decodeBody[auditPageBody](c.do("GET", path, nil).want(c.t, 200))
}

// allEvents follows next_before from the first page of path to the last,
// limit events a page, and returns every event.
func (c *client) allEvents(path string, query url.Values, limit int) []auditEventBody {
	c.t.Helper()
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("limit", fmt.Sprint(limit))
	var out []auditEventBody
	for range 10000 {
		page := c.auditPage(path, q)
		if len(page.Events) > limit {
			c.t.Fatalf("got a page of %d events, want at most %d", len(page.Events), limit)
		}
		out = append(out, page.Events...)
		if page.NextBefore == nil {
			return out
		}
		if len(page.Events) == 0 {
			c.t.Fatal("got an empty page with a next_before, want next_before null at the end")
		}
		q.Set("before", *page.NextBefore)
	}
	c.t.Fatal("pages never ended")
	return nil
}

// str returns *p, or "<null>".
func str(p *string) string {
	if p == nil {
		return "<null>"
	}
	return *p
}

// wantEvent fails unless e is event with that actor and user ("" for null),
// from 127.0.0.1, at a contract time.
func wantEvent(t *testing.T, e auditEventBody, event, actorID, userID string) {
	t.Helper()
	if e.Event != event || str(e.ActorID) != orNull(actorID) || str(e.UserID) != orNull(userID) {
		t.Fatalf("got %s actor %s user %s, want %s actor %s user %s", e.Event, str(e.ActorID), str(e.UserID),
			event, orNull(actorID), orNull(userID))
	}
	if e.IP != "127.0.0.1" || e.Details == nil || uuid.Validate(e.ID) != nil {
		t.Fatalf("got %+v, want an id, the client IP and details", e)
	}
	parseTime(t, e.At)
}

func orNull(s string) string {
	if s == "" {
		return "<null>"
	}
	return s
}

// storedEvents reads the audit table directly, newest first.
func (s *testServer) storedEvents(t *testing.T, where string, args ...any) []models.AuditEvent {
	t.Helper()
	var out []models.AuditEvent
	q := s.DB.Order("at DESC, id DESC")
	if where != "" {
		q = q.Where(where, args...)
	}
	if err := q.Find(&out).Error; err != nil {
		t.Fatalf("read audit_events: %v", err)
	}
	return out
}

// countEvents counts stored events matching where.
func (s *testServer) countEvents(t *testing.T, where string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := s.DB.Model(&models.AuditEvent{}).Where(where, args...).Count(&n).Error; err != nil {
		t.Fatalf("count audit_events: %v", err)
	}
	return n
}

// insertEvents stores n events directly (bypassing the API), at the given
// time, for userID ("" for none), and returns their ids.
func (s *testServer) insertEvents(t *testing.T, n int, at time.Time, userID string) []string {
	t.Helper()
	rows := make([]models.AuditEvent, n)
	ids := make([]string, n)
	for i := range rows {
		ids[i] = uuid.NewString()
		rows[i] = models.AuditEvent{ID: ids[i], At: at.UTC().Truncate(time.Microsecond), Event: models.EventLoginSucceeded,
			UserID: nullable(userID), Details: models.AuditDetails{"seeded": true}}
	}
	if err := s.DB.CreateInBatches(rows, 500).Error; err != nil {
		t.Fatalf("insert audit events: %v", err)
	}
	return ids
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// auditTableText is every stored event as text, every column, for searching.
func (s *testServer) auditTableText(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	for _, e := range s.storedEvents(t, "") {
		fmt.Fprintf(&b, "%s %s %s %s %s %s %q %v\n", e.ID, e.At, e.Event, str(e.ActorID), str(e.UserID), e.IP, e.UserAgent, e.Details)
	}
	return b.String()
}

// wantNoneOf fails when text contains any of the secrets (empty ones skipped).
func wantNoneOf(t *testing.T, text, what string, secrets []string) {
	t.Helper()
	for _, secret := range slices.Compact(slices.Sorted(slices.Values(secrets))) {
		if secret != "" && strings.Contains(text, secret) {
			t.Errorf("the audit log holds a %s (%.12s…)", what, secret)
		}
	}
}
