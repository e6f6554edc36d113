package tests

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
)

// Helpers for users, admins and sessions.

// seedUser creates a user through the application's admin service (so it
// works while registration is disabled) with testPassword, disabled if asked.
func (s *testServer) seedUser(t *testing.T, name string, role models.Role, disabled bool) (email, id string) {
	t.Helper()
	user, err := s.App.Admin.CreateUser(t.Context(), services.Registration{Email: uniqueEmail(name), Name: name,
		Password: testPassword, Role: role})
	if err != nil {
		t.Fatalf("seed user: %v", err)
	}
	if disabled {
		if err := s.DB.Model(&models.User{}).Where("id = ?", user.ID).Update("disabled", true).Error; err != nil {
			t.Fatalf("disable user: %v", err)
		}
	}
	return user.Email, user.ID
}

// loggedIn returns a new client logged in as email; headers are name, value pairs.
func (s *testServer) loggedIn(t *testing.T, email, password string, headers ...string) *client {
	t.Helper()
	c := s.newClient(t)
	c.do("POST", "/login", map[string]any{"email": email, "password": password}, headers...).want(t, 200)
	return c
}

// newAdmin seeds an active admin and logs them in.
func (s *testServer) newAdmin(t *testing.T) (*client, string) {
	t.Helper()
	email, id := s.seedUser(t, "admin", models.RoleAdmin, false)
	return s.loggedIn(t, email, testPassword), id
}

// sessions lists the caller's sessions.
func (c *client) sessions() []sessionBody {
	c.t.Helper()
	return decodeBody[struct {
		Sessions []sessionBody `json:"sessions"`
	}](c.do("GET", "/sessions", nil).want(c.t, 200)).Sessions
}

// currentHandle returns the handle of the caller's own session.
func (c *client) currentHandle() string {
	c.t.Helper()
	for _, sess := range c.sessions() {
		if sess.Current {
			return sess.ID
		}
	}
	c.t.Fatal("no session marked current")
	return ""
}

// cookieAlive reports whether a session cookie value still authenticates,
// sent from a fresh jar.
func (s *testServer) cookieAlive(t *testing.T, value string) bool {
	t.Helper()
	c := s.newClient(t)
	c.setSessionCookie(value)
	switch res := c.do("GET", "/me", nil); res.Status {
	case 200:
		return true
	case 401:
		return false
	default:
		t.Fatalf("got /me status %d, want 200 or 401; body %s", res.Status, res.Raw)
		return false
	}
}

// redisCmd runs one command on the server's Redis.
func (s *testServer) redisCmd(t *testing.T, cmd string, args ...any) any {
	t.Helper()
	conn := s.Redis.Pool().Get()
	defer conn.Close()
	v, err := conn.Do(cmd, args...)
	if err != nil {
		t.Fatalf("redis %s: %v", cmd, err)
	}
	return v
}

// userIndex returns the user's index (handle -> session id), full and
// pending sessions together.
func (s *testServer) userIndex(t *testing.T, userID string) map[string]string {
	t.Helper()
	keys := s.Redis.Keys()
	m := map[string]string{}
	for _, key := range []string{keys.UserSessions(userID), keys.UserPending(userID)} {
		ids, err := redis.Strings(s.redisCmd(t, "ZRANGE", key, 0, -1), nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range ids {
			m[models.SessionHandle(id)] = id
		}
	}
	return m
}

// sessionKeysOf finds every session record of the user by scanning this
// test's own key prefix. Only the test scans; the product never does.
func (s *testServer) sessionKeysOf(t *testing.T, userID string) map[string]models.Session {
	t.Helper()
	prefix := s.Config.Session.KeyPrefix
	out := map[string]models.Session{}
	cursor := "0"
	for {
		reply, err := redis.Values(s.redisCmd(t, "SCAN", cursor, "MATCH", prefix+"*", "COUNT", 1000), nil)
		if err != nil {
			t.Fatal(err)
		}
		cursor, _ = redis.String(reply[0], nil)
		keys, _ := redis.Strings(reply[1], nil)
		for _, key := range keys {
			id := strings.TrimPrefix(key, prefix)
			if strings.Contains(id, ":") { // the index and throttle keys
				continue
			}
			body, err := redis.Bytes(s.redisCmd(t, "GET", key), nil)
			if err != nil {
				continue // expired meanwhile
			}
			var rec models.Session
			if json.Unmarshal(body, &rec) == nil && rec.UserID == userID {
				rec.ID = id
				out[id] = rec
			}
		}
		if cursor == "0" {
			return out
		}
	}
}

// checkIndexConsistent fails unless the user's index and session keys agree
// one to one: no entry pointing at nothing, no session missing from the index
// (logout-all could not find it).
func (s *testServer) checkIndexConsistent(t *testing.T, userID string) map[string]models.Session {
	t.Helper()
	index := s.userIndex(t, userID)
	keys := s.sessionKeysOf(t, userID)
	for handle, id := range index {
		rec, ok := keys[id]
		if !ok {
			t.Errorf("index entry %s points at no session", handle)
		} else if rec.Handle() != handle {
			t.Errorf("index entry %s points at the session of handle %s", handle, rec.Handle())
		}
	}
	for id, rec := range keys {
		if index[rec.Handle()] != id {
			t.Errorf("session of handle %s is missing from the index", rec.Handle())
		}
	}
	return keys
}

// parseTime parses a contract time: RFC 3339, UTC, whole seconds.
func parseTime(t *testing.T, v any) time.Time {
	t.Helper()
	s, _ := v.(string)
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil || !strings.HasSuffix(s, "Z") || tm.Nanosecond() != 0 {
		t.Fatalf("got time %v, want RFC 3339 UTC in whole seconds", v)
	}
	return tm
}

// expiresCookie reports whether res expires the session cookie.
func (s *testServer) expiresCookie(res *response) bool {
	for _, set := range res.Header.Values("Set-Cookie") {
		if strings.HasPrefix(set, s.Config.Cookie.Name+"=;") && strings.Contains(set, "Max-Age=0") {
			return true
		}
	}
	return false
}

// newCookieIn returns the session cookie value a response sets, or "".
func (s *testServer) newCookieIn(res *response) string {
	r := http.Response{Header: res.Header}
	for _, ck := range r.Cookies() {
		if ck.Name == s.Config.Cookie.Name && ck.MaxAge > 0 {
			return ck.Value
		}
	}
	return ""
}

// activeAdmins counts the active admins in the database.
func (s *testServer) activeAdmins(t *testing.T) int64 {
	t.Helper()
	var n int64
	if err := s.DB.Model(&models.User{}).Where("role = ? AND disabled = ?", models.RoleAdmin, false).Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// storedUser reads a user row.
func (s *testServer) storedUser(t *testing.T, id string) models.User {
	t.Helper()
	var u models.User
	if err := s.DB.Where("id = ?", id).Take(&u).Error; err != nil {
		t.Fatal(err)
	}
	return u
}

// atSecondStart waits for the next wall-clock second: session times are whole
// seconds, so a proof made just after it is not aged by the truncation.
func atSecondStart() {
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second + 20*time.Millisecond).Sub(now))
}
