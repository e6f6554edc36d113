package tests

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"golang.org/x/crypto/bcrypt"

	"github.com/sessionauth/api/models"
)

// sessionIDs returns the session ids in the user's index.
func (s *testServer) sessionIDs(t *testing.T, userID string) []string {
	t.Helper()
	var ids []string
	for _, id := range s.userIndex(t, userID) {
		ids = append(ids, id)
	}
	return ids
}

func TestJourneyRegisterMeLogoutLogin(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	c := s.newClient(t)
	email := uniqueEmail("Ada")
	res := c.do("POST", "/register", map[string]any{"email": "  " + strings.ToUpper(email) + " ", "password": testPassword, "name": "  Ada ", "role": "admin"}).want(t, 201)
	u := res.user()
	if u.Email != email || u.Name != "Ada" || u.Role != "user" || u.Disabled != false {
		t.Fatalf("got user %v, want normalised email, trimmed name, role user (role in body ignored)", u)
	}
	if _, err := time.Parse(time.RFC3339, u.CreatedAt); err != nil || !strings.HasSuffix(u.CreatedAt, "Z") {
		t.Fatalf("got created_at %v, want RFC 3339 UTC", u.CreatedAt)
	}
	if strings.Contains(res.Raw, "password") || strings.Contains(res.Raw, "argon2") {
		t.Fatalf("response leaks the hash: %s", res.Raw)
	}
	me := c.do("GET", "/me", nil).want(t, 200).user()
	if me.ID != u.ID || me.Email != email {
		t.Fatalf("got /me %v, want %v", me, u)
	}
	c.do("POST", "/logout", nil).want(t, 200)
	c.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	c.do("POST", "/logout", nil).want(t, 200) // idempotent
	c.login(email, "wrong password!!").want(t, 401, "invalid_credentials")
	c.login("nobody-"+email, testPassword).want(t, 401, "invalid_credentials")
	c.login(strings.ToUpper(email), testPassword).want(t, 200)
	c.do("GET", "/me", nil).want(t, 200)
}

func TestContractErrors(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	c := s.newClient(t)
	email := uniqueEmail("errors")
	c.register(email)
	big := `{"email":"a@b.c","password":"` + strings.Repeat("x", 70<<10) + `"}`
	cases := []struct {
		name, method, path string
		body               any
		headers            []string
		status             int
		code               string
	}{
		{"malformed json", "POST", "/login", `{"email":`, nil, 400, "invalid_json"},
		{"trailing bytes", "POST", "/login", `{"email":"a@b.c","password":"12345678"} {}`, nil, 400, "invalid_json"},
		{"missing body", "POST", "/login", "", nil, 400, "invalid_json"},
		{"array body", "POST", "/login", `[]`, nil, 400, "invalid_json"},
		{"wrong type", "POST", "/login", `{"email":42,"password":"12345678"}`, nil, 400, "validation_failed"},
		{"missing field", "POST", "/register", map[string]any{"email": "x@y.z", "password": testPassword}, nil, 400, "validation_failed"},
		{"short password", "POST", "/register", map[string]any{"email": "x@y.z", "password": "short", "name": "X"}, nil, 400, "validation_failed"},
		{"long password", "POST", "/register", map[string]any{"email": "x@y.z", "password": strings.Repeat("é", 129), "name": "X"}, nil, 400, "validation_failed"},
		{"bad email", "POST", "/register", map[string]any{"email": "not-an-email", "password": testPassword, "name": "X"}, nil, 400, "validation_failed"},
		{"blank name", "POST", "/register", map[string]any{"email": "x@y.z", "password": testPassword, "name": "   "}, nil, 400, "validation_failed"},
		{"taken email", "POST", "/register", map[string]any{"email": strings.ToUpper(email), "password": testPassword, "name": "X"}, nil, 409, "email_taken"},
		{"not json", "POST", "/login", `email=a`, []string{"Content-Type", "application/x-www-form-urlencoded"}, 415, "unsupported_media_type"},
		{"too large", "POST", "/login", big, nil, 413, "payload_too_large"},
		{"charset allowed", "POST", "/login", `{"email":"nobody@x.y","password":"12345678"}`, []string{"Content-Type", "application/json; charset=utf-8"}, 401, "invalid_credentials"},
		{"unknown route", "GET", "/nope", nil, nil, 404, "not_found"},
		{"trailing slash", "POST", "/login/", `{}`, nil, 404, "not_found"},
		{"wrong method", "GET", "/login", nil, nil, 405, "method_not_allowed"},
		{"no session", "GET", "/me", nil, nil, 401, "not_authenticated"},
		{"logout-all without session", "POST", "/logout-all", nil, nil, 401, "not_authenticated"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := s.newClient(t).do(tc.method, tc.path, tc.body, tc.headers...).want(t, tc.status, tc.code)
			if decodeBody[errorBody](res).Message == "" {
				t.Fatalf("got no message in %s", res.Raw)
			}
			if tc.code == "validation_failed" {
				if len(res.fields()) == 0 {
					t.Fatalf("got no fields in %s", res.Raw)
				}
			}
			if tc.status == 405 && res.Header.Get("Allow") != "POST" {
				t.Fatalf("got Allow %q, want POST", res.Header.Get("Allow"))
			}
			for _, h := range []string{"Cache-Control", "X-Content-Type-Options", "X-Request-Id"} {
				if res.Header.Get(h) == "" {
					t.Fatalf("missing %s", h)
				}
			}
		})
	}
	// A field of the wrong type is named in fields.
	res := c.do("POST", "/login", `{"email":"a@b.c","password":12345678}`).want(t, 400, "validation_failed")
	if res.fields()["password"] == "" {
		t.Fatalf("got fields %v, want password named", res.Body["fields"])
	}
}

func TestChunkedBodyOverLimitIs413(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	pr, pw := io.Pipe()
	go func() {
		_, _ = pw.Write([]byte(`{"email":"a@b.c","password":"`))
		for i := 0; i < 70; i++ {
			_, _ = pw.Write([]byte(strings.Repeat("x", 1024)))
		}
		_, _ = pw.Write([]byte(`"}`))
		_ = pw.Close()
	}()
	req, _ := http.NewRequest("POST", s.URL+"/login", pr)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 413 || len(res.TransferEncoding) != 0 && res.TransferEncoding[0] != "chunked" {
		t.Fatalf("got %d, want 413", res.StatusCode)
	}
}

func TestCookieAttributes(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"COOKIE_SECURE": "true", "SESSION_ABSOLUTE_TIMEOUT": "2h", "SESSION_COOKIE_NAME": "sid"})
	c := s.newClient(t)
	res := c.do("POST", "/register", map[string]any{"email": uniqueEmail("cookie"), "password": testPassword, "name": "C"}).want(t, 201)
	set := res.Header.Get("Set-Cookie")
	for _, attr := range []string{"sid=", "Path=/", "Max-Age=7200", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(set, attr) {
			t.Fatalf("got Set-Cookie %q, want %s", set, attr)
		}
	}
	if strings.Contains(set, "Domain=") {
		t.Fatalf("got Set-Cookie %q, want host-only", set)
	}
	// The jar does not send a Secure cookie over http: send it by hand.
	value := strings.TrimPrefix(strings.Split(set, ";")[0], "sid=")
	res = s.newClient(t).do("POST", "/logout", nil, "Cookie", "sid="+value).want(t, 200)
	expired := res.Header.Get("Set-Cookie")
	for _, attr := range []string{"sid=;", "Path=/", "Max-Age=0", "HttpOnly", "Secure", "SameSite=Strict"} {
		if !strings.Contains(expired, attr) {
			t.Fatalf("got expiring Set-Cookie %q, want %s", expired, attr)
		}
	}
	s.newClient(t).do("GET", "/me", nil, "Cookie", "sid="+value).want(t, 401)
}

func TestCookieSameSiteAndDomainFromConfig(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"COOKIE_SAMESITE": "Lax", "COOKIE_DOMAIN": "example.test"})
	res := s.newClient(t).do("POST", "/register", map[string]any{"email": uniqueEmail("lax"), "password": testPassword, "name": "L"}).want(t, 201)
	set := res.Header.Get("Set-Cookie")
	if !strings.Contains(set, "SameSite=Lax") || !strings.Contains(set, "Domain=example.test") || strings.Contains(set, "Secure") {
		t.Fatalf("got Set-Cookie %q, want SameSite=Lax, Domain=example.test, not Secure", set)
	}
}

// TestLoginMintsNewSessionID plants a cookie the server itself signed for a
// session since logged out, logs another user in with it, and checks that a
// new id is issued and the planted cookie still answers 401.
func TestLoginMintsNewSessionID(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	victim := s.newClient(t)
	attacker := s.newClient(t)
	attackerID := attacker.register(uniqueEmail("attacker")).ID
	oldIDs := s.sessionIDs(t, attackerID)
	planted := attacker.sessionCookie().Value
	attacker.do("POST", "/logout", nil).want(t, 200)

	victim.setSessionCookie(planted)
	victimEmail := uniqueEmail("victim")
	victimID := s.newClient(t).register(victimEmail).ID
	victim.login(victimEmail, testPassword).want(t, 200)
	if got := victim.sessionCookie().Value; got == planted {
		t.Fatal("login kept the planted cookie")
	}
	newIDs := s.sessionIDs(t, victimID)
	if len(newIDs) != 2 || newIDs[0] == oldIDs[0] || newIDs[1] == oldIDs[0] {
		t.Fatalf("got victim sessions %v, want two fresh ids, none %v", newIDs, oldIDs)
	}
	if n, _ := redis.Int(s.redisCmd(t, "EXISTS", s.Config.Session.KeyPrefix+oldIDs[0]), nil); n != 0 {
		t.Fatal("the planted session's key exists again")
	}
	victim.do("GET", "/me", nil).want(t, 200)
	planter := s.newClient(t)
	planter.setSessionCookie(planted)
	planter.do("GET", "/me", nil).want(t, 401, "not_authenticated")

	// A live session presented at login is replaced, not reused.
	before := victim.sessionCookie().Value
	victim.login(victimEmail, testPassword).want(t, 200)
	stale := s.newClient(t)
	stale.setSessionCookie(before)
	stale.do("GET", "/me", nil).want(t, 401)
}

func TestLogoutAllAcrossThreeJarsSparesOtherUsers(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	email := uniqueEmail("many")
	a, b, c := s.newClient(t), s.newClient(t), s.newClient(t)
	a.register(email)
	b.login(email, testPassword).want(t, 200)
	c.login(email, testPassword).want(t, 200)
	other := s.newClient(t)
	other.register(uniqueEmail("other"))

	res := b.do("POST", "/logout-all", nil).want(t, 200)
	if res.Body["success"] != true || res.Body["revoked"] != float64(3) {
		t.Fatalf("got %s, want success and revoked 3", res.Raw)
	}
	if !strings.Contains(res.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("got Set-Cookie %q, want the cookie expired", res.Header.Get("Set-Cookie"))
	}
	for _, cl := range []*client{a, b, c} {
		cl.do("GET", "/me", nil).want(t, 401)
	}
	other.do("GET", "/me", nil).want(t, 200)
	if !strings.Contains(s.Logs.String(), `"event":"logout_all"`) {
		t.Fatal("no logout_all security event")
	}
}

func TestRedisKeyPerSessionWithTTLAndNoKeyAfterLogout(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"SESSION_IDLE_TIMEOUT": "1h", "SESSION_ABSOLUTE_TIMEOUT": "3h"})
	c := s.newClient(t)
	id := c.register(uniqueEmail("ttl")).ID
	ids := s.sessionIDs(t, id)
	if len(ids) != 1 {
		t.Fatalf("got %d sessions in the index, want 1", len(ids))
	}
	key := s.Config.Session.KeyPrefix + ids[0]
	ttl, _ := redis.Int(s.redisCmd(t, "TTL", key), nil)
	if ttl < 3590 || ttl > 3600 {
		t.Fatalf("got TTL %d, want the idle timeout (3600)", ttl)
	}
	raw, _ := redis.Bytes(s.redisCmd(t, "GET", key), nil)
	var rec map[string]any
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatalf("record is not JSON: %q", raw)
	}
	if rec["u"] != id || strings.Contains(string(raw), "argon2") || strings.Contains(string(raw), "password") {
		t.Fatalf("got record %s, want the user id and no hash", raw)
	}
	if _, isInt := rec["c"].(float64); !isInt {
		t.Fatalf("got created %T, want a number", rec["c"])
	}
	c.do("POST", "/logout", nil).want(t, 200)
	if n, _ := redis.Int(s.redisCmd(t, "EXISTS", key), nil); n != 0 {
		t.Fatal("session key still in Redis after logout")
	}
	if len(s.sessionIDs(t, id)) != 0 {
		t.Fatal("index entry left after logout")
	}
}

func TestIdleTimeoutEndsSession(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"SESSION_IDLE_TIMEOUT": "2s", "SESSION_TOUCH_INTERVAL": "200ms", "SESSION_ABSOLUTE_TIMEOUT": "1h"})
	c := s.newClient(t)
	c.register(uniqueEmail("idle"))
	for i := 0; i < 4; i++ { // activity keeps it alive past the idle timeout
		time.Sleep(700 * time.Millisecond)
		c.do("GET", "/me", nil).want(t, 200)
	}
	time.Sleep(2500 * time.Millisecond)
	c.do("GET", "/me", nil).want(t, 401, "not_authenticated")
}

func TestAbsoluteTimeoutEndsActiveSession(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"SESSION_IDLE_TIMEOUT": "20s", "SESSION_TOUCH_INTERVAL": "1s", "SESSION_ABSOLUTE_TIMEOUT": "3s"})
	c := s.newClient(t)
	id := c.register(uniqueEmail("abs")).ID
	ttl, _ := redis.Int64(s.redisCmd(t, "PTTL", s.Config.Session.KeyPrefix+s.sessionIDs(t, id)[0]), nil)
	if ttl > 3000 || ttl < 2000 {
		t.Fatalf("got PTTL %d, want the absolute deadline (3 s) as the earlier one", ttl)
	}
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		c.do("GET", "/me", nil).want(t, 200)
		time.Sleep(300 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	c.do("GET", "/me", nil).want(t, 401, "not_authenticated")
}

func TestBcryptHashIsRehashedToArgon2idOnLogin(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	email := uniqueEmail("imported")
	hash, _ := bcrypt.GenerateFromPassword([]byte(testPassword), bcrypt.MinCost)
	user := models.User{ID: "6f1c1d4e-58f4-4ad7-9a43-7d0e6f0a" + randomHex(2), Email: email, Name: "Imported", Role: models.RoleUser,
		PasswordHash: string(hash), SessionVersion: 1}
	if err := s.DB.Create(&user).Error; err != nil {
		t.Fatal(err)
	}
	c := s.newClient(t)
	c.login(email, "not the password").want(t, 401)
	c.login(email, testPassword).want(t, 200)
	var stored models.User
	s.DB.Where("id = ?", user.ID).Take(&stored)
	if !strings.HasPrefix(stored.PasswordHash, "$argon2id$v=19$m=64,t=1,p=1$") {
		t.Fatalf("got stored hash %.20s…, want Argon2id", stored.PasswordHash)
	}
	c.do("POST", "/logout", nil).want(t, 200)
	c.login(email, testPassword).want(t, 200)
}

// TestBcryptPasswordsPast72BytesNeverMatch is the attack on an imported
// bcrypt account: bcrypt reads 72 bytes, so any password sharing them logged
// in, was rehashed to Argon2id, and the owner's own password stopped working.
func TestBcryptPasswordsPast72BytesNeverMatch(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	email := uniqueEmail("imported72")
	owner := strings.Repeat("the owner's long passphrase ", 3)[:72]
	hash, err := bcrypt.GenerateFromPassword([]byte(owner), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	user := models.User{ID: "7a2c1d4e-58f4-4ad7-9a43-7d0e6f0a" + randomHex(2), Email: email, Name: "Imported", Role: models.RoleUser,
		PasswordHash: string(hash), SessionVersion: 1}
	if err := s.DB.Create(&user).Error; err != nil {
		t.Fatal(err)
	}
	attacker := s.newClient(t)
	attacker.login(email, owner+" plus the attacker's own ending").want(t, 401, "invalid_credentials")
	attacker.login(email, owner+"!").want(t, 401, "invalid_credentials")
	if s.storedUser(t, user.ID).PasswordHash != string(hash) {
		t.Fatal("a failed login replaced the stored hash")
	}
	s.newClient(t).login(email, owner).want(t, 200) // exactly the 72 bytes bcrypt hashed: the owner's password
	if stored := s.storedUser(t, user.ID).PasswordHash; !strings.HasPrefix(stored, "$argon2id$") {
		t.Fatalf("got stored hash %.12s…, want the owner's rehashed to Argon2id", stored)
	}
	attacker.login(email, owner+"!").want(t, 401, "invalid_credentials")
	s.newClient(t).login(email, owner).want(t, 200)
}

func TestRoleMiddleware(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	anon := s.newClient(t)
	anon.do("GET", "/admin/users", nil).want(t, 401, "not_authenticated")
	user := s.newClient(t)
	user.register(uniqueEmail("plain"))
	user.do("GET", "/admin/users", nil).want(t, 403, "forbidden")
	admin, _ := s.newAdmin(t)
	res := admin.do("GET", "/admin/users", nil).want(t, 200)
	if res.Body["total"] != float64(2) {
		t.Fatalf("got total %v, want 2", res.Body["total"])
	}
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	c := s.newClient(t)
	if res := c.do("GET", "/healthz", nil).want(t, 200); res.Body["status"] != "ok" {
		t.Fatalf("got %s", res.Raw)
	}
	res := c.do("GET", "/readyz", nil).want(t, 200)
	checks := decodeBody[struct {
		Checks map[string]string `json:"checks"`
	}](res).Checks
	if checks["database"] != "ok" || checks["redis"] != "ok" {
		t.Fatalf("got %s", res.Raw)
	}
	if res := c.do("GET", "/openapi.yaml", nil).want(t, 200); !strings.HasPrefix(res.Raw, "openapi: 3") {
		t.Fatalf("got %.40s", res.Raw)
	}
}

func TestLogsCarryNoSecrets(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	c := s.newClient(t)
	c.register(uniqueEmail("logs"))
	c.do("GET", "/me", nil).want(t, 200)
	cookie := c.sessionCookie().Value
	c.do("POST", "/logout", nil).want(t, 200)
	logs := s.Logs.String()
	for _, secret := range []string{testPassword, cookie} {
		if strings.Contains(logs, secret) {
			t.Fatalf("log contains a secret: %.30s…", secret)
		}
	}
	if !strings.Contains(logs, `"route":"/me"`) || !strings.Contains(logs, `"request_id"`) {
		t.Fatal("no request line for /me")
	}
}

// TestLoginPrunesExpiredIndexEntries: the index of a user who never lists
// sessions must not grow with sessions that expired.
func TestLoginPrunesExpiredIndexEntries(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"SESSION_IDLE_TIMEOUT": "1s", "SESSION_TOUCH_INTERVAL": "100ms", "SESSION_ABSOLUTE_TIMEOUT": "1h"})
	email := uniqueEmail("prune")
	atSecondStart() // times are whole seconds: a session made late in a second has well under 1 s left
	id := s.newClient(t).register(email).ID
	for i := 0; i < 3; i++ {
		s.newClient(t).login(email, testPassword).want(t, 200)
	}
	if n := len(s.sessionIDs(t, id)); n != 4 {
		t.Fatalf("got %d index entries, want 4", n)
	}
	time.Sleep(1500 * time.Millisecond)
	s.newClient(t).login(email, testPassword).want(t, 200)
	if n := len(s.sessionIDs(t, id)); n != 1 {
		t.Fatalf("got %d index entries after the others expired, want 1", n)
	}
}
