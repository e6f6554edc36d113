package tests

import (
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/sessionauth/api/models"
)

// Passkey logins, second steps and proofs, and the ways an attacker or a
// broken authenticator gets them refused.

// TestPasskeyReauth: with passkeys and no TOTP, a password alone proves
// nothing recent; a passkey assertion alone does, only the user's own.
func TestPasskeyReauth(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"REAUTH_WINDOW": "2s"})
	auth := newSoftAuthenticator(t)
	c := s.newClient(t)
	c.register(uniqueEmail("proof"))
	c.do("POST", "/reauth/passkey/begin", nil).want(t, 400, "validation_failed") // no passkey yet
	_, cred := c.addPasskey(auth, "Laptop")
	intruder := s.newClient(t)
	intruder.register(uniqueEmail("intruder"))
	_, intruderCred := intruder.addPasskey(auth, "Theirs")

	time.Sleep(3 * time.Second)
	c.do("POST", "/passkeys/register/begin", nil).want(t, 403, "reauthentication_required")
	c.do("POST", "/reauth", map[string]any{"password": testPassword}).want(t, 400, "invalid_code")

	opts := beginPasskey[requestOptions](c, "/reauth/passkey/begin")
	if len(opts.AllowCredentials) != 1 || opts.AllowCredentials[0].ID != b64.EncodeToString(cred.id) || opts.UserVerification != "required" {
		t.Fatalf("got %+v, want the user's passkey and user verification", opts)
	}
	c.do("POST", "/reauth/passkey/finish", map[string]any{"credential": auth.get(intruderCred, opts.Challenge, flagUP|flagUV)}).
		want(t, 400, "invalid_code")
	c.do("POST", "/passkeys/register/begin", nil).want(t, 403, "reauthentication_required")
	opts = beginPasskey[requestOptions](c, "/reauth/passkey/begin")
	c.do("POST", "/reauth/passkey/finish", map[string]any{"credential": auth.get(cred, opts.Challenge, flagUP|flagUV)}).want(t, 200)
	c.do("POST", "/passkeys/register/begin", nil).want(t, 200)

	// A proof challenge is the user's own: another session cannot finish it.
	opts = beginPasskey[requestOptions](c, "/reauth/passkey/begin")
	intruder.do("POST", "/reauth/passkey/finish", map[string]any{"credential": auth.get(intruderCred, opts.Challenge, flagUP|flagUV)}).
		want(t, 400, "invalid_code")
}

// TestPasskeyCompletesThePendingSecondStep: at a pending session only a
// credential of that session's user completes the login; another user's
// answers invalid_code and logs nobody in.
func TestPasskeyCompletesThePendingSecondStep(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	auth := newSoftAuthenticator(t)
	email := uniqueEmail("both")
	owner := s.newClient(t)
	id := owner.register(email).ID
	owner.enrolTOTP()
	_, cred := owner.addPasskey(auth, "Laptop")
	other := s.newClient(t)
	otherID := other.register(uniqueEmail("other")).ID
	_, otherCred := other.addPasskey(auth, "Theirs")

	pending := s.mfaLogin(t, email, "totp", "passkey", "recovery_code")
	pendingCookie := pending.sessionCookie().Value
	otherSessions := len(s.userIndex(t, otherID))
	pending.passkeyLogin(auth, otherCred).want(t, 400, "invalid_code")
	if pending.sessionCookie().Value != pendingCookie {
		t.Fatal("another user's passkey changed the pending session")
	}
	pending.do("GET", "/me", nil).want(t, 401, "mfa_required")
	if n := len(s.userIndex(t, otherID)); n != otherSessions {
		t.Fatalf("got %d sessions of the credential's owner, want %d: another user's passkey logged them in", n, otherSessions)
	}

	res := pending.passkeyLogin(auth, cred).want(t, 200)
	if res.user().ID != id || s.newCookieIn(res) == pendingCookie {
		t.Fatalf("got %s, want the pending user logged in with a new session", res.Raw)
	}
	pending.do("GET", "/sessions", nil).want(t, 200)
	wantStoredEvent(t, s, id, models.EventMFAUsed)

	// Without a pending session a passkey is a full login on its own, second factor or not.
	s.newClient(t).passkeyLogin(auth, cred).want(t, 200)
}

// TestPasskeyChallengeIsUsedOnce: a challenge lives 5 minutes in Redis under
// its own key and finishes one ceremony, of its own kind.
func TestPasskeyChallengeIsUsedOnce(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	auth := newSoftAuthenticator(t)
	c := s.newClient(t)
	c.register(uniqueEmail("replay"))
	_, cred := c.addPasskey(auth, "Laptop")

	opts := beginPasskey[requestOptions](s.newClient(t), "/login/passkey/begin")
	key := s.Redis.Keys().PasskeyChallenge(opts.Challenge)
	if ttl, _ := redis.Int64(s.redisCmd(t, "PTTL", key), nil); ttl <= 0 || ttl > 5*60*1000 {
		t.Fatalf("got challenge TTL %d ms, want at most 5 minutes", ttl)
	}
	assertion := auth.get(cred, opts.Challenge, flagUP|flagUV)
	s.newClient(t).do("POST", "/login/passkey/finish", map[string]any{"credential": assertion}).want(t, 200)
	if n, _ := redis.Int(s.redisCmd(t, "EXISTS", key), nil); n != 0 {
		t.Fatal("the challenge is still in Redis after its finish")
	}
	s.newClient(t).do("POST", "/login/passkey/finish", map[string]any{"credential": assertion}).want(t, 400, "invalid_code")

	// A challenge nobody began, and one begun for another ceremony.
	s.newClient(t).do("POST", "/login/passkey/finish", map[string]any{"credential": auth.get(cred, b64.EncodeToString(randomBytes(32)), flagUP|flagUV)}).
		want(t, 400, "invalid_code")
	proof := beginPasskey[requestOptions](c, "/reauth/passkey/begin")
	s.newClient(t).do("POST", "/login/passkey/finish", map[string]any{"credential": auth.get(cred, proof.Challenge, flagUP|flagUV)}).
		want(t, 400, "invalid_code")
}

// TestPasskeyCounterGoingBackwardsIsRefused: a signature counter that does
// not increase is a cloned authenticator; one that keeps no counter (a
// synced passkey, backup flags set) keeps working.
func TestPasskeyCounterGoingBackwardsIsRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	auth := newSoftAuthenticator(t)
	c := s.newClient(t)
	c.register(uniqueEmail("clone"))
	_, cred := c.addPasskey(auth, "Key")
	s.newClient(t).passkeyLogin(auth, cred).want(t, 200)
	cloned := *cred
	cloned.counter = 1 // the clone signs with a counter the original already used
	s.newClient(t).passkeyLogin(auth, &cloned).want(t, 400, "invalid_code")
	s.newClient(t).passkeyLogin(auth, cred).want(t, 200) // the original, further on, still works

	synced := newSoftAuthenticator(t)
	synced.counterless, synced.extraFlags = true, flagBE|flagBS
	d := s.newClient(t)
	d.register(uniqueEmail("synced"))
	_, syncedCred := d.addPasskey(synced, "Synced")
	for range 2 {
		s.newClient(t).passkeyLogin(synced, syncedCred).want(t, 200)
	}
	// The backup-eligible flag of a credential never changes.
	synced.extraFlags = 0
	s.newClient(t).passkeyLogin(synced, syncedCred).want(t, 400, "invalid_code")
}

// TestPasskeyCeremoniesFromAnotherOriginAreRefused: an assertion or a
// registration made on a page that is not a configured origin is refused,
// even sent without any Origin header (so the cross-origin check passes).
func TestPasskeyCeremoniesFromAnotherOriginAreRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	auth := newSoftAuthenticator(t)
	c := s.newClient(t)
	c.register(uniqueEmail("phished"))
	_, cred := c.addPasskey(auth, "Key")

	phishing := newSoftAuthenticator(t)
	phishing.origin = "https://evil.example"
	s.newClient(t).passkeyLogin(phishing, cred).want(t, 400, "invalid_code")
	opts := beginPasskey[creationOptions](c, "/passkeys/register/begin")
	_, body := phishing.create(opts, flagUP|flagUV)
	c.do("POST", "/passkeys/register/finish", map[string]any{"credential": body}).want(t, 400, "invalid_code")
	if got := c.passkeys(); len(got) != 1 {
		t.Fatalf("got %d passkeys, want the one", len(got))
	}
}

// TestPasskeyNeedsUserVerification: at registration and at every assertion.
func TestPasskeyNeedsUserVerification(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	auth := newSoftAuthenticator(t)
	c := s.newClient(t)
	c.register(uniqueEmail("presence"))
	opts := beginPasskey[creationOptions](c, "/passkeys/register/begin")
	_, body := auth.create(opts, flagUP)
	c.do("POST", "/passkeys/register/finish", map[string]any{"credential": body}).want(t, 400, "invalid_code")
	_, cred := c.addPasskey(auth, "Key")
	login := beginPasskey[requestOptions](s.newClient(t), "/login/passkey/begin")
	s.newClient(t).do("POST", "/login/passkey/finish", map[string]any{"credential": auth.get(cred, login.Challenge, flagUP)}).
		want(t, 400, "invalid_code")
}

// TestPasskeyLoginBeginIsLimitedPerIP: anonymous callers store a challenge
// each, so at most 30 a minute per client IP.
func TestPasskeyLoginBeginIsLimitedPerIP(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	c := s.newClient(t)
	for range 30 {
		c.do("POST", "/login/passkey/begin", nil).want(t, 200)
	}
	res := c.do("POST", "/login/passkey/begin", nil).want(t, 429, "too_many_requests")
	if res.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
}

// TestPasskeyLoginIsRefusedWhenAPasswordLoginWouldBe: disabled, unverified
// while verification is required, throttled; and failed assertions count as
// failed logins of the account.
func TestPasskeyLoginIsRefusedWhenAPasswordLoginWouldBe(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"LOGIN_MAX_FAILURES": "3"})
	auth := newSoftAuthenticator(t)
	admin, _ := s.newAdmin(t)
	c := s.newClient(t)
	email := uniqueEmail("refused")
	id := c.register(email).ID
	_, cred := c.addPasskey(auth, "Key")

	admin.do("PATCH", "/admin/users/"+id, map[string]any{"disabled": true}).want(t, 200)
	s.newClient(t).passkeyLogin(auth, cred).want(t, 401, "invalid_credentials")
	admin.do("PATCH", "/admin/users/"+id, map[string]any{"disabled": false}).want(t, 200)
	s.newClient(t).passkeyLogin(auth, cred).want(t, 200) // a success resets the count

	wrong := newSoftAuthenticator(t)
	wrong.origin = "https://evil.example"
	for range 3 {
		s.newClient(t).passkeyLogin(wrong, cred).want(t, 400, "invalid_code")
	}
	s.newClient(t).passkeyLogin(auth, cred).want(t, 429, "too_many_requests")
	s.newClient(t).login(email, testPassword).want(t, 429, "too_many_requests")
	wantStoredEvent(t, s, id, models.EventLoginFailed)
}

func TestPasskeyLoginNeedsAVerifiedEmailWhenRequired(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"EMAIL_VERIFICATION_REQUIRED": "true"})
	auth := newSoftAuthenticator(t)
	c := s.newClient(t)
	c.register(uniqueEmail("unverified"))
	_, cred := c.addPasskey(auth, "Key")
	s.newClient(t).passkeyLogin(auth, cred).want(t, 403, "email_not_verified")
}
