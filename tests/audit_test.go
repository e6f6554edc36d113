package tests

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessionauth/api/models"
)

// TestActivityShowsTheCallersOwnEvents walks one user through the account's
// security events, with another user beside them, and reads them back from
// GET /me/activity: newest first, with actor, user, IP, user agent and
// details, the failed login by someone who typed their email included, and
// nothing of the other user's (nor the other user anything of theirs).
func TestActivityShowsTheCallersOwnEvents(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	email := uniqueEmail("owner")
	owner := s.newClient(t)
	id := owner.register(email).ID
	other, otherEmail := s.newClient(t), uniqueEmail("other")
	otherID := other.register(otherEmail).ID

	s.newClient(t).login(email, "not the password at all").want(t, 401)
	s.newClient(t).login(uniqueEmail("nobody"), testPassword).want(t, 401)
	const ua = "audit-test/1.0 (second device)"
	second := s.loggedIn(t, email, testPassword, "User-Agent", ua)
	secondHandle := second.currentHandle()
	owner.do("DELETE", "/sessions/"+secondHandle, nil).want(t, 204)
	owner.do("POST", "/reauth", map[string]any{"password": "not the password either"}).want(t, 400, "invalid_current_password")
	owner.do("POST", "/reauth", map[string]any{"password": testPassword}).want(t, 200)
	newPassword := testPassword + " renewed"
	owner.do("POST", "/password", map[string]any{"current_password": testPassword, "new_password": newPassword}).want(t, 200)
	other.do("POST", "/logout", nil).want(t, 200)
	owner.do("POST", "/logout-all", nil).want(t, 200)
	reader := s.loggedIn(t, email, newPassword, "User-Agent", "odd\xffagent "+strings.Repeat("ü", 200))

	events := reader.auditPage("/me/activity", nil).Events
	want := []string{"login_succeeded", "logout_all", "password_changed", "reauthenticated", "login_failed",
		"session_revoked", "login_succeeded", "login_failed", "user_registered"}
	if got := eventNames(events); !slices.Equal(got, want) {
		t.Fatalf("got events %v, want %v", got, want)
	}
	for i, e := range events {
		actor := id
		if i == 7 { // the failed login: nobody was logged in
			actor = ""
		}
		wantEvent(t, e, want[i], actor, id)
	}
	if events[6].UserAgent != ua || events[6].Details["session"] != secondHandle {
		t.Fatalf("got login %+v, want user agent %q and session %s", events[6], ua, secondHandle)
	}
	if events[5].Details["session"] != secondHandle {
		t.Fatalf("got revocation %+v, want session %s", events[5], secondHandle)
	}
	if events[1].Details["revoked"] != float64(1) {
		t.Fatalf("got logout_all %+v, want revoked 1", events[1])
	}
	if wantUA := "odd\uFFFDagent " + strings.Repeat("ü", 122); events[0].UserAgent != wantUA { // 256 bytes
		t.Fatalf("got user agent %q, want it as valid UTF-8 cut to 256 bytes", events[0].UserAgent)
	}
	if reader.currentHandle() != events[0].Details["session"] {
		t.Fatalf("got login details %v, want the session it made", events[0].Details)
	}

	otherClient := s.loggedIn(t, otherEmail, testPassword)
	for _, e := range otherClient.allEvents("/me/activity", nil, 2) {
		if str(e.UserID) != otherID {
			t.Fatalf("got %+v in the other user's activity, want only their own", e)
		}
	}
	if got := eventNames(otherClient.auditPage("/me/activity", nil).Events); !slices.Equal(got, []string{"login_succeeded", "logout", "user_registered"}) {
		t.Fatalf("got the other user's events %v", got)
	}
	if n := s.countEvents(t, "event = ? AND user_id IS NULL AND actor_id IS NULL", models.EventLoginFailed); n != 1 {
		t.Fatalf("got %d failed logins without a user, want the unknown email's one", n)
	}
}

// TestAdminAuditFiltersPagesAndRefusesBadParameters reads the audit log as an
// admin: admin changes carry the admin as actor and the target as user; a
// login refused for a disabled account is on that account; filters combine;
// pages follow next_before to null; bad parameters are validation_failed
// naming each; only admins may read it.
func TestAdminAuditFiltersPagesAndRefusesBadParameters(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	admin, adminID := s.newAdmin(t)
	email := uniqueEmail("target")
	created := admin.do("POST", "/admin/users", map[string]any{"email": email, "password": testPassword, "name": "T", "role": "user"}).want(t, 201).user()
	target := "/admin/users/" + created.ID
	s.loggedIn(t, email, testPassword)
	admin.do("PATCH", target, map[string]any{"role": "admin"}).want(t, 200)
	admin.do("PATCH", target, map[string]any{"disabled": true}).want(t, 200)
	s.newClient(t).login(email, testPassword).want(t, 401, "invalid_credentials")
	admin.do("PATCH", target, map[string]any{"disabled": false, "role": "user"}).want(t, 200)
	s.loggedIn(t, email, testPassword)
	admin.do("POST", target+"/logout-all", nil).want(t, 200)

	byUser := url.Values{"user_id": {created.ID}}
	events := admin.auditPage("/admin/audit", byUser).Events
	want := []struct{ event, actor string }{{"logout_all", adminID}, {"login_succeeded", created.ID},
		{"user_enabled", adminID}, {"role_changed", adminID}, {"login_failed", ""}, {"user_disabled", adminID},
		{"role_changed", adminID}, {"login_succeeded", created.ID}, {"user_created", adminID}}
	if len(events) != len(want) {
		t.Fatalf("got %v, want %d events", eventNames(events), len(want))
	}
	for i, w := range want {
		wantEvent(t, events[i], w.event, w.actor, created.ID)
	}
	if events[0].Details["revoked"] != float64(1) || events[5].Details["disabled"] != true || events[6].Details["role"] != "admin" {
		t.Fatalf("got details %v, %v, %v", events[0].Details, events[5].Details, events[6].Details)
	}
	if paged := admin.allEvents("/admin/audit", byUser, 2); !slices.EqualFunc(paged, events, func(a, b auditEventBody) bool { return a.ID == b.ID }) {
		t.Fatalf("got pages %v, want the one page's events %v", eventNames(paged), eventNames(events))
	}
	roleChanges := admin.allEvents("/admin/audit", url.Values{"event": {"role_changed"}}, 1)
	if len(roleChanges) != 2 || eventNames(roleChanges)[0] != "role_changed" || eventNames(roleChanges)[1] != "role_changed" {
		t.Fatalf("got %v, want the two role changes", eventNames(roleChanges))
	}
	if got := admin.auditPage("/admin/audit", url.Values{"user_id": {created.ID}, "event": {"login_failed"}}).Events; len(got) != 1 {
		t.Fatalf("got %v, want the one failed login of the user", eventNames(got))
	}
	if got := admin.auditPage("/admin/audit", url.Values{"user_id": {"00000000-0000-4000-8000-000000000000"}}); len(got.Events) != 0 || got.NextBefore != nil {
		t.Fatalf("got %+v, want an empty last page", got)
	}
	all := admin.auditPage("/admin/audit", nil)
	if len(all.Events) < 10 || all.NextBefore != nil {
		t.Fatalf("got %d events (next %v), want every event on one page", len(all.Events), str(all.NextBefore))
	}
	admin.do("GET", "/admin/audit?user_id=&event=&limit=&before=", nil).want(t, 200) // empty is absent

	for query, fields := range map[string][]string{
		"limit=0": {"limit"}, "limit=101": {"limit"}, "limit=ten": {"limit"}, "limit=-1": {"limit"},
		"before=garbage": {"before"}, "before=AAAA": {"before"}, "before=" + strings.Repeat("_", 32): {"before"},
		"user_id=" + strings.ToUpper(created.ID): {"user_id"}, "user_id=urn:uuid:" + created.ID: {"user_id"},
		"user_id=%7B" + created.ID + "%7D": {"user_id"}, "user_id=nope": {"user_id"},
		"event=nope": {"event"}, "event=LOGIN_FAILED": {"event"}, "event=login_failed%07": {"event"},
		"limit=0&before=x&user_id=x&event=x": {"limit", "before", "user_id", "event"},
	} {
		got := admin.do("GET", "/admin/audit?"+query, nil).want(t, 400, "validation_failed").fields()
		for _, f := range fields {
			if _, ok := got[f]; !ok || len(got) != len(fields) {
				t.Fatalf("%s: got fields %v, want %v", query, got, fields)
			}
		}
	}
	for _, query := range []string{"limit=0", "limit=101", "before=nope"} {
		admin.do("GET", "/me/activity?"+query, nil).want(t, 400, "validation_failed")
	}
	plain, _ := s.seedUser(t, "plain", models.RoleUser, false)
	s.loggedIn(t, plain, testPassword).do("GET", "/admin/audit", nil).want(t, 403, "forbidden")
	s.newClient(t).do("GET", "/admin/audit", nil).want(t, 401, "not_authenticated")
	s.newClient(t).do("GET", "/me/activity", nil).want(t, 401, "not_authenticated")
}

// TestAuditStoresNoSecrets runs a journey with distinct passwords, then
// searches every stored column for the passwords typed (right and wrong),
// the unknown email typed, every cookie value and every raw session id.
func TestAuditStoresNoSecrets(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	admin, _ := s.newAdmin(t)
	secret := func(what string) string { return what + " " + randomHex(8) }
	first, wrong, next, created, nobodyPassword := secret("first"), secret("wrong"), secret("next"), secret("made"), secret("nobody's")
	nobody := uniqueEmail("typed-but-unknown")
	email := uniqueEmail("secretive")

	c := s.newClient(t)
	userID := c.do("POST", "/register", map[string]any{"email": email, "password": first, "name": "S"}).want(t, 201).user().ID
	devices := []*client{c, s.loggedIn(t, email, first), s.loggedIn(t, email, first)}
	cookies, sessionIDs := []string{}, s.sessionIDs(t, userID)
	for _, d := range devices {
		cookies = append(cookies, d.sessionCookie().Value)
	}
	s.newClient(t).login(email, wrong).want(t, 401)
	s.newClient(t).login(nobody, nobodyPassword).want(t, 401)
	c.do("POST", "/reauth", map[string]any{"password": wrong}).want(t, 400)
	c.do("DELETE", "/sessions/"+devices[1].currentHandle(), nil).want(t, 204)
	c.do("POST", "/password", map[string]any{"current_password": first, "new_password": next}).want(t, 200)
	cookies = append(cookies, c.sessionCookie().Value)
	sessionIDs = append(sessionIDs, s.sessionIDs(t, userID)...)
	c.do("POST", "/logout-all", nil).want(t, 200)
	madeEmail := uniqueEmail("made")
	admin.do("POST", "/admin/users", map[string]any{"email": madeEmail, "password": created, "name": "M", "role": "user"}).want(t, 201)
	made := s.loggedIn(t, madeEmail, created)
	cookies = append(cookies, made.sessionCookie().Value, admin.sessionCookie().Value)
	made.do("POST", "/logout", nil).want(t, 200)

	text := s.auditTableText(t)
	if n := strings.Count(text, "\n"); n < 12 {
		t.Fatalf("got %d stored events, want the journey's (at least 12):\n%s", n, text)
	}
	wantNoneOf(t, text, "password", []string{first, wrong, next, created, nobodyPassword, testPassword})
	wantNoneOf(t, text, "typed unknown email", []string{nobody})
	wantNoneOf(t, text, "cookie value", cookies)
	wantNoneOf(t, text, "session id", sessionIDs)
	if len(sessionIDs) < 4 || len(cookies) < 6 {
		t.Fatalf("got %d session ids and %d cookies, want the journey's", len(sessionIDs), len(cookies))
	}
}

// TestThrottledBurstStoresOneEventPerRun sends 1,000 throttled logins for one
// email, and then a run refused by the per-IP counter over many emails: each
// run is stored once (on the account for the email run, on nobody for the IP
// run), while every refusal is still logged.
func TestThrottledBurstStoresOneEventPerRun(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"LOGIN_MAX_FAILURES": "2", "LOGIN_IP_MAX_FAILURES": "3", "TRUSTED_PROXIES": "127.0.0.1"})
	email, userID := s.seedUser(t, "hammered", models.RoleUser, false)
	from := func(ip string) []string { return []string{"X-Forwarded-For", ip} }
	for range 2 {
		s.newClient(t).do("POST", "/login", map[string]any{"email": email, "password": "a wrong password"}, from("203.0.113.1")...).want(t, 401)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	statuses := map[int]int{}
	for w := range 20 {
		wg.Go(func() {
			c := s.newClient(t)
			for range 50 {
				// each from its own address, so only the email's counter refuses
				res := c.do("POST", "/login", credentials(email), from("198.51.100."+strconv.Itoa(w+1))...)
				mu.Lock()
				statuses[res.Status]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if statuses[429] != 1000 {
		t.Fatalf("got statuses %v, want 1000 × 429", statuses)
	}
	stored := s.storedEvents(t, "event = ?", models.EventLoginThrottled)
	if len(stored) != 1 || str(stored[0].UserID) != userID || stored[0].ActorID != nil || stored[0].Details["counter"] != "login:email" {
		t.Fatalf("got %d login_throttled rows (%+v), want one on the account by the email counter", len(stored), stored)
	}
	if n := strings.Count(s.Logs.String(), `"event":"login_throttled"`); n < 1000 {
		t.Fatalf("got %d login_throttled log lines, want every refusal logged (1000)", n)
	}

	for i := range 3 {
		s.newClient(t).do("POST", "/login", credentials(uniqueEmail("guess"+strconv.Itoa(i))), from("203.0.113.9")...).want(t, 401)
	}
	for i := range 100 {
		s.newClient(t).do("POST", "/login", credentials(uniqueEmail("spray"+strconv.Itoa(i))), from("203.0.113.9")...).want(t, 429)
	}
	byIP := s.storedEvents(t, "event = ? AND user_id IS NULL", models.EventLoginThrottled)
	if len(byIP) != 1 || byIP[0].Details["counter"] != "login:ip" || byIP[0].IP != "203.0.113.9" {
		t.Fatalf("got %+v, want one login_throttled by the IP counter, on no account", byIP)
	}
}

// TestLogoutWithTheDatabaseDownAnswersAndLogsTheEvent takes PostgreSQL down:
// logout, logout-all and revoking a session still answer (the audit write
// fails, is logged and the request goes on), and each event is in the log.
func TestLogoutWithTheDatabaseDownAnswersAndLogsTheEvent(t *testing.T) {
	t.Parallel()
	pg := newPGCluster(t)
	pg.start()
	const timeout = 500 * time.Millisecond
	s := newServer(t, env{"DATABASE_TIMEOUT": timeout.String(), "DATABASE_URL": pg.url()})
	email := uniqueEmail("leaving")
	c := s.newClient(t)
	c.register(email)
	spare, other, gone := s.loggedIn(t, email, testPassword), s.loggedIn(t, email, testPassword), s.loggedIn(t, email, testPassword)
	goneHandle := gone.currentHandle()

	pg.kill()
	answers := doAll([]call{{spare, "POST", "/logout", nil}, {c, "DELETE", "/sessions/" + goneHandle, nil}})
	for i, wantStatus := range []int{200, 204} {
		if a := answers[i]; a.res.Status != wantStatus || a.elapsed > outageBound(timeout) {
			t.Fatalf("%s %s: got %d after %v, want %d within %v", a.method, a.path, a.res.Status, a.elapsed, wantStatus, outageBound(timeout))
		}
	}
	other.do("POST", "/logout-all", nil).want(t, 200)
	c.do("GET", "/me", nil).want(t, 401)
	logs := s.Logs.String()
	for _, event := range []string{"logout", "session_revoked", "logout_all"} {
		if !strings.Contains(logs, `"event":"`+event+`"`) {
			t.Errorf("no %s event in the log", event)
		}
	}
	if n := strings.Count(logs, `"msg":"audit event not stored"`); n != 3 {
		t.Fatalf("got %d 'audit event not stored' lines, want 3", n)
	}
}

// TestEventNamesAreOneClosedSet holds the declared event names, the
// document's enum and the contract's list to each other: no name twice, each
// valid, the same set in api/openapi.yaml, and nothing else valid.
func TestEventNamesAreOneClosedSet(t *testing.T) {
	t.Parallel()
	spec := mustLoadOpenAPI(t)
	var declared []string
	for _, e := range models.Events() {
		if !e.Valid() {
			t.Errorf("%s is declared but not valid", e)
		}
		declared = append(declared, string(e))
	}
	var documented []string
	for _, v := range spec.doc.Components.Schemas["AuditEventName"].Value.Enum {
		documented = append(documented, v.(string))
	}
	sorted := slices.Sorted(slices.Values(declared))
	if !slices.Equal(sorted, slices.Compact(slices.Clone(sorted))) || !slices.Equal(declared, documented) {
		t.Fatalf("got declared %v, documented %v: want one list, each name once", declared, documented)
	}
	for _, bad := range []string{"", "LOGIN_FAILED", "login_failed ", "user_disabled_changed"} {
		if models.Event(bad).Valid() {
			t.Errorf("%q is valid, want refused", bad)
		}
	}
}
