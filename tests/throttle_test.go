package tests

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestConcurrentWrongLoginsNeverPassTheLimit(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"LOGIN_MAX_FAILURES": "5", "LOGIN_FAILURE_WINDOW": "10m"})
	email := uniqueEmail("flood")
	s.newClient(t).register(email)
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Go(func() {
			res := s.newClient(t).login(email, "wrong password "+strconv.Itoa(i))
			mu.Lock()
			counts[res.Status]++
			mu.Unlock()
			if res.Status == 429 {
				ra, err := strconv.Atoi(res.Header.Get("Retry-After"))
				if err != nil || ra < 1 || ra > 600 {
					t.Errorf("got Retry-After %q, want 1..600", res.Header.Get("Retry-After"))
				}
			}
		})
	}
	wg.Wait()
	if counts[401] > 5 || counts[401]+counts[429] != 50 {
		t.Fatalf("got %v, want at most 5 × 401 and the rest 429", counts)
	}
	// The right password is throttled too, until the window ends.
	s.newClient(t).login(email, testPassword).want(t, 429, "too_many_requests")
	if !strings.Contains(s.Logs.String(), `"event":"login_throttled"`) || !strings.Contains(s.Logs.String(), `"event":"login_failed"`) {
		t.Fatal("no login_failed / login_throttled security events")
	}
}

func TestThrottleCountsUnknownEmailsAndResetsOnSuccess(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"LOGIN_MAX_FAILURES": "3"})
	c := s.newClient(t)
	ghost := uniqueEmail("ghost")
	for i := 0; i < 3; i++ {
		c.login(ghost, "whatever password").want(t, 401, "invalid_credentials")
	}
	// Same answer for an unknown email as for a known one: no existence leak.
	c.login(ghost, "whatever password").want(t, 429, "too_many_requests")

	email := uniqueEmail("reset")
	c.register(email)
	c.login(email, "bad password 1").want(t, 401)
	c.login(email, "bad password 2").want(t, 401)
	c.login(email, testPassword).want(t, 200) // success resets the count
	c.login(email, "bad password 3").want(t, 401)
	c.login(email, "bad password 4").want(t, 401)
	c.login(" "+email+" ", "bad password 5").want(t, 401) // normalised email shares the count
	c.login(email, testPassword).want(t, 429)
}

func TestThrottlePerClientIPIgnoresSpoofedForwardedFor(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"LOGIN_IP_MAX_FAILURES": "4", "LOGIN_MAX_FAILURES": "100"})
	c := s.newClient(t)
	for i := 0; i < 4; i++ {
		c.do("POST", "/login", map[string]any{"email": uniqueEmail("ip"), "password": "wrong password"},
			"X-Forwarded-For", "203.0.113."+strconv.Itoa(i)).want(t, 401)
	}
	c.do("POST", "/login", map[string]any{"email": uniqueEmail("ip"), "password": "wrong password"},
		"X-Forwarded-For", "198.51.100.7").want(t, 429, "too_many_requests")
}

func TestTrustedProxyForwardedForIsBelieved(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"LOGIN_IP_MAX_FAILURES": "2", "LOGIN_MAX_FAILURES": "100", "TRUSTED_PROXIES": "127.0.0.1/32,::1"})
	c := s.newClient(t)
	for i := 0; i < 2; i++ {
		c.do("POST", "/login", map[string]any{"email": uniqueEmail("p"), "password": "wrong password"}, "X-Forwarded-For", "203.0.113.9").want(t, 401)
	}
	c.do("POST", "/login", map[string]any{"email": uniqueEmail("p"), "password": "wrong password"}, "X-Forwarded-For", "203.0.113.9").want(t, 429)
	c.do("POST", "/login", map[string]any{"email": uniqueEmail("p"), "password": "wrong password"}, "X-Forwarded-For", "203.0.113.10").want(t, 401)
}

func TestRegisterIsLimitedPerIP(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"REGISTER_IP_MAX": "2"})
	c := s.newClient(t)
	c.register(uniqueEmail("r1"))
	c.register(uniqueEmail("r2"))
	res := c.do("POST", "/register", map[string]any{"email": uniqueEmail("r3"), "password": testPassword, "name": "R"}).want(t, 429, "too_many_requests")
	if res.Header.Get("Retry-After") == "" {
		t.Fatal("no Retry-After")
	}
	s.newClient(t).do("POST", "/register", map[string]any{"email": "bad"}).want(t, 400) // validation answers first
}

func TestRegistrationDisabled(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"REGISTRATION_ENABLED": "false"})
	s.newClient(t).do("POST", "/register", `not even json`, "Content-Type", "text/plain").want(t, 403, "registration_disabled")
}

func TestCommonAndEmailPasswordsAreRefused(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	c := s.newClient(t)
	email := uniqueEmail("weak")
	for _, pw := range []string{"password", "PASSWORD1", "12345678", "iloveyou", email} {
		res := c.do("POST", "/register", map[string]any{"email": email, "password": pw, "name": "W"}).want(t, 400, "validation_failed")
		if res.fields()["password"] == "" {
			t.Fatalf("password %q: got %s, want fields.password", pw, res.Raw)
		}
	}
	c.register(email)
	res := c.do("POST", "/password", map[string]any{"current_password": testPassword, "new_password": "qwerty123"}).want(t, 400, "validation_failed")
	if res.fields()["new_password"] == "" {
		t.Fatalf("got %s, want fields.new_password", res.Raw)
	}
}

// TestPerIPLimitsCountIPv6NetworksAndMappedIPv4 is the attack of rotating
// source addresses inside one IPv6 /64 (which one subscriber owns) through a
// trusted proxy, and of writing one IPv4 address in its IPv4-mapped form: each
// used to be a fresh per-IP counter.
func TestPerIPLimitsCountIPv6NetworksAndMappedIPv4(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"LOGIN_IP_MAX_FAILURES": "4", "LOGIN_MAX_FAILURES": "100", "REGISTER_IP_MAX": "2",
		"TRUSTED_PROXIES": "127.0.0.1/32,::1"})
	wrongLogin := func(ip string) *response {
		return s.newClient(t).do("POST", "/login", map[string]any{"email": uniqueEmail("v6"), "password": "wrong password"},
			"X-Forwarded-For", ip)
	}
	for i := 1; i <= 4; i++ {
		wrongLogin(fmt.Sprintf("2001:db8:1:2::%x", i*0x1111)).want(t, 401, "invalid_credentials")
	}
	wrongLogin("2001:db8:1:2:ffff:ffff:ffff:fffe").want(t, 429, "too_many_requests")
	wrongLogin("2001:db8:1:3::1").want(t, 401, "invalid_credentials") // the neighbouring /64 is someone else

	wrongLogin("198.51.100.7").want(t, 401)
	wrongLogin("::ffff:198.51.100.7").want(t, 401)
	wrongLogin("198.51.100.7").want(t, 401)
	wrongLogin("::ffff:198.51.100.7").want(t, 401)
	wrongLogin("198.51.100.7").want(t, 429, "too_many_requests")
	wrongLogin("::ffff:198.51.100.7").want(t, 429, "too_many_requests")

	register := func(ip string) *response {
		return s.newClient(t).do("POST", "/register", map[string]any{"email": uniqueEmail("reg6"), "password": testPassword, "name": "R"},
			"X-Forwarded-For", ip)
	}
	register("2001:db8:9:9::1").want(t, 201)
	register("2001:db8:9:9::2").want(t, 201)
	register("2001:db8:9:9:abcd::3").want(t, 429, "too_many_requests")
	register("203.0.113.44").want(t, 201)
	register("::ffff:203.0.113.44").want(t, 201)
	register("203.0.113.44").want(t, 429, "too_many_requests")
}

// TestLookAlikeSpellingsShareOneEmailCount: the email is normalised (NFKC,
// case, spaces) before it is counted, so writing it in full-width letters
// does not buy an attacker a fresh count of failures.
func TestLookAlikeSpellingsShareOneEmailCount(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"LOGIN_MAX_FAILURES": "3"})
	email := uniqueEmail("counted")
	s.newClient(t).register(email)
	s.newClient(t).login(email, "wrong password 1").want(t, 401)
	s.newClient(t).login(fullWidth(email), "wrong password 2").want(t, 401)
	s.newClient(t).login(" "+fullWidth(strings.ToUpper(email)), "wrong password 3").want(t, 401)
	s.newClient(t).login(email, testPassword).want(t, 429, "too_many_requests")
}
