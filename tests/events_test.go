package tests

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestSecurityEventsAreLogged walks through every security event and checks
// each is one structured record with a stable event name, the user, the
// client IP and a short session hash, never the session id itself.
func TestSecurityEventsAreLogged(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"LOGIN_MAX_FAILURES": "2"})
	admin, _ := s.newAdmin(t)
	email := uniqueEmail("events")
	c := s.newClient(t)
	userID := c.register(email).ID
	cookie := c.sessionCookie().Value
	other := s.newClient(t)
	other.login(email, testPassword).want(t, 200)
	sessionIDs := s.sessionIDs(t, userID)
	for _, session := range c.sessions() {
		if !session.Current {
			c.do("DELETE", "/sessions/"+session.ID, nil).want(t, 204)
		}
	}
	c.do("POST", "/password", map[string]any{"current_password": testPassword, "new_password": testPassword + " two"}).want(t, 200)
	c.do("POST", "/logout-all", nil).want(t, 200)
	c.login(email, testPassword+" two").want(t, 200)
	c.do("POST", "/logout", nil).want(t, 200)
	admin.do("PATCH", "/admin/users/"+userID, map[string]any{"role": "admin"}).want(t, 200)
	s.newClient(t).login(email, "wrong password 1").want(t, 401)
	s.newClient(t).login(email, "wrong password 2").want(t, 401)
	s.newClient(t).login(email, "wrong password 3").want(t, 429)

	seen := map[string]map[string]any{}
	for _, line := range strings.Split(s.Logs.String(), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			continue
		}
		if event, ok := rec["event"].(string); ok {
			seen[event] = rec
		}
	}
	for _, event := range []string{"login_succeeded", "login_failed", "login_throttled", "logout", "logout_all",
		"session_revoked", "password_changed", "role_changed"} {
		rec, ok := seen[event]
		if !ok {
			t.Errorf("no %s event", event)
			continue
		}
		if rec["ip"] == "" || rec["ip"] == nil {
			t.Errorf("%s: no ip in %v", event, rec)
		}
		if event != "login_failed" && event != "login_throttled" && (rec["user_id"] == "" || rec["session"] == nil) {
			t.Errorf("%s: want user_id and session hash in %v", event, rec)
		}
	}
	if strings.Contains(s.Logs.String(), cookie) {
		t.Fatal("a cookie value reached the log")
	}
	if len(sessionIDs) != 2 {
		t.Fatalf("got %d session ids, want 2", len(sessionIDs))
	}
	for _, id := range sessionIDs {
		if strings.Contains(s.Logs.String(), id) {
			t.Fatal("a session id reached the log")
		}
	}
}
