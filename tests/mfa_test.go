package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"

	"github.com/sessionauth/api/models"
)

// authenticator is a TOTP app: it knows the secret and can make the code of
// any time step. Tests use the steps around the current one (the server
// accepts one step of drift either way) in increasing order, as a code is
// accepted once and only after the last one accepted.
type authenticator struct {
	t      *testing.T
	secret string
	base   int64 // the time step when the test started
}

// newAuthenticator starts at a time step with at least 10 s left, so that
// the steps base-1 to base+1 stay acceptable for the test's whole run.
func newAuthenticator(t *testing.T, secret string) *authenticator {
	t.Helper()
	if left := 30 - time.Now().Unix()%30; left < 10 {
		time.Sleep(time.Duration(left)*time.Second + 100*time.Millisecond)
	}
	return &authenticator{t: t, secret: secret, base: time.Now().Unix() / 30}
}

// code is the code of step base+offset.
func (a *authenticator) code(offset int64) string {
	a.t.Helper()
	c, err := hotp.GenerateCodeCustom(a.secret, uint64(a.base+offset), hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		a.t.Fatal(err)
	}
	return c
}

// enrolTOTP turns TOTP on for the client's user and returns the
// authenticator (its step base-1 used up by the confirmation) and the codes.
func (c *client) enrolTOTP() (*authenticator, []string) {
	c.t.Helper()
	res := c.do("POST", "/mfa/totp", nil).want(c.t, 200)
	setup := decodeBody[struct {
		Secret     string `json:"secret"`
		OTPAuthURI string `json:"otpauth_uri"`
	}](res)
	if !strings.HasPrefix(setup.OTPAuthURI, "otpauth://totp/") || !strings.Contains(setup.OTPAuthURI, "secret="+setup.Secret) ||
		strings.Contains(res.Raw, `\u0026`) {
		c.t.Fatalf("got %s, want an otpauth URI with its & as they are", res.Raw)
	}
	auth := newAuthenticator(c.t, setup.Secret)
	c.do("POST", "/mfa/totp/confirm", map[string]any{"code": "000000"}).want(c.t, 400, "invalid_code")
	res = c.do("POST", "/mfa/totp/confirm", map[string]any{"code": auth.code(-1)}).want(c.t, 200)
	codes := decodeBody[struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}](res).RecoveryCodes
	if len(codes) != 10 {
		c.t.Fatalf("got %d recovery codes, want 10", len(codes))
	}
	return auth, codes
}

// mfaLogin logs in with the password and expects the second step.
func (s *testServer) mfaLogin(t *testing.T, email string, methods ...string) *client {
	t.Helper()
	c := s.newClient(t)
	res := c.login(email, testPassword).want(t, 200)
	body := decodeBody[struct {
		MFARequired bool     `json:"mfa_required"`
		Methods     []string `json:"methods"`
	}](res)
	if !body.MFARequired || strings.Join(body.Methods, ",") != strings.Join(methods, ",") {
		t.Fatalf("got %s, want mfa_required with methods %v", res.Raw, methods)
	}
	if s.newCookieIn(res) == "" {
		t.Fatal("no cookie for the pending session")
	}
	return c
}

func TestTOTPEnrolmentLoginAndReplay(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	email := uniqueEmail("totp")
	c := s.newClient(t)
	id := c.register(email).ID
	other := s.loggedIn(t, email, testPassword)
	before := c.sessionCookie().Value

	auth, codes := c.enrolTOTP()
	if c.sessionCookie().Value == before {
		t.Fatal("turning TOTP on kept the caller's session id")
	}
	other.do("GET", "/me", nil).want(t, 401, "not_authenticated") // the first factor ends the other sessions
	if me := c.do("GET", "/me", nil).want(t, 200).user(); !me.MFA.TOTP {
		t.Fatalf("got %+v, want mfa.totp", me.MFA)
	}
	c.do("POST", "/mfa/totp", nil).want(t, 409, "mfa_already_enabled")
	var stored models.User
	s.DB.Where("id = ?", id).Take(&stored)
	if len(stored.TOTPSecret) == 0 || strings.Contains(string(stored.TOTPSecret), auth.secret) {
		t.Fatal("the TOTP secret is not stored encrypted")
	}

	pending := s.mfaLogin(t, email, "totp", "recovery_code")
	pending.do("GET", "/me", nil).want(t, 401, "mfa_required")
	pending.do("GET", "/sessions", nil).want(t, 401, "mfa_required")
	pending.do("POST", "/login/mfa", map[string]any{"code": auth.code(-1)}).want(t, 400, "invalid_code") // the confirmation's step, again
	pending.do("POST", "/login/mfa", map[string]any{"code": auth.code(0)}).want(t, 200)
	pending.do("GET", "/me", nil).want(t, 200)

	replay := s.mfaLogin(t, email, "totp", "recovery_code")
	replay.do("POST", "/login/mfa", map[string]any{"code": auth.code(0)}).want(t, 400, "invalid_code")
	replay.do("POST", "/login/mfa", map[string]any{"recovery_code": strings.ToLower(codes[3])}).want(t, 200)
	again := s.mfaLogin(t, email, "totp", "recovery_code")
	again.do("POST", "/login/mfa", map[string]any{"recovery_code": codes[3]}).want(t, 400, "invalid_code")
	again.do("POST", "/login/mfa", map[string]any{}).want(t, 400, "validation_failed")

	// A proof needs the code too, and a code is accepted once there as well.
	pending.do("POST", "/reauth", map[string]any{"password": testPassword}).want(t, 400, "invalid_code")
	pending.do("POST", "/reauth", map[string]any{"password": testPassword, "code": auth.code(0)}).want(t, 400, "invalid_code")
	pending.do("POST", "/reauth", map[string]any{"password": testPassword, "code": auth.code(1)}).want(t, 200)
	pending.do("POST", "/reauth", map[string]any{"password": testPassword, "code": codes[5]}).want(t, 200)
	for _, event := range []models.Event{models.EventMFAEnabled, models.EventMFAUsed, models.EventRecoveryCodeUsed} {
		wantStoredEvent(t, s, id, event)
	}
	s.newClient(t).do("POST", "/login/mfa", map[string]any{"code": "123456"}).want(t, 401, "not_authenticated")
	pending.do("POST", "/login/mfa", map[string]any{"code": "123456"}).want(t, 401, "not_authenticated") // a full session
}

// TestWrongSecondFactorsAreThrottled: wrong codes at the second step count
// as failed logins for the account's email.
func TestWrongSecondFactorsAreThrottled(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"LOGIN_MAX_FAILURES": "3"})
	email := uniqueEmail("guessed")
	c := s.newClient(t)
	c.register(email)
	c.enrolTOTP()
	pending := s.mfaLogin(t, email, "totp", "recovery_code")
	for _, guess := range []string{"111111", "222222", "333333"} {
		pending.do("POST", "/login/mfa", map[string]any{"code": guess}).want(t, 400, "invalid_code")
	}
	res := pending.do("POST", "/login/mfa", map[string]any{"code": "444444"}).want(t, 429, "too_many_requests")
	if res.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	s.newClient(t).login(email, testPassword).want(t, 429) // the password step is throttled as well
}

// TestPendingSessionsHaveTheirOwnLimits: a user has at most 5 pending
// sessions (the oldest dropped), they never end a full session, and one
// lives MFA_PENDING_TIMEOUT.
func TestPendingSessionsHaveTheirOwnLimits(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"MAX_SESSIONS_PER_USER": "2", "MFA_PENDING_TIMEOUT": "2s"})
	email := uniqueEmail("pending")
	c := s.newClient(t)
	c.register(email)
	auth, _ := c.enrolTOTP()
	full := s.mfaLogin(t, email, "totp", "recovery_code")
	full.do("POST", "/login/mfa", map[string]any{"code": auth.code(0)}).want(t, 200)

	var pendings []*client
	for range 6 {
		pendings = append(pendings, s.mfaLogin(t, email, "totp", "recovery_code"))
	}
	c.do("GET", "/me", nil).want(t, 200)
	full.do("GET", "/me", nil).want(t, 200)
	pendings[0].do("POST", "/login/mfa", map[string]any{"code": auth.code(1)}).want(t, 401, "not_authenticated")
	if n := len(full.sessions()); n != 2+5 {
		t.Fatalf("got %d sessions listed, want the 2 full ones and 5 pending", n)
	}
	time.Sleep(2100 * time.Millisecond)
	pendings[5].do("POST", "/login/mfa", map[string]any{"code": auth.code(1)}).want(t, 401, "not_authenticated")
	pendings[4].do("POST", "/logout", nil).want(t, 200)
}

func TestDisableTOTPAndNewRecoveryCodes(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"REAUTH_WINDOW": "2s"})
	email := uniqueEmail("offagain")
	c := s.newClient(t)
	c.register(email)
	auth, codes := c.enrolTOTP()
	second := s.mfaLogin(t, email, "totp", "recovery_code")
	second.do("POST", "/login/mfa", map[string]any{"code": auth.code(0)}).want(t, 200)

	fresh := decodeBody[struct {
		RecoveryCodes []string `json:"recovery_codes"`
	}](c.do("POST", "/mfa/recovery-codes", nil).want(t, 200)).RecoveryCodes
	old := s.mfaLogin(t, email, "totp", "recovery_code")
	old.do("POST", "/login/mfa", map[string]any{"recovery_code": codes[0]}).want(t, 400, "invalid_code")
	old.do("POST", "/login/mfa", map[string]any{"recovery_code": fresh[0]}).want(t, 200)

	c.do("DELETE", "/mfa/totp", nil).want(t, 204)
	if me := second.do("GET", "/me", nil).want(t, 200).user(); me.MFA.TOTP {
		t.Fatal("another live session still shows TOTP on")
	}
	c.do("DELETE", "/mfa/totp", nil).want(t, 404, "not_found")
	s.loggedIn(t, email, testPassword) // a full login again
	c.do("POST", "/mfa/recovery-codes", nil).want(t, 400, "validation_failed")
	time.Sleep(3 * time.Second)
	c.do("POST", "/mfa/totp", nil).want(t, 403, "reauthentication_required")
}

// TestAdminRoutesNeedASecondFactorWhenRequired, and the admin's way back for
// a user who lost every device.
func TestAdminRoutesNeedASecondFactorWhenRequired(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"ADMIN_MFA_REQUIRED": "true"})
	admin, adminID := s.newAdmin(t)
	admin.do("GET", "/admin/users", nil).want(t, 403, "mfa_enrollment_required")
	admin.do("POST", "/admin/users/"+adminID+"/logout-all", nil).want(t, 403, "mfa_enrollment_required")
	plainEmail, _ := s.seedUser(t, "plain", models.RoleUser, false)
	s.loggedIn(t, plainEmail, testPassword).do("GET", "/admin/users", nil).want(t, 403, "forbidden")
	admin.enrolTOTP() // the enrolment routes stay open
	admin.do("GET", "/admin/users", nil).want(t, 200)

	email, id := s.seedUser(t, "lost-phone", models.RoleUser, false)
	user := s.loggedIn(t, email, testPassword)
	user.enrolTOTP()
	s.mfaLogin(t, email, "totp", "recovery_code")
	admin.do("DELETE", "/admin/users/"+strings.ToUpper(id)+"/mfa", nil).want(t, 404, "not_found")
	admin.do("DELETE", "/admin/users/"+id+"/mfa", nil).want(t, 204)
	user.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	wantStoredEvent(t, s, id, models.EventMFADisabled)
	// A user without a factor lost nothing: no event, their sessions still end.
	again := s.loggedIn(t, email, testPassword)
	admin.do("DELETE", "/admin/users/"+id+"/mfa", nil).want(t, 204)
	again.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	var removals int64
	s.DB.Model(&models.AuditEvent{}).Where("user_id = ? AND event = ?", id, models.EventMFADisabled).Count(&removals)
	if removals != 1 {
		t.Fatalf("got %d mfa_disabled events, want 1 (none for removing nothing)", removals)
	}
	if me := s.loggedIn(t, email, testPassword).do("GET", "/me", nil).want(t, 200).user(); me.MFA.TOTP {
		t.Fatalf("got %+v after the admin removed every factor", me.MFA)
	}
}

// TestTOTPConfirmationFailsClosed: Redis refuses the revocation that the
// first factor brings; TOTP stays off and the setup can be confirmed again.
func TestTOTPConfirmationFailsClosed(t *testing.T) {
	t.Parallel()
	s, proxy := newProxiedServer(t, env{"REDIS_TIMEOUT": "400ms"})
	email := uniqueEmail("closed")
	c := s.newClient(t)
	id := c.register(email).ID
	stolen := s.loggedIn(t, email, testPassword)
	setup := decodeBody[struct {
		Secret string `json:"secret"`
	}](c.do("POST", "/mfa/totp", nil).want(t, 200))
	auth := newAuthenticator(t, setup.Secret)
	proxy.on(s.Redis.Keys().UserVersion(id), proxy.cut)
	c.do("POST", "/mfa/totp/confirm", map[string]any{"code": auth.code(-1)}).want(t, 503, "service_unavailable")
	healProxy(t, s, proxy)
	if s.storedUser(t, id).TOTPEnabled {
		t.Fatal("TOTP was turned on although the revocation failed")
	}
	again := s.loggedIn(t, email, testPassword) // the held revocation may have ended the sessions
	again.do("POST", "/mfa/totp/confirm", map[string]any{"code": auth.code(0)}).want(t, 200)
	stolen.do("GET", "/me", nil).want(t, 401, "not_authenticated")
}

// TestSecondFactorChangesAreMailed: turning TOTP on and off each mail the
// user a notice.
func TestSecondFactorChangesAreMailed(t *testing.T) {
	t.Parallel()
	s, mp := mailServer(t, nil)
	email := uniqueEmail("noticed")
	c := s.newClient(t)
	c.register(email)
	c.enrolTOTP()
	c.do("DELETE", "/mfa/totp", nil).want(t, 204)
	got := mp.subjects(t, email, 3, 10*time.Second)
	if !slicesContain(got, "turned on") || !slicesContain(got, "turned off") {
		t.Fatalf("got mails %q, want notices of TOTP turned on and off", got)
	}
}
