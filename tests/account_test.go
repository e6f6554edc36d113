package tests

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionauth/api/models"
)

// TestRenameShowsInEverySessionWhileRequestsAreInFlight changes the name on
// one device while another device's requests, each of which writes its
// session (the touch interval is shorter than a request), are in flight, and
// while the account logs in elsewhere: afterwards every session shows the
// last name, and none of the in-flight writes brought an older one back.
func TestRenameShowsInEverySessionWhileRequestsAreInFlight(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"SESSION_IDLE_TIMEOUT": "1m", "SESSION_TOUCH_INTERVAL": "1ms"})
	email := uniqueEmail("renamer")
	laptop := s.newClient(t)
	laptop.register(email)
	phone := s.loggedIn(t, email, testPassword)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
					phone.do("GET", "/me", nil).want(t, 200)
				}
			}
		})
	}
	var logins []*client
	var mu sync.Mutex
	wg.Go(func() {
		for range 5 {
			c := s.loggedIn(t, email, testPassword)
			mu.Lock()
			logins = append(logins, c)
			mu.Unlock()
		}
	})
	const rounds = 15
	for i := range rounds {
		res := laptop.do("PATCH", "/me", map[string]any{"name": fmt.Sprintf("  Name %d ", i)}).want(t, 200)
		if got := res.user().Name; got != fmt.Sprintf("Name %d", i) {
			t.Fatalf("got name %q, want it trimmed", got)
		}
	}
	close(stop)
	wg.Wait()
	want := fmt.Sprintf("Name %d", rounds-1)
	for i, c := range append([]*client{laptop, phone}, logins...) {
		if got := c.do("GET", "/me", nil).want(t, 200).user().Name; got != want {
			t.Fatalf("session %d shows %q, want %q", i, got, want)
		}
	}
	if got := s.loggedIn(t, email, testPassword).do("GET", "/me", nil).want(t, 200).user().Name; got != want {
		t.Fatalf("a new login shows %q, want %q", got, want)
	}
}

func TestRenameRefusesEmptyNames(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	c := s.newClient(t)
	c.register(uniqueEmail("blank"))
	for _, name := range []string{"", "   ", strings.Repeat("n", 101), "\u200b\u200b", "Ada\u0000"} {
		if res := c.do("PATCH", "/me", map[string]any{"name": name}).want(t, 400, "validation_failed"); res.fields()["name"] == "" {
			t.Fatalf("name %q: got %s, want the name field named", name, res.Raw)
		}
	}
	c.do("PATCH", "/me", map[string]any{}).want(t, 400, "validation_failed")
	s.newClient(t).do("PATCH", "/me", map[string]any{"name": "Anon"}).want(t, 401, "not_authenticated")
}

func TestDeleteAccount(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	email := uniqueEmail("leaver")
	c := s.newClient(t)
	id := c.register(email).ID
	other := s.loggedIn(t, email, testPassword)

	c.do("DELETE", "/me", map[string]any{"password": "not the password"}).want(t, 400, "invalid_current_password")
	c.do("DELETE", "/me", map[string]any{}).want(t, 400, "validation_failed")
	res := c.do("DELETE", "/me", map[string]any{"password": testPassword}).want(t, 204)
	if !s.expiresCookie(res) {
		t.Fatalf("got Set-Cookie %v, want the cookie expired", res.Header.Values("Set-Cookie"))
	}
	c.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	other.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	s.newClient(t).login(email, testPassword).want(t, 401, "invalid_credentials")
	if n := len(s.userIndex(t, id)); n != 0 {
		t.Fatalf("got %d sessions left in the index, want none", n)
	}
	var count int64
	s.DB.Model(&models.User{}).Where("id = ?", id).Count(&count)
	if count != 0 {
		t.Fatal("the user row is still there")
	}
	// The address is free again.
	s.newClient(t).register(email)
}

func TestLastAdminCannotCloseTheAccount(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	admin, _ := s.newAdmin(t)
	admin.do("DELETE", "/me", map[string]any{"password": testPassword}).want(t, 409, "last_admin")
	admin.do("GET", "/me", nil).want(t, 200)
}

func TestAdminDeletesUsers(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"REAUTH_WINDOW": "2s"})
	admin, adminID := s.newAdmin(t)
	email, id := s.seedUser(t, "doomed", models.RoleUser, false)
	victim := s.loggedIn(t, email, testPassword)

	admin.do("DELETE", "/admin/users/"+strings.ToUpper(id), nil).want(t, 404, "not_found")
	admin.do("DELETE", "/admin/users/00000000-0000-4000-8000-000000000000", nil).want(t, 404, "not_found")
	victim.do("DELETE", "/admin/users/"+adminID, nil).want(t, 403, "forbidden")
	admin.do("DELETE", "/admin/users/"+id, nil).want(t, 204)
	victim.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	admin.do("DELETE", "/admin/users/"+id, nil).want(t, 404, "not_found")

	// The last admin cannot delete themself; with a second admin they can,
	// and their own cookie is expired.
	admin.do("DELETE", "/admin/users/"+adminID, nil).want(t, 409, "last_admin")
	_, secondID := s.seedUser(t, "second", models.RoleAdmin, false)
	res := admin.do("DELETE", "/admin/users/"+adminID, nil).want(t, 204)
	if !s.expiresCookie(res) {
		t.Fatal("an admin deleting themself kept the cookie")
	}
	if s.storedUser(t, secondID).Role != models.RoleAdmin {
		t.Fatal("the second admin changed")
	}

	// Deleting needs a recent proof, as every admin write does.
	other, _ := s.newAdmin(t)
	_, target := s.seedUser(t, "later", models.RoleUser, false)
	time.Sleep(3 * time.Second)
	other.do("DELETE", "/admin/users/"+target, nil).want(t, 403, "reauthentication_required")
}

// TestLoginWithoutRememberGivesABrowserSessionCookie: "remember": false
// makes a cookie without Max-Age or Expires, and the cookie a password change
// re-issues for that session keeps the choice.
func TestLoginWithoutRememberGivesABrowserSessionCookie(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	email := uniqueEmail("forgetful")
	s.newClient(t).register(email)
	persistent := func(res *response) bool {
		for _, set := range res.Header.Values("Set-Cookie") {
			if strings.HasPrefix(set, s.Config.Cookie.Name+"=") && !strings.Contains(set, "Max-Age=0") {
				return strings.Contains(set, "Max-Age=") || strings.Contains(set, "Expires=")
			}
		}
		t.Fatalf("no session cookie in %v", res.Header.Values("Set-Cookie"))
		return false
	}
	c := s.newClient(t)
	if persistent(c.do("POST", "/login", map[string]any{"email": email, "password": testPassword, "remember": false}).want(t, 200)) {
		t.Fatal(`"remember": false gave a persistent cookie`)
	}
	res := c.do("POST", "/password", map[string]any{"current_password": testPassword, "new_password": "a brand new passphrase 42"}).want(t, 200)
	if persistent(res) {
		t.Fatal("the cookie re-issued by a password change forgot the choice")
	}
	if !persistent(s.newClient(t).do("POST", "/login", map[string]any{"email": email, "password": "a brand new passphrase 42"}).want(t, 200)) {
		t.Fatal("a login without remember gave a browser-session cookie, want a persistent one")
	}
	s.newClient(t).do("POST", "/login", map[string]any{"email": email, "password": "x long enough", "remember": "no"}).
		want(t, 400, "validation_failed")
}

// TestEmailVerifiedInTheUserObject: a registered user starts unverified, a
// user an admin created counts as verified.
func TestEmailVerifiedInTheUserObject(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	c := s.newClient(t)
	if u := c.register(uniqueEmail("fresh")); u.EmailVerified {
		t.Fatal("a registered user starts verified")
	}
	admin, _ := s.newAdmin(t)
	created := admin.do("POST", "/admin/users", map[string]any{"email": uniqueEmail("made"), "password": testPassword,
		"name": "Made", "role": "user"}).want(t, 201).user()
	if !created.EmailVerified {
		t.Fatal("a user an admin created is not verified")
	}
}
