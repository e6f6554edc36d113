package tests

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gomodule/redigo/redis"

	"github.com/sessionauth/api/models"
)

var handlePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

func TestSessionsListsLiveSessionsNewestFirst(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"SESSION_IDLE_TIMEOUT": "1h", "SESSION_TOUCH_INTERVAL": "1s", "SESSION_ABSOLUTE_TIMEOUT": "2h"})
	start := time.Now().Truncate(time.Second)
	email := uniqueEmail("lister")
	first := s.newClient(t)
	userID := first.do("POST", "/register", map[string]any{"email": email, "password": testPassword, "name": "L"},
		"User-Agent", "agent-first").want(t, 201).user().ID
	time.Sleep(1100 * time.Millisecond) // a later second, and past the touch interval
	longUA, wideUA := strings.Repeat("x", 300), strings.Repeat("é", 200)
	second := s.loggedIn(t, email, testPassword, "User-Agent", longUA)
	third := s.loggedIn(t, email, testPassword, "User-Agent", wideUA)
	s.newClient(t).register(uniqueEmail("stranger"))
	first.do("GET", "/me", nil, "User-Agent", "agent-first").want(t, 200) // records activity

	res := second.do("GET", "/sessions", nil).want(t, 200)
	list := second.sessions()
	if len(list) != 3 {
		t.Fatalf("got %d sessions, want 3 (the stranger's not among them): %s", len(list), res.Raw)
	}
	// Nothing that authenticates, nor the Redis id, is in the listing.
	for _, id := range s.userIndex(t, userID) {
		if strings.Contains(res.Raw, id) {
			t.Fatal("listing contains a session id")
		}
	}
	for _, c := range []*client{first, second, third} {
		if strings.Contains(res.Raw, c.sessionCookie().Value) {
			t.Fatal("listing contains a cookie value")
		}
	}
	byUA := map[string]sessionBody{}
	var prev time.Time
	current := 0
	for i, sess := range list {
		handle := sess.ID
		if !handlePattern.MatchString(handle) {
			t.Fatalf("got handle %q, want 22 base64url characters", handle)
		}
		created, seen, expires := parseTime(t, sess.CreatedAt), parseTime(t, sess.LastSeenAt), parseTime(t, sess.ExpiresAt)
		if i > 0 && created.After(prev) {
			t.Fatalf("got created_at %v after %v, want newest first", created, prev)
		}
		prev = created
		if created.Before(start) || created.After(time.Now()) || seen.Before(created) {
			t.Fatalf("got created_at %v, last_seen_at %v; want since %v and seen >= created", created, seen, start)
		}
		if !expires.Equal(seen.Add(time.Hour)) {
			t.Fatalf("got expires_at %v, want last_seen_at + idle timeout %v", expires, seen.Add(time.Hour))
		}
		if sess.IP != "127.0.0.1" {
			t.Fatalf("got ip %v, want 127.0.0.1", sess.IP)
		}
		if sess.Current == true {
			current++
		}
		byUA[sess.UserAgent] = sess
	}
	if current != 1 || !byUA[longUA[:256]].Current {
		t.Fatalf("got %d current sessions, want exactly the caller's: %s", current, res.Raw)
	}
	if list[2].UserAgent != "agent-first" {
		t.Fatalf("got oldest session %v, want the first login's last", list[2])
	}
	if _, cut := byUA[strings.Repeat("é", 128)]; !cut {
		t.Fatalf("got user agents %v, want the 400-byte one cut to 256 bytes at a character boundary", res.Raw)
	}
	for ua := range byUA {
		if len(ua) > 256 || !utf8.ValidString(ua) {
			t.Fatalf("got user_agent of %d bytes, want at most 256, valid UTF-8", len(ua))
		}
	}
	old := byUA["agent-first"]
	if !parseTime(t, old.LastSeenAt).After(parseTime(t, old.CreatedAt)) {
		t.Fatalf("got last_seen_at %v, want the activity after created_at %v", old.LastSeenAt, old.CreatedAt)
	}
	// Handles are per session and stable.
	if third.currentHandle() == second.currentHandle() || third.currentHandle() != byUA[strings.Repeat("é", 128)].ID {
		t.Fatal("handles are not one per session")
	}
}

// TestSessionsListReadsTheIndexAndPrunesDeadEntries plants a session key that
// is not in the index (a keyspace scan would find it), an index entry pointing
// at nothing and a session whose key expired.
func TestSessionsListReadsTheIndexAndPrunesDeadEntries(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	email := uniqueEmail("pruned")
	a := s.newClient(t)
	userID := a.register(email).ID
	b := s.loggedIn(t, email, testPassword)
	doomed := s.loggedIn(t, email, testPassword)
	doomedHandle := doomed.currentHandle()
	prefix := s.Config.Session.KeyPrefix
	index := s.userIndex(t, userID)

	body, _ := redis.Bytes(s.redisCmd(t, "GET", prefix+index[b.currentHandle()]), nil)
	var rec models.Session
	if err := json.Unmarshal(body, &rec); err != nil {
		t.Fatal(err)
	}
	rec.ID = "ORPHAN" + randomHex(8)
	orphan, _ := json.Marshal(rec)
	s.redisCmd(t, "SET", prefix+rec.ID, orphan, "EX", 600)
	s.redisCmd(t, "ZADD", s.Redis.Keys().UserSessions(userID), time.Now().UnixMilli(), "NOSUCHSESSION")
	dangling := models.SessionHandle("NOSUCHSESSION")
	s.redisCmd(t, "PEXPIRE", prefix+index[doomedHandle], 1) // as if its TTL ran out
	time.Sleep(50 * time.Millisecond)

	list := a.sessions()
	if len(list) != 2 {
		t.Fatalf("got %d sessions %v, want the 2 live ones from the index", len(list), list)
	}
	for _, sess := range list {
		if h := sess.ID; h == rec.Handle() || h == doomedHandle || h == dangling {
			t.Fatalf("got session %v in the listing, want only live indexed ones", h)
		}
	}
	after := s.userIndex(t, userID)
	if len(after) != 2 || after[dangling] != "" || after[doomedHandle] != "" {
		t.Fatalf("got index %v after listing, want the dead entries pruned", after)
	}
	doomed.do("GET", "/me", nil).want(t, 401, "not_authenticated")
}

func TestDeleteSessionRevokesItAtOnce(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	email := uniqueEmail("revoker")
	a := s.newClient(t)
	userID := a.register(email).ID
	b := s.loggedIn(t, email, testPassword)
	c := s.loggedIn(t, email, testPassword)
	bHandle := b.currentHandle()
	bID := s.userIndex(t, userID)[bHandle]

	res := a.do("DELETE", "/sessions/"+bHandle, nil).want(t, 204)
	if res.Raw != "" || s.expiresCookie(res) {
		t.Fatalf("got body %q, cookie %v; want 204 without body, the caller's cookie kept", res.Raw, res.Header.Values("Set-Cookie"))
	}
	b.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	c.do("GET", "/me", nil).want(t, 200)
	a.do("GET", "/me", nil).want(t, 200)
	if n, _ := redis.Int(s.redisCmd(t, "EXISTS", s.Config.Session.KeyPrefix+bID), nil); n != 0 {
		t.Fatal("revoked session key still in Redis")
	}
	if _, ok := s.userIndex(t, userID)[bHandle]; ok {
		t.Fatal("revoked session still in the index")
	}
	if got := len(a.sessions()); got != 2 {
		t.Fatalf("got %d sessions, want 2", got)
	}
	a.do("DELETE", "/sessions/"+bHandle, nil).want(t, 404, "not_found") // already gone

	// The caller's own: gone at once, and the answer expires the cookie.
	own := a.sessionCookie().Value
	res = a.do("DELETE", "/sessions/"+a.currentHandle(), nil).want(t, 204)
	if !s.expiresCookie(res) {
		t.Fatalf("got Set-Cookie %v, want the session cookie expired", res.Header.Values("Set-Cookie"))
	}
	if s.cookieAlive(t, own) {
		t.Fatal("the caller's revoked session still authenticates")
	}
	c.do("GET", "/me", nil).want(t, 200)
	s.checkIndexConsistent(t, userID)
}

func TestDeleteSessionNotTheCallersIsNotFound(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	owner := s.newClient(t)
	owner.register(uniqueEmail("owner"))
	intruder := s.newClient(t)
	intruder.register(uniqueEmail("intruder"))
	victimHandle := owner.currentHandle()
	unknown := intruder.do("DELETE", "/sessions/AAAAAAAAAAAAAAAAAAAAAA", nil).want(t, 404, "not_found")
	others := intruder.do("DELETE", "/sessions/"+victimHandle, nil).want(t, 404, "not_found")
	if others.Raw != unknown.Raw {
		t.Fatalf("got %s for another user's session and %s for an unknown one, want the same answer", others.Raw, unknown.Raw)
	}
	owner.do("GET", "/me", nil).want(t, 200)
	for _, bad := range []string{"x", victimHandle + "A", victimHandle[:21] + "!", "%23ver", strings.Repeat("A", 300), owner.sessionCookie().Value} {
		t.Run(bad[:min(len(bad), 10)], func(t *testing.T) {
			intruder.do("DELETE", "/sessions/"+bad, nil).want(t, 404, "not_found")
			owner.do("DELETE", "/sessions/"+bad, nil).want(t, 404, "not_found")
		})
	}
	owner.do("GET", "/me", nil).want(t, 200)
	intruder.do("GET", "/me", nil).want(t, 200)
	s.newClient(t).do("DELETE", "/sessions/"+victimHandle, nil).want(t, 401, "not_authenticated")
	s.newClient(t).do("GET", "/sessions", nil).want(t, 401, "not_authenticated")
}

func TestPasswordChangeRevokesOtherSessionsAndRotatesTheCallers(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"SESSION_ABSOLUTE_TIMEOUT": "2h"})
	email := uniqueEmail("changer")
	a := s.newClient(t)
	userID := a.register(email).ID
	b := s.loggedIn(t, email, testPassword)
	other := s.newClient(t)
	other.register(uniqueEmail("bystander"))
	oldCookie := a.sessionCookie().Value
	oldHandle := a.currentHandle()
	oldCreated := parseTime(t, a.sessions()[0].CreatedAt)
	time.Sleep(1100 * time.Millisecond) // so the new lifetimes visibly start later

	const next = "a brand new passphrase 42"
	res := a.do("POST", "/password", map[string]any{"current_password": testPassword, "new_password": next}).want(t, 200)
	if res.Body["success"] != true {
		t.Fatalf("got %s, want success", res.Raw)
	}
	newCookie := s.newCookieIn(res)
	if newCookie == "" || newCookie == oldCookie || !strings.Contains(strings.Join(res.Header.Values("Set-Cookie"), ";"), "Max-Age=7200") {
		t.Fatalf("got Set-Cookie %v, want a new session cookie for the full absolute lifetime", res.Header.Values("Set-Cookie"))
	}
	if s.cookieAlive(t, oldCookie) {
		t.Fatal("the caller's old session id still authenticates")
	}
	b.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	other.do("GET", "/me", nil).want(t, 200)
	list := a.sessions()
	if len(list) != 1 || list[0].Current != true || list[0].ID == oldHandle {
		t.Fatalf("got sessions %v, want only the caller's new one", list)
	}
	if created := parseTime(t, list[0].CreatedAt); !created.After(oldCreated) {
		t.Fatalf("got created_at %v, want after the old %v: lifetimes start afresh", created, oldCreated)
	}
	if keys := s.checkIndexConsistent(t, userID); len(keys) != 1 {
		t.Fatalf("got %d session keys, want 1", len(keys))
	}
	var stored models.User
	if err := s.DB.Where("id = ?", userID).Take(&stored).Error; err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored.PasswordHash, "$argon2id$") {
		t.Fatalf("got stored hash %.12s…, want Argon2id", stored.PasswordHash)
	}
	s.newClient(t).login(email, testPassword).want(t, 401, "invalid_credentials")
	s.newClient(t).login(email, next).want(t, 200)
	a.do("GET", "/me", nil).want(t, 200)

	// Bodies are checked like every other.
	a.do("POST", "/password", map[string]any{"current_password": next}).want(t, 400, "validation_failed")
	a.do("POST", "/password", map[string]any{"current_password": next, "new_password": "short"}).want(t, 400, "validation_failed")
	a.do("POST", "/password", `{"current_password":`).want(t, 400, "invalid_json")
	s.newClient(t).do("POST", "/password", map[string]any{"current_password": next, "new_password": testPassword}).want(t, 401, "not_authenticated")
}

func TestWrongPasswordProofsCountTowardsTheLoginThrottle(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"LOGIN_MAX_FAILURES": "3", "LOGIN_FAILURE_WINDOW": "10m"})
	email := uniqueEmail("prover")
	a := s.newClient(t)
	a.register(email)
	b := s.loggedIn(t, email, testPassword)

	for i := 0; i < 2; i++ {
		a.do("POST", "/password", map[string]any{"current_password": "not my password " + strconv.Itoa(i), "new_password": "another passphrase 1"}).
			want(t, 400, "invalid_current_password")
	}
	a.do("POST", "/reauth", map[string]any{"password": "not my password 3"}).want(t, 400, "invalid_current_password")
	// A wrong proof changes nothing.
	b.do("GET", "/me", nil).want(t, 200)
	a.do("GET", "/me", nil).want(t, 200)

	res := s.newClient(t).login(email, testPassword).want(t, 429, "too_many_requests")
	if ra, err := strconv.Atoi(res.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 600 {
		t.Fatalf("got Retry-After %q, want 1..600", res.Header.Get("Retry-After"))
	}
	a.do("POST", "/reauth", map[string]any{"password": testPassword}).want(t, 429, "too_many_requests")
	a.do("POST", "/password", map[string]any{"current_password": testPassword, "new_password": "another passphrase 1"}).want(t, 429, "too_many_requests")
	b.do("GET", "/me", nil).want(t, 200)
	if !strings.Contains(s.Logs.String(), `"event":"login_failed"`) {
		t.Fatal("no login_failed security event for a wrong proof")
	}
}

// TestLogoutAllPasswordChangeAndLoginRace runs a logout-all, a password
// change and logins with the old and the new password of one user at the
// same moment, again and again, and then checks every cookie and Redis. The
// old-password logins start a few milliseconds apart so that some read the
// user row before the change commits and write their session after it.
func TestLogoutAllPasswordChangeAndLoginRace(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"LOGIN_MAX_FAILURES": "100000", "LOGIN_IP_MAX_FAILURES": "100000"})
	email := uniqueEmail("racer")
	userID := s.newClient(t).register(email).ID
	password := testPassword
	for i := 0; i < 15; i++ {
		next := fmt.Sprintf("rotated passphrase %d %s", i, randomHex(4))
		changer, outer, fresh := s.loggedIn(t, email, password), s.loggedIn(t, email, password), s.newClient(t)
		stale := []*client{s.newClient(t), s.newClient(t), s.newClient(t), s.newClient(t)}
		mustBeDead := []string{changer.sessionCookie().Value, outer.sessionCookie().Value}
		var change, logoutAll, freshLogin *response
		staleLogins := make([]*response, len(stale))
		var wg sync.WaitGroup
		wg.Go(func() {
			change = changer.do("POST", "/password", map[string]any{"current_password": password, "new_password": next})
		})
		wg.Go(func() { logoutAll = outer.do("POST", "/logout-all", nil) })
		wg.Go(func() { freshLogin = fresh.login(email, next) })
		for j, c := range stale {
			wg.Go(func() {
				time.Sleep(time.Duration(j) * 3 * time.Millisecond)
				staleLogins[j] = c.login(email, password)
			})
		}
		wg.Wait()

		changed := change.Status == 200
		for _, r := range append([]*response{change, logoutAll, freshLogin}, staleLogins...) {
			if r.Status != 200 && r.Status != 401 {
				t.Fatalf("round %d: got status %d, want 200 or 401: %s", i, r.Status, r.Raw)
			}
		}
		if !changed && (logoutAll.Status != 200 || freshLogin.Status == 200) {
			t.Fatalf("round %d: the password change answered %d; got logout-all %d and new-password login %d",
				i, change.Status, logoutAll.Status, freshLogin.Status)
		}
		var mayLive []string
		if changed {
			mayLive = append(mayLive, changer.sessionCookie().Value)
			password = next
		}
		if freshLogin.Status == 200 {
			mayLive = append(mayLive, fresh.sessionCookie().Value)
		}
		for j, r := range staleLogins {
			switch {
			case r.Status != 200:
			case changed: // a login with the old password must not outlive the change
				mustBeDead = append(mustBeDead, stale[j].sessionCookie().Value)
			default:
				mayLive = append(mayLive, stale[j].sessionCookie().Value)
			}
		}
		for _, v := range mustBeDead {
			if s.cookieAlive(t, v) {
				t.Fatalf("round %d (password %d, logout-all %d): a session that should be dead authenticates", i, change.Status, logoutAll.Status)
			}
		}
		alive := 0
		for _, v := range mayLive {
			if s.cookieAlive(t, v) {
				alive++
			}
		}
		if keys := s.checkIndexConsistent(t, userID); len(keys) != alive {
			t.Fatalf("round %d: got %d session keys in Redis, want the %d live cookies", i, len(keys), alive)
		}
		res := s.loggedIn(t, email, password).do("POST", "/logout-all", nil).want(t, 200)
		if res.Body["revoked"] != float64(alive+1) {
			t.Fatalf("round %d: got revoked %v, want %d", i, res.Body["revoked"], alive+1)
		}
	}
}
