package tests

import (
	"encoding/base64"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/sessionauth/api/models"
)

// Passkeys through the API with a software authenticator (passkey_helpers_test.go):
// adding, listing and removing them, their limits and their notices.

// TestPasskeyJourney: a user adds a passkey (ending their other sessions, as
// a first second factor does), logs in with it alone, sees it listed and
// removes it; what the options promise is what the contract says.
func TestPasskeyJourney(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	auth := newSoftAuthenticator(t)
	email := uniqueEmail("passkey")
	c := s.newClient(t)
	id := c.register(email).ID
	other := s.loggedIn(t, email, testPassword)
	if got := c.passkeys(); len(got) != 0 {
		t.Fatalf("got %v, want no passkey yet", got)
	}

	opts := beginPasskey[creationOptions](c, "/passkeys/register/begin")
	handle, _ := uuid.Parse(id)
	if opts.RP.ID != "localhost" || opts.RP.Name != "Session Auth" || opts.User.Name != email ||
		opts.User.ID != base64.RawURLEncoding.EncodeToString(handle[:]) || len(opts.Challenge) < 43 ||
		opts.AuthenticatorSelection.ResidentKey != "required" || opts.AuthenticatorSelection.UserVerification != "required" {
		t.Fatalf("got creation options %+v", opts)
	}
	before := c.sessionCookie().Value
	cred, body := auth.create(opts, flagUP|flagUV)
	res := c.do("POST", "/passkeys/register/finish", map[string]any{"name": "  Laptop ", "credential": body}).want(t, 201)
	added := decodeBody[struct {
		Passkey passkeyBody `json:"passkey"`
	}](res).Passkey
	if added.Name != "Laptop" || added.LastUsedAt != nil || added.ID == "" {
		t.Fatalf("got %+v", added)
	}
	if c.sessionCookie().Value == before {
		t.Fatal("the first passkey kept the caller's session id")
	}
	other.do("GET", "/me", nil).want(t, 401, "not_authenticated") // a first second factor ends the other sessions
	if me := c.do("GET", "/me", nil).want(t, 200).user(); me.MFA.Passkeys != 1 {
		t.Fatalf("got %+v, want one passkey", me.MFA)
	}
	if got := beginPasskey[creationOptions](c, "/passkeys/register/begin"); len(got.ExcludeCredentials) != 1 ||
		got.ExcludeCredentials[0].ID != b64.EncodeToString(cred.id) {
		t.Fatalf("got excludeCredentials %+v, want the passkey", got.ExcludeCredentials)
	}

	// A passkey alone is a full login, from a browser that holds no cookie.
	c.do("POST", "/logout", nil).want(t, 200)
	fresh := s.newClient(t)
	opts2 := beginPasskey[requestOptions](fresh, "/login/passkey/begin")
	if opts2.RPID != "localhost" || opts2.UserVerification != "required" || len(opts2.AllowCredentials) != 0 {
		t.Fatalf("got request options %+v, want a discoverable credential with user verification", opts2)
	}
	res = fresh.do("POST", "/login/passkey/finish", map[string]any{"credential": auth.get(cred, opts2.Challenge, flagUP|flagUV)}).want(t, 200)
	if res.user().ID != id || s.newCookieIn(res) == "" {
		t.Fatalf("got %s, want %s logged in with a new cookie", res.Raw, id)
	}
	fresh.do("POST", "/mfa/recovery-codes", nil).want(t, 200) // a passkey login is a recent proof
	listed := fresh.passkeys()
	if len(listed) != 1 || listed[0].ID != added.ID || listed[0].LastUsedAt == nil {
		t.Fatalf("got %+v, want the passkey, used", listed)
	}

	// A password login now needs the second step, which a passkey can complete.
	s.mfaLogin(t, email, "passkey", "recovery_code")

	// Removal: only exactly one of the caller's ids.
	someoneElse := s.newClient(t)
	someoneElse.register(uniqueEmail("else"))
	someoneElse.do("DELETE", "/passkeys/"+added.ID, nil).want(t, 404, "not_found")
	for _, bad := range []string{strings.ToUpper(added.ID), "{" + added.ID + "}", "x", uuid.NewString()} {
		fresh.do("DELETE", "/passkeys/"+bad, nil).want(t, 404, "not_found")
	}
	fresh.do("DELETE", "/passkeys/"+added.ID, nil).want(t, 204)
	fresh.do("DELETE", "/passkeys/"+added.ID, nil).want(t, 404, "not_found")
	if me := fresh.do("GET", "/me", nil).want(t, 200).user(); me.MFA.Passkeys != 0 {
		t.Fatalf("got %+v, want no passkey", me.MFA)
	}
	s.newClient(t).passkeyLogin(auth, cred).want(t, 400, "invalid_code") // a removed passkey logs nobody in
	s.loggedIn(t, email, testPassword)                                   // no second factor left: a password login again
	var codes int64
	s.DB.Model(&models.RecoveryCode{}).Where("user_id = ?", id).Count(&codes)
	if codes != 0 {
		t.Fatalf("got %d recovery codes left with no second factor, want none", codes)
	}
	for _, event := range []models.Event{models.EventPasskeyAdded, models.EventPasskeyRemoved} {
		stored := s.storedEvents(t, "user_id = ? AND event = ?", id, event)
		if len(stored) != 1 || stored[0].Details["passkey"] != added.ID {
			t.Fatalf("got %s events %+v, want one naming the passkey", event, stored)
		}
	}
	if n := s.countEvents(t, "user_id = ? AND event = ?", id, models.EventLoginSucceeded); n == 0 {
		t.Fatal("no login_succeeded stored for the passkey login")
	}
}

// TestFirstPasskeyFailsClosed: Redis refuses the revocation the first
// passkey brings; nothing is stored, and the registration can be sent again.
func TestFirstPasskeyFailsClosed(t *testing.T) {
	t.Parallel()
	s, proxy := newProxiedServer(t, env{"REDIS_TIMEOUT": "400ms"})
	auth := newSoftAuthenticator(t)
	email := uniqueEmail("closed")
	c := s.newClient(t)
	id := c.register(email).ID
	stolen := s.loggedIn(t, email, testPassword)
	opts := beginPasskey[creationOptions](c, "/passkeys/register/begin")
	_, body := auth.create(opts, flagUP|flagUV)
	proxy.on(s.Redis.Keys().UserVersion(id), proxy.cut)
	c.do("POST", "/passkeys/register/finish", map[string]any{"credential": body}).want(t, 503, "service_unavailable")
	healProxy(t, s, proxy)
	var stored int64
	s.DB.Model(&models.Passkey{}).Where("user_id = ?", id).Count(&stored)
	if stored != 0 || s.storedUser(t, id).PasskeyCount != 0 {
		t.Fatalf("got %d passkeys stored (count %d) although the revocation failed", stored, s.storedUser(t, id).PasskeyCount)
	}
	again := s.loggedIn(t, email, testPassword) // the held revocation may have ended the sessions
	again.addPasskey(auth, "Phone")
	stolen.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	if got := again.passkeys(); len(got) != 1 {
		t.Fatalf("got %v, want the one passkey", got)
	}
}

// TestSecondPasskeyEndsNoSession: only the first second factor revokes.
func TestSecondPasskeyEndsNoSession(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	auth := newSoftAuthenticator(t)
	email := uniqueEmail("second")
	c := s.newClient(t)
	c.register(email)
	_, cred := c.addPasskey(auth, "One")
	other := s.newClient(t)
	other.passkeyLogin(auth, cred).want(t, 200)
	before := c.sessionCookie().Value
	c.addPasskey(auth, "Two")
	if c.sessionCookie().Value != before {
		t.Fatal("a second passkey replaced the caller's session")
	}
	if me := other.do("GET", "/me", nil).want(t, 200).user(); me.MFA.Passkeys != 2 {
		t.Fatalf("got %+v in another live session, want 2 passkeys", me.MFA)
	}
}

// TestPasskeyInputIsRefusedCleanly: never a 500 for what a client sends.
func TestPasskeyInputIsRefusedCleanly(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	c := s.newClient(t)
	c.register(uniqueEmail("input"))
	for _, path := range []string{"/login/passkey/finish", "/passkeys/register/finish", "/reauth/passkey/finish"} {
		if got := c.do("POST", path, map[string]any{}).want(t, 400, "validation_failed").fields(); got["credential"] == "" {
			t.Errorf("%s: got fields %v, want credential named", path, got)
		}
		for _, bad := range []any{"x", nil, []any{}, 3} {
			c.do("POST", path, map[string]any{"credential": bad}).want(t, 400, "validation_failed")
		}
		for _, junk := range []map[string]any{{}, {"id": "AA", "rawId": "AA", "type": "public-key", "response": map[string]any{}},
			{"id": "!", "type": "public-key", "response": map[string]any{"clientDataJSON": "e30"}}} {
			c.do("POST", path, map[string]any{"credential": junk}).want(t, 400, "invalid_code")
		}
	}
	long := strings.Repeat("n", 101)
	got := c.do("POST", "/passkeys/register/finish", map[string]any{"name": long, "credential": map[string]any{}}).
		want(t, 400, "validation_failed").fields()
	if got["name"] == "" {
		t.Fatalf("got fields %v, want name named", got)
	}
}

// TestACredentialBelongsToOneAccount: a credential id that is registered
// already (to anyone) is refused, not a conflict of another kind.
func TestACredentialBelongsToOneAccount(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	auth := newSoftAuthenticator(t)
	first := s.newClient(t)
	first.register(uniqueEmail("first"))
	_, cred := first.addPasskey(auth, "Key")
	copycat := newSoftAuthenticator(t)
	copycat.credentialID = cred.id
	second := s.newClient(t)
	second.register(uniqueEmail("second"))
	opts := beginPasskey[creationOptions](second, "/passkeys/register/begin")
	_, body := copycat.create(opts, flagUP|flagUV)
	second.do("POST", "/passkeys/register/finish", map[string]any{"credential": body}).want(t, 400, "invalid_code")
	if got := second.passkeys(); len(got) != 0 {
		t.Fatalf("got %v, want none", got)
	}
	if me := second.do("GET", "/me", nil).want(t, 200).user(); me.MFA.Passkeys != 0 {
		t.Fatalf("got %+v, want no passkey counted", me.MFA)
	}
	s.newClient(t).passkeyLogin(auth, cred).want(t, 200) // still the first account's
}

// TestAtMostTwentyPasskeys per user, counted again when the registration finishes.
func TestAtMostTwentyPasskeys(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	auth := newSoftAuthenticator(t)
	c := s.newClient(t)
	c.register(uniqueEmail("many"))
	for i := range 19 {
		c.addPasskey(auth, "Key "+string(rune('A'+i)))
	}
	late := beginPasskey[creationOptions](c, "/passkeys/register/begin") // begun at 19
	c.addPasskey(auth, "Twentieth")
	c.do("POST", "/passkeys/register/begin", nil).want(t, 400, "validation_failed")
	_, body := auth.create(late, flagUP|flagUV)
	if got := c.do("POST", "/passkeys/register/finish", map[string]any{"credential": body}).want(t, 400, "validation_failed").fields(); got["passkeys"] == "" {
		t.Fatalf("got fields %v, want passkeys named", got)
	}
	if got := c.passkeys(); len(got) != 20 {
		t.Fatalf("got %d passkeys, want 20", len(got))
	}
}

// TestPasskeyRoutesAreAbsentWithoutAnOrigin: production with no origin at
// all: every passkey route answers 404 after the cross-origin check, and
// the start warns.
func TestPasskeyRoutesAreAbsentWithoutAnOrigin(t *testing.T) {
	t.Parallel()
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("production needs DATABASE_URL: runs against the real services (TEST_DATABASE_URL)")
	}
	s := newServer(t, env{"APP_ENV": "production", "COOKIE_SECURE": "true"})
	if !strings.Contains(s.Logs.String(), "passkeys are off") {
		t.Errorf("got no warning about passkeys at start:\n%s", s.Logs)
	}
	c := s.newClient(t)
	routes := []string{"POST /login/passkey/begin", "POST /login/passkey/finish", "GET /passkeys",
		"POST /passkeys/register/begin", "POST /passkeys/register/finish", "DELETE /passkeys/" + uuid.NewString(),
		"POST /reauth/passkey/begin", "POST /reauth/passkey/finish"}
	for _, route := range routes {
		method, path, _ := strings.Cut(route, " ")
		c.do(method, path, map[string]any{"credential": map[string]any{}}).want(t, 404, "not_found")
		if method != "GET" {
			c.do(method, path, map[string]any{}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site").
				want(t, 403, "cross_origin_rejected")
		}
	}
}

// TestPasskeyNoticesAreMailed: adding and removing a passkey each mail the
// user a notice naming it.
func TestPasskeyNoticesAreMailed(t *testing.T) {
	t.Parallel()
	s, mp := mailServer(t, env{"FRONTEND_URL": "http://localhost:5173"})
	auth := newSoftAuthenticator(t)
	email := uniqueEmail("noticed")
	c := s.newClient(t)
	c.register(email)
	added, _ := c.addPasskey(auth, "Work laptop")
	c.do("DELETE", "/passkeys/"+added.ID, nil).want(t, 204)
	mails := mp.waitForMail(t, email, 3, 10*time.Second) // the verification link, then the two notices
	var notices []string
	for _, m := range mails {
		if strings.Contains(m.Subject, "passkey") {
			notices = append(notices, m.Subject)
			if !strings.Contains(m.Text, "Work laptop") {
				t.Errorf("got notice %q without the passkey's name:\n%s", m.Subject, m.Text)
			}
		}
	}
	if !slices.Contains(notices, "A passkey was added to your account") || !slices.Contains(notices, "A passkey was removed from your account") {
		t.Fatalf("got passkey notices %q, want one for the addition and one for the removal", notices)
	}
}

// TestDeletedAccountTakesItsPasskeys: a passkey of a closed account logs
// nobody in, and its record is gone.
func TestDeletedAccountTakesItsPasskeys(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	auth := newSoftAuthenticator(t)
	c := s.newClient(t)
	id := c.register(uniqueEmail("closing")).ID
	_, cred := c.addPasskey(auth, "Key")
	c.do("DELETE", "/me", map[string]any{"password": testPassword}).want(t, 204)
	s.newClient(t).passkeyLogin(auth, cred).want(t, 400, "invalid_code")
	var left int64
	s.DB.Model(&models.Passkey{}).Where("user_id = ?", id).Count(&left)
	if left != 0 {
		t.Fatalf("got %d passkeys of the deleted account stored, want none", left)
	}
}
