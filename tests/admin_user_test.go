package tests

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessionauth/api/models"
)

// userDetailBody is GET /admin/users/:id.
type userDetailBody struct {
	User     userBody      `json:"user"`
	Sessions []sessionBody `json:"sessions"`
}

// TestAdminViewsAUserAndEndsOneOfTheirSessions: an admin sees a user with
// their live sessions (none current), ends one of them by its handle (the
// other stays; the user sees who did it in their activity), and gets 404 for
// another user's session, a malformed id or handle and an unknown user.
func TestAdminViewsAUserAndEndsOneOfTheirSessions(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	admin, adminID := s.newAdmin(t)
	email, targetID := s.seedUser(t, "target", models.RoleUser, false)
	laptop := s.loggedIn(t, email, testPassword, "User-Agent", "laptop/1.0")
	phone := s.loggedIn(t, email, testPassword, "User-Agent", "phone/2.0")
	otherEmail, otherID := s.seedUser(t, "other", models.RoleUser, false)
	other := s.loggedIn(t, otherEmail, testPassword)
	target := "/admin/users/" + targetID

	got := decodeBody[userDetailBody](admin.do("GET", target, nil).want(t, 200))
	if got.User.ID != targetID || got.User.Email != email || got.User.Role != "user" {
		t.Fatalf("got user %+v, want the target", got.User)
	}
	laptopHandle, phoneHandle := laptop.currentHandle(), phone.currentHandle()
	var sessions []string
	for i, sess := range got.Sessions {
		sessions = append(sessions, sess.ID+" "+sess.UserAgent)
		if sess.Current || sess.IP != "127.0.0.1" {
			t.Fatalf("got session %+v, want current false and the login's IP", sess)
		}
		if i > 0 && parseTime(t, sess.CreatedAt).After(parseTime(t, got.Sessions[i-1].CreatedAt)) {
			t.Fatalf("got sessions %+v, want newest first", got.Sessions)
		}
	}
	slices.Sort(sessions)
	want := []string{laptopHandle + " laptop/1.0", phoneHandle + " phone/2.0"}
	slices.Sort(want)
	if !slices.Equal(sessions, want) {
		t.Fatalf("got sessions %v, want %v", sessions, want)
	}
	own := decodeBody[userDetailBody](admin.do("GET", "/admin/users/"+adminID, nil).want(t, 200))
	if len(own.Sessions) != 1 || own.Sessions[0].Current {
		t.Fatalf("got the admin's own sessions %+v, want one, not marked current", own.Sessions)
	}

	const unknown = "00000000-0000-4000-8000-000000000000"
	for _, id := range []string{strings.ToUpper(targetID), "urn:uuid:" + targetID, "%7B" + targetID + "%7D", "nope", unknown} {
		admin.do("GET", "/admin/users/"+id, nil).want(t, 404, "not_found")
		admin.do("DELETE", "/admin/users/"+id+"/sessions/"+laptopHandle, nil).want(t, 404, "not_found")
	}
	for _, sid := range []string{other.currentHandle(), "nope", laptopHandle + "x", strings.ToUpper(laptopHandle)} {
		admin.do("DELETE", target+"/sessions/"+sid, nil).want(t, 404, "not_found")
	}
	admin.do("DELETE", "/admin/users/"+otherID+"/sessions/"+laptopHandle, nil).want(t, 404, "not_found")
	laptop.do("GET", "/me", nil).want(t, 200)
	other.do("GET", "/me", nil).want(t, 200)

	res := admin.do("DELETE", target+"/sessions/"+laptopHandle, nil).want(t, 204)
	if s.expiresCookie(res) {
		t.Fatal("got the admin's cookie expired, want it left alone")
	}
	laptop.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	phone.do("GET", "/me", nil).want(t, 200)
	admin.do("DELETE", target+"/sessions/"+laptopHandle, nil).want(t, 404, "not_found")
	if after := decodeBody[userDetailBody](admin.do("GET", target, nil).want(t, 200)).Sessions; len(after) != 1 || after[0].ID != phoneHandle {
		t.Fatalf("got sessions %+v, want the phone's only", after)
	}

	revoked := admin.auditPage("/admin/audit", url.Values{"user_id": {targetID}, "event": {"session_revoked"}}).Events
	if len(revoked) != 1 || revoked[0].Details["session"] != laptopHandle {
		t.Fatalf("got %+v, want one session_revoked naming the laptop's session", revoked)
	}
	wantEvent(t, revoked[0], "session_revoked", adminID, targetID)
	if seen := phone.auditPage("/me/activity", nil).Events; seen[0].Event != "session_revoked" || str(seen[0].ActorID) != adminID {
		t.Fatalf("got the user's activity %v, want the admin's revocation first", eventNames(seen))
	}

	// An admin ending their own session through this route is logged out.
	res = admin.do("DELETE", "/admin/users/"+adminID+"/sessions/"+admin.currentHandle(), nil).want(t, 204)
	if !s.expiresCookie(res) {
		t.Fatal("got no expired cookie, want the admin's own session ended")
	}
	admin.do("GET", "/me", nil).want(t, 401)
}

// TestAdminUserRoutesNeedTheRoleAndARecentProof: 401 without a session, 403
// forbidden for a user, and the DELETE needs a proof within REAUTH_WINDOW
// (the GET does not).
func TestAdminUserRoutesNeedTheRoleAndARecentProof(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"REAUTH_WINDOW": "1s"})
	adminEmail, _ := s.seedUser(t, "admin", models.RoleAdmin, false)
	email, targetID := s.seedUser(t, "target", models.RoleUser, false)
	target := s.loggedIn(t, email, testPassword)
	handle := target.currentHandle()
	path := "/admin/users/" + targetID

	anonymous := s.newClient(t)
	anonymous.do("GET", path, nil).want(t, 401, "not_authenticated")
	anonymous.do("DELETE", path+"/sessions/"+handle, nil).want(t, 401, "not_authenticated")
	target.do("GET", path, nil).want(t, 403, "forbidden")
	target.do("DELETE", path+"/sessions/"+handle, nil).want(t, 403, "forbidden")

	admin := s.loggedIn(t, adminEmail, testPassword)
	time.Sleep(2100 * time.Millisecond)
	admin.do("GET", path, nil).want(t, 200)
	admin.do("DELETE", path+"/sessions/"+handle, nil).want(t, 403, "reauthentication_required")
	admin.do("DELETE", path+"/sessions/nope", nil).want(t, 403, "reauthentication_required") // before 404
	target.do("GET", "/me", nil).want(t, 200)
	atSecondStart()
	admin.do("POST", "/reauth", map[string]any{"password": testPassword}).want(t, 200)
	admin.do("DELETE", path+"/sessions/"+handle, nil).want(t, 204)
	target.do("GET", "/me", nil).want(t, 401)
}
