package tests

import (
	"net/url"
	"os"
	"strconv"
	"testing"
)

// TestDatabaseMultiHostURLFindsThePrimary: a PostgreSQL URL naming a host
// that is down before the real one, with target_session_attrs=read-write (the
// URL docs/deploy.md gives for a primary and a standby), serves: pgx tries the
// hosts in turn and keeps one that accepts writes.
func TestDatabaseMultiHostURLFindsThePrimary(t *testing.T) {
	t.Parallel()
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("needs PostgreSQL (TEST_DATABASE_URL)")
	}
	deps := newDeps(t, nil)
	u, err := url.Parse(deps.settings["DATABASE_URL"])
	if err != nil {
		t.Fatal(err)
	}
	u.Host = "127.0.0.1:" + strconv.Itoa(freePort(t)) + "," + u.Host
	q := u.Query()
	q.Set("target_session_attrs", "read-write")
	u.RawQuery = q.Encode()
	deps.settings["DATABASE_URL"] = u.String()
	s := deps.start(t)
	wantReadiness(t, s.newClient(t), 200, map[string]string{"database": "ok"})
	c := s.newClient(t)
	email := uniqueEmail("multihost")
	c.register(email)
	s.newClient(t).login(email, testPassword).want(t, 200)
}
