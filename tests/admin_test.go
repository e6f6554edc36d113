package tests

import (
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"github.com/google/uuid"

	"github.com/sessionauth/api/models"
)

func TestAdminListUsersPagesFiltersAndOrders(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	admin, adminID := s.newAdmin(t)
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	type row struct {
		id      string
		created time.Time
	}
	rows := []row{{id: adminID, created: time.Now().UTC()}}
	for i, name := range []string{"alpha", "beta", "Alpha", "gamma", "under_score", "delta"} {
		_, id := s.seedUser(t, name, models.RoleUser, false)
		created := base.Add(time.Duration([]int{3, 1, 1, 0, 2, 1}[i]) * time.Hour) // three share a time
		if err := s.DB.Model(&models.User{}).Where("id = ?", id).Update("created_at", created).Error; err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row{id, created})
	}
	slices.SortFunc(rows, func(a, b row) int {
		if c := a.created.Compare(b.created); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	want := make([]string, len(rows))
	for i, r := range rows {
		want[i] = r.id
	}
	ids := func(res *response) []string {
		var out []string
		for _, u := range decodeBody[usersBody](res).Users {
			out = append(out, u.ID)
		}
		return out
	}

	res := admin.do("GET", "/admin/users", nil).want(t, 200)
	if got := ids(res); !slices.Equal(got, want) || res.Body["total"] != float64(7) {
		t.Fatalf("got %v (total %v), want %v ordered by created_at then id (total 7)", got, res.Body["total"], want)
	}
	first := decodeBody[struct {
		Users []map[string]any `json:"users"`
	}](res).Users[0]
	var keys []string
	for k := range first {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if !slices.Equal(keys, []string{"created_at", "disabled", "email", "id", "name", "role"}) || strings.Contains(res.Raw, "argon2") {
		t.Fatalf("got user keys %v, want the contract's user object", keys)
	}
	if created := decodeBody[usersBody](res).Users[0].CreatedAt; !parseTime(t, created).Equal(base) {
		t.Fatalf("got created_at %v, want %v", created, base)
	}
	res = admin.do("GET", "/admin/users?limit=3&offset=2", nil).want(t, 200)
	if got := ids(res); !slices.Equal(got, want[2:5]) || res.Body["total"] != float64(7) {
		t.Fatalf("got page %v (total %v), want %v (total 7)", got, res.Body["total"], want[2:5])
	}
	res = admin.do("GET", "/admin/users?limit=100&offset=50", nil).want(t, 200)
	if res.Body["total"] != float64(7) || len(decodeBody[usersBody](res).Users) != 0 {
		t.Fatalf("got %s, want no users and total 7", res.Raw)
	}
	for filter, wantTotal := range map[string]int{"ALPHA": 2, "under_": 1, "_": 1, "%": 0, "example.com": 7, "nobody": 0} {
		res := admin.do("GET", "/admin/users?email="+url.QueryEscape(filter), nil).want(t, 200)
		if res.Body["total"] != float64(wantTotal) || len(decodeBody[usersBody](res).Users) != wantTotal {
			t.Fatalf("email=%s: got %s, want %d users", filter, res.Raw, wantTotal)
		}
	}
	res = admin.do("GET", "/admin/users?email=alpha&limit=1&offset=1", nil).want(t, 200)
	if res.Body["total"] != float64(2) || len(decodeBody[usersBody](res).Users) != 1 {
		t.Fatalf("got %s, want one of two alpha users", res.Raw)
	}
	for query, field := range map[string]string{"limit=0": "limit", "limit=101": "limit", "limit=ten": "limit", "offset=-1": "offset", "offset=x": "offset"} {
		res := admin.do("GET", "/admin/users?"+query, nil).want(t, 400, "validation_failed")
		if _, named := res.fields()[field]; !named {
			t.Fatalf("%s: got %s, want %s named", query, res.Raw, field)
		}
	}
	email, _ := s.seedUser(t, "plain", models.RoleUser, false)
	s.loggedIn(t, email, testPassword).do("GET", "/admin/users", nil).want(t, 403, "forbidden")
}

func TestAdminCreatesUsersWhileRegistrationIsDisabled(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"REGISTRATION_ENABLED": "false"})
	admin, adminID := s.newAdmin(t)
	s.newClient(t).do("POST", "/register", map[string]any{"email": uniqueEmail("self"), "password": testPassword, "name": "S"}).
		want(t, 403, "registration_disabled")

	email := uniqueEmail("Created")
	res := admin.do("POST", "/admin/users", map[string]any{"email": " " + strings.ToUpper(email) + " ", "password": testPassword,
		"name": "  Newcomer ", "role": "user"}).want(t, 201)
	u := res.user()
	if uuid.Validate(u.ID) != nil || u.Email != email || u.Name != "Newcomer" || u.Role != "user" || u.Disabled != false {
		t.Fatalf("got %s, want the created user, normalised", res.Raw)
	}
	parseTime(t, u.CreatedAt)
	if len(res.Header.Values("Set-Cookie")) != 0 {
		t.Fatalf("got Set-Cookie %v, want the admin's session left alone", res.Header.Values("Set-Cookie"))
	}
	if me := admin.do("GET", "/me", nil).want(t, 200).user(); me.ID != adminID {
		t.Fatalf("got /me %v, want the admin still", me)
	}
	created := s.loggedIn(t, email, testPassword)
	if me := created.do("GET", "/me", nil).want(t, 200).user(); me.Role != "user" {
		t.Fatalf("got %v, want role user", me)
	}
	created.do("POST", "/admin/users", map[string]any{"email": uniqueEmail("x"), "password": testPassword, "name": "X", "role": "admin"}).
		want(t, 403, "forbidden")

	adminEmail := uniqueEmail("second-admin")
	admin.do("POST", "/admin/users", map[string]any{"email": adminEmail, "password": testPassword, "name": "Root", "role": "admin"}).want(t, 201)
	s.loggedIn(t, adminEmail, testPassword).do("GET", "/admin/users", nil).want(t, 200)

	admin.do("POST", "/admin/users", map[string]any{"email": strings.ToUpper(email), "password": testPassword, "name": "Dup", "role": "user"}).
		want(t, 409, "email_taken")
	for name, tc := range map[string]struct {
		body  map[string]any
		field string
	}{
		"no role":         {map[string]any{"email": uniqueEmail("v"), "password": testPassword, "name": "V"}, "role"},
		"unknown role":    {map[string]any{"email": uniqueEmail("v"), "password": testPassword, "name": "V", "role": "root"}, "role"},
		"common password": {map[string]any{"email": uniqueEmail("v"), "password": "password", "name": "V", "role": "user"}, "password"},
		"short password":  {map[string]any{"email": uniqueEmail("v"), "password": "short", "name": "V", "role": "user"}, "password"},
		"no email":        {map[string]any{"password": testPassword, "name": "V", "role": "user"}, "email"},
	} {
		res := admin.do("POST", "/admin/users", tc.body).want(t, 400, "validation_failed")
		if _, named := res.fields()[tc.field]; !named {
			t.Fatalf("%s: got %s, want %s named", name, res.Raw, tc.field)
		}
	}
	if res := admin.do("GET", "/admin/users", nil).want(t, 200); res.Body["total"] != float64(3) {
		t.Fatalf("got total %v, want 3", res.Body["total"])
	}
}

func TestAdminPatchRevokesSessionsOnlyWhenRoleOrDisabledChanges(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	admin, _ := s.newAdmin(t)
	email, id := s.seedUser(t, "target", models.RoleUser, false)
	x1, x2 := s.loggedIn(t, email, testPassword), s.loggedIn(t, email, testPassword)
	path := "/admin/users/" + id

	// A PATCH that changes nothing revokes nothing.
	admin.do("PATCH", path, map[string]any{"role": "user"}).want(t, 200)
	if u := admin.do("PATCH", path, map[string]any{"role": "user", "disabled": false}).want(t, 200).user(); u.ID != id || u.Role != "user" {
		t.Fatalf("got %v, want the unchanged user", u)
	}
	x1.do("GET", "/me", nil).want(t, 200)
	x2.do("GET", "/me", nil).want(t, 200)

	res := admin.do("PATCH", path, map[string]any{"role": "admin"}).want(t, 200)
	if res.user().Role != "admin" || s.expiresCookie(res) {
		t.Fatalf("got %s, want role admin and the admin's own cookie kept", res.Raw)
	}
	x1.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	x2.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	if keys := s.checkIndexConsistent(t, id); len(keys) != 0 {
		t.Fatalf("got %d sessions left, want none", len(keys))
	}
	x3 := s.loggedIn(t, email, testPassword)
	if me := x3.do("GET", "/me", nil).want(t, 200).user(); me.Role != "admin" {
		t.Fatalf("got %v, want the new role", me)
	}

	if u := admin.do("PATCH", path, map[string]any{"disabled": true}).want(t, 200).user(); u.Disabled != true {
		t.Fatalf("got %v, want disabled", u)
	}
	x3.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	disabled := s.newClient(t).login(email, testPassword).want(t, 401, "invalid_credentials")
	if wrong := s.newClient(t).login(email, "not the password"); wrong.Raw != disabled.Raw {
		t.Fatalf("got %s for a disabled account and %s for a wrong password, want one answer", disabled.Raw, wrong.Raw)
	}
	admin.do("PATCH", path, map[string]any{"disabled": false}).want(t, 200)
	x4 := s.loggedIn(t, email, testPassword)
	admin.do("GET", "/me", nil).want(t, 200)

	for name, body := range map[string]any{"empty": `{}`, "null role": `{"role":null}`, "unknown role": `{"role":"root"}`,
		"disabled string": `{"disabled":"yes"}`, "role number": `{"role":1}`} {
		res := admin.do("PATCH", path, body).want(t, 400, "validation_failed")
		if len(res.fields()) == 0 {
			t.Fatalf("%s: got %s, want fields", name, res.Raw)
		}
	}
	admin.do("PATCH", path, `[]`).want(t, 400, "invalid_json")
	for _, bad := range []string{"not-a-uuid", "123", id + "0", uuid.NewString()} {
		admin.do("PATCH", "/admin/users/"+bad, map[string]any{"role": "user"}).want(t, 404, "not_found")
		admin.do("POST", "/admin/users/"+bad+"/logout-all", nil).want(t, 404, "not_found")
	}
	x4.do("GET", "/me", nil).want(t, 200)

	x5 := s.loggedIn(t, email, testPassword)
	res = admin.do("POST", path+"/logout-all", nil).want(t, 200)
	if res.Body["success"] != true || res.Body["revoked"] != float64(2) || s.expiresCookie(res) {
		t.Fatalf("got %s, want success and revoked 2, the admin's cookie kept", res.Raw)
	}
	x4.do("GET", "/me", nil).want(t, 401)
	x5.do("GET", "/me", nil).want(t, 401)
	if res := admin.do("POST", path+"/logout-all", nil).want(t, 200); res.Body["revoked"] != float64(0) {
		t.Fatalf("got %s, want revoked 0", res.Raw)
	}
	admin.do("GET", "/me", nil).want(t, 200)
}

func TestLastActiveAdminCannotBeRemoved(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	a, aID := s.newAdmin(t)
	b, bID := s.newAdmin(t)
	aCookie := a.sessionCookie().Value

	// Changing oneself ends one's own session; the answer expires the cookie.
	res := a.do("PATCH", "/admin/users/"+aID, map[string]any{"role": "user"}).want(t, 200)
	if res.user().Role != "user" || !s.expiresCookie(res) {
		t.Fatalf("got %s with Set-Cookie %v, want role user and the cookie expired", res.Raw, res.Header.Values("Set-Cookie"))
	}
	if s.cookieAlive(t, aCookie) {
		t.Fatal("the demoted admin's session still authenticates")
	}

	// b is the last active admin; a disabled admin does not count.
	_, dormantID := s.seedUser(t, "dormant", models.RoleAdmin, true)
	for _, body := range []map[string]any{{"role": "user"}, {"disabled": true}, {"role": "admin", "disabled": true}, {"role": "user", "disabled": false}} {
		res := b.do("PATCH", "/admin/users/"+bID, body).want(t, 409, "last_admin")
		if s.expiresCookie(res) {
			t.Fatal("a refused change expired the cookie")
		}
	}
	b.do("GET", "/me", nil).want(t, 200)
	if u := s.storedUser(t, bID); u.Role != models.RoleAdmin || u.Disabled {
		t.Fatalf("got %s disabled=%v, want the last admin unchanged", u.Role, u.Disabled)
	}
	b.do("PATCH", "/admin/users/"+bID, map[string]any{"role": "admin", "disabled": false}).want(t, 200)
	b.do("PATCH", "/admin/users/"+dormantID, map[string]any{"role": "user"}).want(t, 200)

	// With a second active admin, b may step down.
	b.do("PATCH", "/admin/users/"+aID, map[string]any{"role": "admin"}).want(t, 200)
	res = b.do("PATCH", "/admin/users/"+bID, map[string]any{"disabled": true}).want(t, 200)
	if !s.expiresCookie(res) {
		t.Fatal("disabling oneself did not expire the cookie")
	}
	b.do("GET", "/me", nil).want(t, 401)
	if s.activeAdmins(t) != 1 {
		t.Fatalf("got %d active admins, want 1", s.activeAdmins(t))
	}
	a = s.loggedIn(t, s.storedUser(t, aID).Email, testPassword)
	res = a.do("POST", "/admin/users/"+aID+"/logout-all", nil).want(t, 200)
	if res.Body["revoked"] != float64(1) || !s.expiresCookie(res) {
		t.Fatalf("got %s, want revoked 1 and the cookie expired", res.Raw)
	}
	a.do("GET", "/me", nil).want(t, 401)
}

// TestAdminsRemovingEachOtherAtOnceLeaveOneAdmin has two admins, the only
// active ones, demote or disable each other at the same moment, again and
// again: exactly one change may win.
func TestAdminsRemovingEachOtherAtOnceLeaveOneAdmin(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	bodies := []map[string]any{{"role": "user"}, {"disabled": true}, {"role": "user", "disabled": true}}
	for i := 0; i < 20; i++ {
		if err := s.DB.Model(&models.User{}).Where("role = ?", models.RoleAdmin).Update("role", models.RoleUser).Error; err != nil {
			t.Fatal(err)
		}
		a, aID := s.newAdmin(t)
		b, bID := s.newAdmin(t)
		var ra, rb *response
		var wg sync.WaitGroup
		wg.Go(func() { ra = a.do("PATCH", "/admin/users/"+bID, bodies[i%3]) })
		wg.Go(func() { rb = b.do("PATCH", "/admin/users/"+aID, bodies[(i/3)%3]) })
		wg.Wait()
		statuses := []int{ra.Status, rb.Status}
		slices.Sort(statuses)
		if statuses[0] != 200 || (statuses[1] != 401 && statuses[1] != 409) {
			t.Fatalf("round %d: got %d and %d (%s, %s), want one 200 and one 409 (or 401: its session already ended)",
				i, ra.Status, rb.Status, ra.Raw, rb.Raw)
		}
		if n := s.activeAdmins(t); n != 1 {
			t.Fatalf("round %d: got %d active admins, want 1", i, n)
		}
		winner, loser := a, b
		if rb.Status == 200 {
			winner, loser = b, a
		}
		winner.do("GET", "/me", nil).want(t, 200)
		loser.do("GET", "/me", nil).want(t, 401)
	}
}

// TestConcurrentPatchesOfOneUserKeepBothChanges sends a role change and a
// disable for the same user at the same moment: neither may undo the other.
func TestConcurrentPatchesOfOneUserKeepBothChanges(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	email, _ := s.seedUser(t, "admin", models.RoleAdmin, false)
	a1, a2 := s.loggedIn(t, email, testPassword), s.loggedIn(t, email, testPassword)
	for i := 0; i < 15; i++ {
		_, id := s.seedUser(t, "target", models.RoleUser, false)
		var r1, r2 *response
		var wg sync.WaitGroup
		wg.Go(func() { r1 = a1.do("PATCH", "/admin/users/"+id, map[string]any{"role": "admin"}) })
		wg.Go(func() { r2 = a2.do("PATCH", "/admin/users/"+id, map[string]any{"disabled": true}) })
		wg.Wait()
		r1.want(t, 200)
		r2.want(t, 200)
		if u := s.storedUser(t, id); u.Role != models.RoleAdmin || !u.Disabled {
			t.Fatalf("round %d: got role %s disabled %v, want admin and disabled: one change undid the other", i, u.Role, u.Disabled)
		}
	}
}

// TestRoleChangeOrDisableRacingLogin changes a user while they log in: a
// session made with the old row must not survive the change.
func TestRoleChangeOrDisableRacingLogin(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	admin, _ := s.newAdmin(t)
	email, id := s.seedUser(t, "mover", models.RoleUser, false)
	role := "user"
	for i := 0; i < 16; i++ {
		before := s.loggedIn(t, email, testPassword)
		during := s.newClient(t)
		body := map[string]any{"disabled": true}
		if i%2 == 1 {
			role = map[string]string{"user": "admin", "admin": "user"}[role]
			body = map[string]any{"role": role}
		}
		var patch, login *response
		var wg sync.WaitGroup
		wg.Go(func() { patch = admin.do("PATCH", "/admin/users/"+id, body) })
		wg.Go(func() { login = during.login(email, testPassword) })
		wg.Wait()
		patch.want(t, 200)
		before.do("GET", "/me", nil).want(t, 401)
		if login.Status != 200 && login.Status != 401 {
			t.Fatalf("round %d: got login %d, want 200 or 401", i, login.Status)
		}
		if login.Status == 200 {
			me := during.do("GET", "/me", nil)
			switch {
			case i%2 == 0 && me.Status != 401:
				t.Fatalf("round %d: a login racing the disable is still signed in", i)
			case i%2 == 1 && me.Status == 200 && me.user().Role != role:
				t.Fatalf("round %d: got a live session with role %v, want %s or none", i, me.user().Role, role)
			}
		}
		s.checkIndexConsistent(t, id)
		if i%2 == 0 {
			admin.do("PATCH", "/admin/users/"+id, map[string]any{"disabled": false}).want(t, 200)
		}
		admin.do("POST", "/admin/users/"+id+"/logout-all", nil).want(t, 200)
	}
}

func TestAdminChangesNeedRecentAuthentication(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"REAUTH_WINDOW": "1s"})
	email, _ := s.seedUser(t, "admin", models.RoleAdmin, false)
	otherAdminEmail, _ := s.seedUser(t, "admin2", models.RoleAdmin, false)
	_, targetID := s.seedUser(t, "target", models.RoleUser, false)
	plainEmail, _ := s.seedUser(t, "plain", models.RoleUser, false)
	plain := s.loggedIn(t, plainEmail, testPassword)
	newUser := func() map[string]any {
		return map[string]any{"email": uniqueEmail("n"), "password": testPassword, "name": "N", "role": "user"}
	}
	target := "/admin/users/" + targetID

	atSecondStart()
	admin := s.loggedIn(t, email, testPassword) // a login is a proof
	other, spare, leaving := s.loggedIn(t, email, testPassword), s.loggedIn(t, email, testPassword), s.loggedIn(t, email, testPassword)
	otherAdmin := s.loggedIn(t, otherAdminEmail, testPassword)
	admin.do("POST", "/admin/users", newUser()).want(t, 201)
	admin.do("PATCH", target, map[string]any{"disabled": false}).want(t, 200)
	time.Sleep(1200 * time.Millisecond)

	admin.do("POST", "/admin/users", newUser()).want(t, 403, "reauthentication_required")
	admin.do("POST", "/admin/users", `{"email":`).want(t, 403, "reauthentication_required") // before 400
	admin.do("PATCH", target, map[string]any{"role": "admin"}).want(t, 403, "reauthentication_required")
	admin.do("POST", target+"/logout-all", nil).want(t, 403, "reauthentication_required")
	admin.do("GET", "/admin/users", nil).want(t, 200)
	plain.do("POST", "/admin/users", newUser()).want(t, 403, "forbidden") // forbidden comes first
	admin.do("POST", "/reauth", map[string]any{"password": "not the password"}).want(t, 400, "invalid_current_password")
	admin.do("POST", "/reauth", map[string]any{}).want(t, 400, "validation_failed")
	admin.do("PATCH", target, map[string]any{"role": "admin"}).want(t, 403, "reauthentication_required")

	// Logout, logout-all and revoking one's own sessions never need it.
	admin.do("DELETE", "/sessions/"+spare.currentHandle(), nil).want(t, 204)
	spare.do("GET", "/me", nil).want(t, 401)
	leaving.do("POST", "/logout", nil).want(t, 200)
	leaving.do("GET", "/me", nil).want(t, 401)
	if res := otherAdmin.do("POST", "/logout-all", nil).want(t, 200); res.Body["revoked"] != float64(1) {
		t.Fatalf("got %s, want revoked 1", res.Raw)
	}

	atSecondStart()
	if res := admin.do("POST", "/reauth", map[string]any{"password": testPassword}).want(t, 200); res.Body["success"] != true {
		t.Fatalf("got %s, want success", res.Raw)
	}
	admin.do("PATCH", target, map[string]any{"role": "admin"}).want(t, 200)
	admin.do("POST", target+"/logout-all", nil).want(t, 200)
	admin.do("POST", "/admin/users", newUser()).want(t, 201)
	other.do("PATCH", target, map[string]any{"role": "user"}).want(t, 403, "reauthentication_required") // per session
	other.do("POST", "/password", map[string]any{"current_password": testPassword, "new_password": "fresh proof passphrase"}).want(t, 200)
	other.do("PATCH", target, map[string]any{"role": "user"}).want(t, 200) // a password change is a proof
	admin.do("GET", "/me", nil).want(t, 401)                               // and ended the other sessions
}

// TestRevocationMarkOutlivesAnIndexAboutToExpire disables a user whose index
// is about to expire (their sessions were made long ago): the mark that
// refuses sessions for logins which read the old row must outlive any login
// in flight, or such a login would sign a disabled user in.
func TestRevocationMarkOutlivesAnIndexAboutToExpire(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	admin, _ := s.newAdmin(t)
	email, id := s.seedUser(t, "fading", models.RoleUser, false)
	admin.do("PATCH", "/admin/users/"+id, map[string]any{"role": "admin"}).want(t, 200) // an earlier mark
	s.loggedIn(t, email, testPassword)
	key := s.Config.Session.KeyPrefix + "u:" + id
	s.redisCmd(t, "PEXPIRE", key, 300)
	admin.do("PATCH", "/admin/users/"+id, map[string]any{"disabled": true}).want(t, 200)
	ver, _ := redis.String(s.redisCmd(t, "HGET", key, "#ver"), nil)
	ttl, _ := redis.Int64(s.redisCmd(t, "PTTL", key), nil)
	if ver == "" || ttl < time.Minute.Milliseconds() {
		t.Fatalf("got #ver %q kept for %d ms, want it kept far longer than a login can take", ver, ttl)
	}
}
