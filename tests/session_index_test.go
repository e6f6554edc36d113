package tests

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/gorilla/securecookie"

	"github.com/sessionauth/api/models"
)

// TestSessionCapEndsTheOldestSessions: one account logs in cap + 5 times;
// the five oldest sessions end (their cookies answer 401), the listing shows
// exactly the cap, and the user's index holds no more than that.
func TestSessionCapEndsTheOldestSessions(t *testing.T) {
	t.Parallel()
	const limit = 5
	s := newServer(t, env{"MAX_SESSIONS_PER_USER": "5"})
	email := uniqueEmail("capped")
	first := s.newClient(t)
	id := first.register(email).ID
	clients := []*client{first}
	for len(clients) < limit+5 {
		clients = append(clients, s.loggedIn(t, email, testPassword))
	}
	for i, c := range clients {
		want := 200
		if i < 5 {
			want = 401
		}
		c.do("GET", "/me", nil).want(t, want)
	}
	if list := clients[len(clients)-1].sessions(); len(list) != limit {
		t.Fatalf("got %d sessions listed, want the cap %d", len(list), limit)
	}
	if keys := s.checkIndexConsistent(t, id); len(keys) != limit {
		t.Fatalf("got %d session records in Redis, want %d", len(keys), limit)
	}
	// Another user is untouched by this one's logins.
	other := s.newClient(t)
	other.register(uniqueEmail("neighbour"))
	for range limit + 1 {
		s.loggedIn(t, email, testPassword)
	}
	other.do("GET", "/me", nil).want(t, 200)
}

// TestIndexStaysBoundedWhateverTheHistory: however many logins an account
// has made, the index a login, a listing or a logout-all works through holds
// at most the cap, so none of them grows with the account's history.
func TestIndexStaysBoundedWhateverTheHistory(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"MAX_SESSIONS_PER_USER": "3", "LOGIN_MAX_FAILURES": "1000"})
	email := uniqueEmail("busy")
	id := s.newClient(t).register(email).ID
	for range 40 {
		s.newClient(t).login(email, testPassword).want(t, 200)
	}
	if n, _ := redis.Int(s.redisCmd(t, "ZCARD", s.Redis.Keys().UserSessions(id)), nil); n != 3 {
		t.Fatalf("got %d index entries after 41 logins, want the cap 3", n)
	}
	res := s.loggedIn(t, email, testPassword).do("POST", "/logout-all", nil).want(t, 200)
	if res.Body["revoked"] != float64(3) {
		t.Fatalf("got %s, want 3 revoked", res.Raw)
	}
}

// legacyCreateScript is the session-create script of the version before the
// sorted-set index, as an instance of that version still runs it during a
// rolling deploy: KEYS record, hash index; ARGV record, TTL ms, handle, id,
// version read, absolute ms, prefix.
const legacyCreateScript = `
if tonumber(redis.call('HGET', KEYS[2], '#ver') or '0') > tonumber(ARGV[5]) then return 0 end
local index = redis.call('HGETALL', KEYS[2])
for i = 1, #index, 2 do
  if index[i] ~= '#ver' and redis.call('EXISTS', ARGV[7] .. index[i + 1]) == 0 then redis.call('HDEL', KEYS[2], index[i]) end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[6]) then redis.call('PEXPIRE', KEYS[2], ARGV[6]) end
return 1`

// legacyLogin stores a session for userID as an instance of the previous
// version does, and returns a cookie the server signed for it.
func (s *testServer) legacyLogin(t *testing.T, userID, email string) string {
	t.Helper()
	now := time.Now()
	id := "legacy" + randomHex(16)
	rec := models.Session{UserID: userID, Email: email, Name: "Test User", Role: models.RoleUser, UserCreatedAt: now.Unix(),
		CreatedAt: now.Unix(), LastSeenAt: now.Unix(), AuthAt: now.Unix(), AbsoluteAt: now.Add(time.Hour).Unix()}
	body, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	keys := s.Redis.Keys()
	conn := s.Redis.Pool().Get()
	defer conn.Close()
	ok, err := redis.Int(redis.NewScript(2, legacyCreateScript).Do(conn, keys.Session(id), keys.LegacyUserIndex(userID),
		body, time.Hour.Milliseconds(), models.SessionHandle(id), id, 1, (168 * time.Hour).Milliseconds(), keys.Prefix()))
	if err != nil || ok != 1 {
		t.Fatalf("legacy create: %d, %v", ok, err)
	}
	return s.signedCookie(t, id)
}

// signedCookie signs a session id as the server does.
func (s *testServer) signedCookie(t *testing.T, id string) string {
	t.Helper()
	codec := securecookie.New(s.Config.Session.Secret, nil)
	codec.SetSerializer(securecookie.JSONEncoder{})
	value, err := securecookie.EncodeMulti(s.Config.Cookie.Name, id, codec)
	if err != nil {
		t.Fatal(err)
	}
	return value
}

// TestRollingDeployFromTheHashIndex runs this version beside an instance of
// the previous one, which keeps its index as a hash: no command fails with
// WRONGTYPE, the sessions the old instance made are listed and revoked by
// the new one, and the old instance keeps working after the migration.
func TestRollingDeployFromTheHashIndex(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	email := uniqueEmail("deploy")
	fresh := s.newClient(t)
	id := fresh.register(email).ID
	oldCookies := []string{s.legacyLogin(t, id, email), s.legacyLogin(t, id, email)}
	for _, cookie := range oldCookies {
		if !s.cookieAlive(t, cookie) {
			t.Fatal("a session of the old instance does not authenticate")
		}
	}
	if list := fresh.sessions(); len(list) != 3 {
		t.Fatalf("got %d sessions listed, want the new one and the old instance's two", len(list))
	}
	if n, _ := redis.Int(s.redisCmd(t, "EXISTS", s.Redis.Keys().LegacyUserIndex(id)), nil); n != 0 {
		t.Fatal("the hash index is still there after the migration")
	}
	// The old instance writes its hash again beside the new index.
	late := s.legacyLogin(t, id, email)
	if res := fresh.do("POST", "/logout-all", nil).want(t, 200); res.Body["revoked"] != float64(4) {
		t.Fatalf("got %s, want all 4 sessions revoked", res.Raw)
	}
	for _, cookie := range append(oldCookies, late) {
		if s.cookieAlive(t, cookie) {
			t.Fatal("a session of the old instance outlived logout-all")
		}
	}
}

// TestPresentingTheCookieTwiceAuthenticatesNothing: with two session
// cookies in one request (a sibling subdomain shadowing the real one, or
// planting its own), neither is used.
func TestPresentingTheCookieTwiceAuthenticatesNothing(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	bob := s.newClient(t)
	bob.register(uniqueEmail("bob"))
	alice := s.newClient(t)
	alice.register(uniqueEmail("alice"))
	name := s.Config.Cookie.Name
	both := name + "=" + bob.sessionCookie().Value + "; " + name + "=" + alice.sessionCookie().Value
	for _, path := range []string{"/me", "/sessions"} {
		req, err := http.NewRequest("GET", s.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Cookie", both)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		if res.StatusCode != 401 {
			t.Fatalf("%s with the cookie twice: got %d, want 401", path, res.StatusCode)
		}
	}
	// A logout with both ends neither session.
	req, _ := http.NewRequest("POST", s.URL+"/logout", nil)
	req.Header.Set("Cookie", both)
	if res, err := http.DefaultClient.Do(req); err != nil || res.StatusCode != 200 {
		t.Fatalf("logout: %v %v", res, err)
	}
	bob.do("GET", "/me", nil).want(t, 200)
	alice.do("GET", "/me", nil).want(t, 200)
}

// TestSecureCookieIsHostPrefixedByDefault: with the defaults (Secure,
// host-only) the cookie is __Host-sessionId with the attributes the prefix
// demands, so no sibling subdomain can set or shadow it.
func TestSecureCookieIsHostPrefixedByDefault(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"COOKIE_SECURE": "true"})
	res := s.newClient(t).do("POST", "/register", registration(uniqueEmail("host")))
	set := strings.Join(res.Header.Values("Set-Cookie"), "\n")
	for _, want := range []string{"__Host-sessionId=", "Path=/", "Secure", "HttpOnly"} {
		if !strings.Contains(set, want) {
			t.Fatalf("got Set-Cookie %q, want %s", set, want)
		}
	}
	if strings.Contains(set, "Domain=") {
		t.Fatalf("got Set-Cookie %q, want host-only (no Domain)", set)
	}
}
