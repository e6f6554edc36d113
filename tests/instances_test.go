package tests

import "testing"

// via returns a client that shares c's cookie jar but talks to s: the same
// browser reaching another instance behind a load balancer (cookie jars
// ignore ports, so both instances see the same cookie).
func (c *client) via(s *testServer) *client {
	return &client{t: c.t, srv: s, http: c.http}
}

// TestTwoInstancesShareSessionsRevocationAndThrottle starts two instances on
// different ports over one Redis and one database, as two replicas behind a
// load balancer: a session made on one is valid on the other, a revocation on
// one is immediate on both, and failed logins count across both.
func TestTwoInstancesShareSessionsRevocationAndThrottle(t *testing.T) {
	t.Parallel()
	deps := newDeps(t, env{"LOGIN_MAX_FAILURES": "5"})
	a, b := deps.start(t), deps.start(t)
	if a.URL == b.URL {
		t.Fatalf("both instances on %s, want two ports", a.URL)
	}

	laptop := a.newClient(t)
	email := uniqueEmail("replica")
	id := laptop.register(email).ID
	if got := laptop.via(b).do("GET", "/me", nil).want(t, 200).user().ID; got != id {
		t.Fatalf("got user %v on the other instance, want %v", got, id)
	}
	phone := b.newClient(t)
	phone.login(email, testPassword).want(t, 200)
	if n := len(phone.via(a).sessions()); n != 2 {
		t.Fatalf("got %d sessions listed on the other instance, want 2", n)
	}

	// One session revoked on B is gone on A at once.
	tablet := a.newClient(t)
	tablet.login(email, testPassword).want(t, 200)
	tabletHandle := tablet.currentHandle()
	phone.do("DELETE", "/sessions/"+tabletHandle, nil).want(t, 204)
	tablet.do("GET", "/me", nil).want(t, 401, "not_authenticated")

	// logout-all on A ends the sessions made on both.
	res := laptop.do("POST", "/logout-all", nil).want(t, 200)
	if res.Body["revoked"] != float64(2) {
		t.Fatalf("got revoked %v, want 2", res.Body["revoked"])
	}
	phone.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	phone.via(a).do("GET", "/me", nil).want(t, 401, "not_authenticated")
	laptop.via(b).do("GET", "/me", nil).want(t, 401, "not_authenticated")

	// Failures alternate between the instances; the limit is the sum.
	attacker := a.newClient(t)
	for i := range 5 {
		target := attacker
		if i%2 == 1 {
			target = attacker.via(b)
		}
		target.login(email, "a wrong password").want(t, 401, "invalid_credentials")
	}
	attacker.via(b).login(email, testPassword).want(t, 429, "too_many_requests")
	a.newClient(t).login(email, testPassword).want(t, 429, "too_many_requests")
}
