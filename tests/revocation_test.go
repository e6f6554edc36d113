package tests

import (
	"testing"
	"time"

	"github.com/sessionauth/api/models"
)

// A change that must end a user's sessions fails closed: when Redis cannot
// confirm the revocation, the answer is 503 and nothing is stored, so a
// stolen session never outlives a stored disable, role change or password
// change; when the database fails after the revocation, nobody is locked out.

// redisFaults are the ways Redis fails in the middle of a request: the
// revocation's command is held (a paused or frozen Redis) or every
// connection is refused from that command on.
var redisFaults = []struct {
	name  string
	fault func(*faultProxy)
}{
	{"paused", (*faultProxy).freeze},
	{"refused", (*faultProxy).cut},
}

// healProxy ends a fault and waits until the server is ready again.
func healProxy(t *testing.T, s *testServer, proxy *faultProxy) {
	t.Helper()
	proxy.thaw()
	proxy.mend()
	eventuallyReady(t, s.newClient(t), 5*time.Second)
}

func TestAdminChangeFailsClosedWhenRedisCannotRevoke(t *testing.T) {
	t.Parallel()
	for _, tc := range redisFaults {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, proxy := newProxiedServer(t, env{"REDIS_TIMEOUT": "400ms"})
			admin, _ := s.newAdmin(t)
			email, id := s.seedUser(t, "target", models.RoleUser, false)
			stolen := s.loggedIn(t, email, testPassword)

			// The fault strikes at the revocation, after every read of the request.
			proxy.on(s.Redis.Keys().UserVersion(id), func() { tc.fault(proxy) })
			admin.do("PATCH", "/admin/users/"+id, map[string]any{"disabled": true}).want(t, 503, "service_unavailable")
			if s.storedUser(t, id).Disabled {
				t.Fatal("the disable was stored although its revocation failed")
			}
			healProxy(t, s, proxy)
			// Whatever became of the held revocation, the change was not
			// stored; sending it again stores it and ends the sessions.
			admin.do("PATCH", "/admin/users/"+id, map[string]any{"disabled": true}).want(t, 200)
			stolen.do("GET", "/me", nil).want(t, 401, "not_authenticated")
			s.newClient(t).login(email, testPassword).want(t, 401, "invalid_credentials")
		})
	}
}

func TestPasswordChangeFailsClosedWhenRedisCannotRevoke(t *testing.T) {
	t.Parallel()
	for _, tc := range redisFaults {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, proxy := newProxiedServer(t, env{"REDIS_TIMEOUT": "400ms"})
			owner := s.newClient(t)
			email := uniqueEmail("owner")
			id := owner.register(email).ID
			stolen := s.loggedIn(t, email, testPassword)
			const next = "a brand new passphrase 42"

			proxy.on(s.Redis.Keys().UserVersion(id), func() { tc.fault(proxy) })
			owner.do("POST", "/password", map[string]any{"current_password": testPassword, "new_password": next}).
				want(t, 503, "service_unavailable")
			healProxy(t, s, proxy)
			// The new password was not stored: the old one still logs in
			// (the held revocation may have ended the sessions meanwhile).
			s.newClient(t).login(email, next).want(t, 401, "invalid_credentials")
			again := s.loggedIn(t, email, testPassword)
			again.do("POST", "/password", map[string]any{"current_password": testPassword, "new_password": next}).want(t, 200)
			stolen.do("GET", "/me", nil).want(t, 401, "not_authenticated")
			again.do("GET", "/me", nil).want(t, 200)
		})
	}
}

// TestCommitFailingAfterTheRevocationLocksNobodyOut takes PostgreSQL down
// between the revocation and the commit: the change is not stored, its
// sessions are gone, and the user logs in again (the login moves the row
// past the revocation mark) instead of being refused forever.
func TestCommitFailingAfterTheRevocationLocksNobodyOut(t *testing.T) {
	t.Parallel()
	pg := newPGCluster(t)
	pg.start()
	s, proxy := newProxiedServer(t, env{"DATABASE_URL": pg.url(), "DATABASE_TIMEOUT": "1s", "REDIS_TIMEOUT": "1s"})
	admin, _ := s.newAdmin(t)
	email, id := s.seedUser(t, "target", models.RoleUser, false)
	target := s.loggedIn(t, email, testPassword)

	proxy.on(s.Redis.Keys().UserVersion(id), pg.kill)
	admin.do("PATCH", "/admin/users/"+id, map[string]any{"role": "admin"}).want(t, 503, "service_unavailable")
	pg.start()
	eventuallyReady(t, s.newClient(t), 10*time.Second)
	target.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	if got := s.storedUser(t, id).Role; got != models.RoleUser {
		t.Fatalf("got role %s stored, want the change rolled back", got)
	}
	back := s.loggedIn(t, email, testPassword)
	if me := back.do("GET", "/me", nil).want(t, 200).user(); me.Role != "user" {
		t.Fatalf("got %v, want the stored role", me)
	}
	s.loggedIn(t, email, testPassword).do("GET", "/me", nil).want(t, 200)

	// The same for a password change: the old password logs in again.
	const next = "a brand new passphrase 42"
	proxy.on(s.Redis.Keys().UserVersion(id), pg.kill)
	back.do("POST", "/password", map[string]any{"current_password": testPassword, "new_password": next}).
		want(t, 503, "service_unavailable")
	pg.start()
	eventuallyReady(t, s.newClient(t), 10*time.Second)
	back.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	s.newClient(t).login(email, next).want(t, 401, "invalid_credentials")
	s.loggedIn(t, email, testPassword).do("GET", "/me", nil).want(t, 200)
}
