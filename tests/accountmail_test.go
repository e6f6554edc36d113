package tests

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/sessionauth/api/models"
)

// The account flows that go through mail, over real SMTP (Mailpit): every
// token a test uses is taken from the mail that arrived, as a user would.

// mailServer starts the application sending its mail to Mailpit.
func mailServer(t *testing.T, settings env) (*testServer, *mailpit) {
	t.Helper()
	mp := needMailpit(t)
	all := env{"MAIL_URL": mp.MailURL, "FRONTEND_URL": testFrontendURL}
	for k, v := range settings {
		all[k] = v
	}
	return newServer(t, all), mp
}

var linkToken = regexp.MustCompile(`(reset-password|verify-email)#token=([A-Za-z0-9_-]+)`)

// mailedToken waits for the n-th mail to to whose subject contains subject
// and returns the token of its link.
func (m *mailpit) mailedToken(t *testing.T, to, subject string, n int) string {
	t.Helper()
	for _, mail := range m.waitForMail(t, to, n, 10*time.Second) {
		if strings.Contains(mail.Subject, subject) {
			if found := linkToken.FindStringSubmatch(mail.Text); found != nil {
				return found[2]
			}
		}
	}
	t.Fatalf("no mail %q with a link to %s", subject, to)
	return ""
}

// subjects returns the subjects of the mails to to, after waiting for want of them.
func (m *mailpit) subjects(t *testing.T, to string, want int, wait time.Duration) []string {
	t.Helper()
	var out []string
	for _, mail := range m.waitForMail(t, to, want, wait) {
		out = append(out, mail.Subject)
	}
	return out
}

func TestForgotPasswordMailResetAndLogin(t *testing.T) {
	t.Parallel()
	s, mp := mailServer(t, env{"LOGIN_MAX_FAILURES": "5"})
	email := uniqueEmail("forgetful")
	owner := s.newClient(t)
	id := owner.register(email).ID
	stolen := s.loggedIn(t, email, testPassword)
	for range 3 {
		s.newClient(t).login(email, "not the password").want(t, 401)
	}

	s.newClient(t).do("POST", "/password/forgot", map[string]any{"email": "  " + strings.ToUpper(email)}).want(t, 202)
	token := mp.mailedToken(t, email, "Reset your password", 2) // the verification mail of the registration is the other
	const next = "a brand new passphrase 42"
	anon := s.newClient(t)
	anon.do("POST", "/password/reset", map[string]any{"token": token, "new_password": "password1"}).want(t, 400, "validation_failed")
	res := anon.do("POST", "/password/reset", map[string]any{"token": token, "new_password": next}).want(t, 200)
	if cookie := s.newCookieIn(res); cookie != "" {
		t.Fatal("a reset logged the caller in")
	}
	anon.do("POST", "/password/reset", map[string]any{"token": token, "new_password": next}).want(t, 400, "invalid_token")
	owner.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	stolen.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	s.newClient(t).login(email, testPassword).want(t, 401, "invalid_credentials")
	// The three failures before the reset were cleared: the one just made counts alone.
	if n, _ := redis.Int(s.redisCmd(t, "GET", s.Redis.Keys().Throttle("login:email", email)), nil); n != 1 {
		t.Fatalf("got %d failed logins counted after the reset, want 1 (the earlier ones cleared)", n)
	}
	me := s.loggedIn(t, email, next).do("GET", "/me", nil).want(t, 200).user()
	if !me.EmailVerified {
		t.Fatal("using a reset link did not verify the email")
	}
	if got := mp.subjects(t, email, 3, 10*time.Second); !slicesContain(got, "Your password was reset") {
		t.Fatalf("got mails %q, want a notice of the reset", got)
	}
	wantStoredEvent(t, s, id, models.EventPasswordReset)
	wantStoredEvent(t, s, id, models.EventPasswordResetRequested)
}

func slicesContain(list []string, want string) bool {
	for _, s := range list {
		if strings.Contains(s, want) {
			return true
		}
	}
	return false
}

// wantStoredEvent fails unless the audit log holds event for the user.
func wantStoredEvent(t *testing.T, s *testServer, userID string, event models.Event) {
	t.Helper()
	var n int64
	s.DB.Model(&models.AuditEvent{}).Where("user_id = ? AND event = ?", userID, event).Count(&n)
	if n == 0 {
		t.Fatalf("no %s event stored for the user", event)
	}
}

// TestForgotPasswordRevealsNothing: unknown and disabled accounts get the same
// 202 and no mail; more than 3 requests for one email in the window mail
// nothing more, silently; the client IP is limited with a 429.
func TestForgotPasswordRevealsNothing(t *testing.T) {
	t.Parallel()
	s, mp := mailServer(t, env{"REGISTER_IP_MAX": "6"})
	disabledEmail, _ := s.seedUser(t, "disabled", models.RoleUser, true)
	unknown := uniqueEmail("nobody")
	c := s.newClient(t)
	c.do("POST", "/password/forgot", map[string]any{"email": unknown}).want(t, 202)
	c.do("POST", "/password/forgot", map[string]any{"email": disabledEmail}).want(t, 202)
	email, _ := s.seedUser(t, "often", models.RoleUser, false)
	for range 4 {
		c.do("POST", "/password/forgot", map[string]any{"email": email}).want(t, 202)
	}
	c.do("POST", "/password/forgot", map[string]any{"email": email}).want(t, 429, "too_many_requests")
	if got := mp.subjects(t, email, 4, 3*time.Second); len(got) != 3 {
		t.Fatalf("got %d reset mails for one email, want 3 (the fourth silently not sent)", len(got))
	}
	if got := mp.subjects(t, unknown, 1, 500*time.Millisecond); len(got) != 0 {
		t.Fatalf("an unknown email got mail: %q", got)
	}
	if got := mp.subjects(t, disabledEmail, 1, 500*time.Millisecond); len(got) != 0 {
		t.Fatalf("a disabled account got mail: %q", got)
	}
	c.do("POST", "/password/forgot", map[string]any{"email": "not an email"}).want(t, 400, "validation_failed")
}

// TestResetTokensAreSingleUseSupersededAndExpire, and wrong tokens count as
// failed logins of the client IP.
func TestResetTokensAreSingleUseSupersededAndExpire(t *testing.T) {
	t.Parallel()
	s, mp := mailServer(t, env{"PASSWORD_RESET_TTL": "2s", "LOGIN_IP_MAX_FAILURES": "4"})
	email, _ := s.seedUser(t, "superseded", models.RoleUser, false)
	c := s.newClient(t)
	c.do("POST", "/password/forgot", map[string]any{"email": email}).want(t, 202)
	first := mp.mailedToken(t, email, "Reset", 1)
	c.do("POST", "/password/forgot", map[string]any{"email": email}).want(t, 202)
	var second string
	for _, m := range mp.waitForMail(t, email, 2, 10*time.Second) {
		if tok := linkToken.FindStringSubmatch(m.Text); tok != nil && tok[2] != first {
			second = tok[2]
		}
	}
	c.do("POST", "/password/reset", map[string]any{"token": first, "new_password": "superseded passphrase 1"}).want(t, 400, "invalid_token")
	time.Sleep(2100 * time.Millisecond)
	c.do("POST", "/password/reset", map[string]any{"token": second, "new_password": "expired passphrase 1"}).want(t, 400, "invalid_token")
	c.do("POST", "/password/reset", map[string]any{"token": "made-up", "new_password": "guessed passphrase 1"}).want(t, 400, "invalid_token")
	c.do("POST", "/password/reset", map[string]any{"token": "made-up-2", "new_password": "guessed passphrase 1"}).want(t, 400, "invalid_token")
	c.do("POST", "/password/reset", map[string]any{"token": "made-up-3", "new_password": "guessed passphrase 1"}).want(t, 429, "too_many_requests")
	s.newClient(t).login(email, testPassword).want(t, 429) // the IP's failures count for login too
}

func TestEmailVerificationShowsInEverySession(t *testing.T) {
	t.Parallel()
	s, mp := mailServer(t, nil)
	email := uniqueEmail("verify")
	laptop := s.newClient(t)
	if laptop.register(email).EmailVerified {
		t.Fatal("a new registration is verified")
	}
	phone := s.loggedIn(t, email, testPassword)
	token := mp.mailedToken(t, email, "Confirm your email address", 1)
	laptop.do("POST", "/email/verification", nil).want(t, 202)
	second := mp.mailedToken(t, email, "Confirm your email address", 2)
	s.newClient(t).do("POST", "/email/verify", map[string]any{"token": token}).want(t, 400, "invalid_token") // superseded
	token = second
	s.newClient(t).do("POST", "/email/verify", map[string]any{"token": token}).want(t, 200)
	for _, c := range []*client{laptop, phone} {
		if !c.do("GET", "/me", nil).want(t, 200).user().EmailVerified {
			t.Fatal("a live session does not show the email verified")
		}
	}
	laptop.do("POST", "/email/verification", nil).want(t, 200) // already verified: nothing sent
}

func TestVerificationMailsAreLimitedPerUser(t *testing.T) {
	t.Parallel()
	s, _ := mailServer(t, nil)
	c := s.newClient(t)
	c.register(uniqueEmail("impatient"))
	for range 3 {
		c.do("POST", "/email/verification", nil).want(t, 202)
	}
	res := c.do("POST", "/email/verification", nil).want(t, 429, "too_many_requests")
	if res.Header.Get("Retry-After") == "" {
		t.Fatal("429 without Retry-After")
	}
	s.newClient(t).do("POST", "/email/verification", nil).want(t, 401, "not_authenticated")
}

func TestEmailChangeIsConfirmedFromTheNewAddress(t *testing.T) {
	t.Parallel()
	s, mp := mailServer(t, nil)
	old := uniqueEmail("mover")
	laptop := s.newClient(t)
	laptop.register(old)
	phone := s.loggedIn(t, old, testPassword)
	taken, _ := s.seedUser(t, "taken", models.RoleUser, false)
	next := uniqueEmail("moved")

	laptop.do("POST", "/me/email", map[string]any{"email": next, "password": "not the password"}).want(t, 400, "invalid_current_password")
	laptop.do("POST", "/me/email", map[string]any{"email": taken, "password": testPassword}).want(t, 409, "email_taken")
	laptop.do("POST", "/me/email", map[string]any{"email": old, "password": testPassword}).want(t, 400, "validation_failed")
	laptop.do("POST", "/me/email", map[string]any{"email": strings.ToUpper(next), "password": testPassword}).want(t, 202)
	if got := mp.subjects(t, old, 2, 10*time.Second); !slicesContain(got, "change") {
		t.Fatalf("got %q at the old address, want a notice of the change", got)
	}
	if me := laptop.do("GET", "/me", nil).want(t, 200).user(); me.Email != old {
		t.Fatalf("got email %q before the link was used, want %q", me.Email, old)
	}
	token := mp.mailedToken(t, next, "", 1)
	s.newClient(t).do("POST", "/email/verify", map[string]any{"token": token}).want(t, 200)
	for _, c := range []*client{laptop, phone} {
		if me := c.do("GET", "/me", nil).want(t, 200).user(); me.Email != next || !me.EmailVerified {
			t.Fatalf("got %+v in a live session, want the new email, verified", me)
		}
	}
	s.loggedIn(t, next, testPassword)
	s.newClient(t).login(old, testPassword).want(t, 401, "invalid_credentials")
}

// TestEmailChangeTakenMeanwhileIsRefused: the new address was free when the
// change was asked for and taken before the link was used.
func TestEmailChangeTakenMeanwhileIsRefused(t *testing.T) {
	t.Parallel()
	s, mp := mailServer(t, nil)
	c := s.newClient(t)
	c.register(uniqueEmail("late"))
	next := uniqueEmail("contested")
	c.do("POST", "/me/email", map[string]any{"email": next, "password": testPassword}).want(t, 202)
	token := mp.mailedToken(t, next, "", 1)
	s.newClient(t).register(next)
	s.newClient(t).do("POST", "/email/verify", map[string]any{"token": token}).want(t, 409, "email_taken")
}

// TestPasswordChangeVoidsAPendingEmailChange: someone with the cookie and the
// password asks to move the account to their address; the owner changes the
// password, and the link no longer works (else cookie + password → email
// change → reset would be a takeover).
func TestPasswordChangeVoidsAPendingEmailChange(t *testing.T) {
	t.Parallel()
	s, mp := mailServer(t, nil)
	email := uniqueEmail("owner")
	owner := s.newClient(t)
	owner.register(email)
	thief := s.loggedIn(t, email, testPassword)
	theirs := uniqueEmail("thief")
	thief.do("POST", "/me/email", map[string]any{"email": theirs, "password": testPassword}).want(t, 202)
	token := mp.mailedToken(t, theirs, "", 1)
	owner.do("POST", "/password", map[string]any{"current_password": testPassword, "new_password": "the owner's new passphrase"}).want(t, 200)
	s.newClient(t).do("POST", "/email/verify", map[string]any{"token": token}).want(t, 400, "invalid_token")
	if got := mp.subjects(t, email, 3, 10*time.Second); !slicesContain(got, "password was changed") {
		t.Fatalf("got %q, want a notice of the password change", got)
	}
}

func TestAdminSendsAPasswordResetLink(t *testing.T) {
	t.Parallel()
	s, mp := mailServer(t, nil)
	admin, _ := s.newAdmin(t)
	email, id := s.seedUser(t, "locked-out", models.RoleUser, false)
	disabledEmail, disabledID := s.seedUser(t, "off", models.RoleUser, true)
	admin.do("POST", "/admin/users/"+id+"/password-reset", nil).want(t, 202)
	admin.do("POST", "/admin/users/"+disabledID+"/password-reset", nil).want(t, 202)
	admin.do("POST", "/admin/users/"+strings.ToUpper(id)+"/password-reset", nil).want(t, 404, "not_found")
	token := mp.mailedToken(t, email, "Reset", 1)
	s.newClient(t).do("POST", "/password/reset", map[string]any{"token": token, "new_password": "set by the user 42"}).want(t, 200)
	s.loggedIn(t, email, "set by the user 42")
	if got := mp.subjects(t, disabledEmail, 1, 500*time.Millisecond); len(got) != 0 {
		t.Fatalf("a disabled user got %q", got)
	}
	plainEmail, _ := s.seedUser(t, "plain", models.RoleUser, false)
	s.loggedIn(t, plainEmail, testPassword).do("POST", "/admin/users/"+id+"/password-reset", nil).want(t, 403, "forbidden")
}

func TestLoginNeedsAVerifiedEmailWhenRequired(t *testing.T) {
	t.Parallel()
	s, mp := mailServer(t, env{"EMAIL_VERIFICATION_REQUIRED": "true"})
	email := uniqueEmail("unverified")
	s.newClient(t).register(email)
	s.newClient(t).login(email, "not the password").want(t, 401, "invalid_credentials")
	s.newClient(t).login(email, testPassword).want(t, 403, "email_not_verified")
	token := mp.mailedToken(t, email, "Confirm your email address", 1)
	s.newClient(t).do("POST", "/email/verify", map[string]any{"token": token}).want(t, 200)
	s.loggedIn(t, email, testPassword)
	// Users an admin created count as verified.
	created, _ := s.seedUser(t, "made", models.RoleUser, false)
	s.loggedIn(t, created, testPassword)
}

// TestResetFailsClosedAndKeepsTheToken: Redis refuses the revocation of a
// reset; nothing is stored and the same link works once Redis is back.
func TestResetFailsClosedAndKeepsTheToken(t *testing.T) {
	t.Parallel()
	mp := needMailpit(t)
	s, proxy := newProxiedServer(t, env{"MAIL_URL": mp.MailURL, "FRONTEND_URL": testFrontendURL, "REDIS_TIMEOUT": "400ms"})
	email, id := s.seedUser(t, "closed", models.RoleUser, false)
	stolen := s.loggedIn(t, email, testPassword)
	s.newClient(t).do("POST", "/password/forgot", map[string]any{"email": email}).want(t, 202)
	token := mp.mailedToken(t, email, "Reset", 1)
	proxy.on(s.Redis.Keys().UserVersion(id), proxy.cut)
	s.newClient(t).do("POST", "/password/reset", map[string]any{"token": token, "new_password": "after the outage 42"}).
		want(t, 503, "service_unavailable")
	healProxy(t, s, proxy)
	s.loggedIn(t, email, testPassword) // not stored
	s.newClient(t).do("POST", "/password/reset", map[string]any{"token": token, "new_password": "after the outage 42"}).want(t, 200)
	stolen.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	s.loggedIn(t, email, "after the outage 42")
}

// TestMailRoutesAreAbsentWithoutMailInProduction: 404 for each, after the
// cross-origin check and before authentication.
func TestMailRoutesAreAbsentWithoutMailInProduction(t *testing.T) {
	t.Parallel()
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("production needs DATABASE_URL: runs against the real services (TEST_DATABASE_URL)")
	}
	s := newServer(t, env{"APP_ENV": "production", "COOKIE_SECURE": "true"})
	c := s.newClient(t)
	for _, path := range []string{"/password/forgot", "/password/reset", "/email/verify", "/email/verification", "/me/email",
		"/admin/users/3f1c2b9e-8a4d-4c1e-9b7a-2d5e6f708192/password-reset"} {
		c.do("POST", path, map[string]any{"email": "a@example.com"}).want(t, 404, "not_found")
		c.do("POST", path, map[string]any{}, "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site").
			want(t, 403, "cross_origin_rejected")
	}
}
