package tests

import (
	"net/url"
	"strings"
	"testing"

	"github.com/sessionauth/api/models"
)

// Hostile input: bodies and query strings written to be read one way by the
// API and another by a person, a proxy or the database.

// fullWidth writes the ASCII letters, digits and signs of s in their
// full-width forms (U+FF01…U+FF5E), as a look-alike address would.
func fullWidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r > ' ' && r < 0x7f {
			r += 0xfee0
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestJSONKeysMatchExactlyAndDuplicatesAreInvalid is the attack of a second
// key that differs in case: it used to be read as the same field, the last
// one winning, so a body that a filter in front reads as role "user"
// applied "admin".
func TestJSONKeysMatchExactlyAndDuplicatesAreInvalid(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	admin, _ := s.newAdmin(t)
	_, id := s.seedUser(t, "target", models.RoleUser, false)

	res := admin.do("PATCH", "/admin/users/"+id, `{"role":"user","Role":"admin"}`).want(t, 200)
	if res.user().Role != "user" || s.storedUser(t, id).Role != models.RoleUser {
		t.Fatalf("got %s (stored %s), want role user: Role is an unknown key", res.Raw, s.storedUser(t, id).Role)
	}
	admin.do("PATCH", "/admin/users/"+id, `{"ROLE":"admin","Disabled":true}`).want(t, 400, "validation_failed") // nothing known: {}
	for _, body := range []string{
		`{"role":"user","role":"admin"}`,
		`{"disabled":false,"disabled":true}`,
		`{"role":"admin","extra":{"a":1,"a":2}}`,
		`{"role":"admin","extra":[{"b":[{"c":1,"c":1}]}]}`,
	} {
		admin.do("PATCH", "/admin/users/"+id, body).want(t, 400, "invalid_json")
	}
	if u := s.storedUser(t, id); u.Role != models.RoleUser || u.Disabled {
		t.Fatalf("got stored %s disabled=%v, want the user unchanged", u.Role, u.Disabled)
	}
	// Login and register read bodies the same way.
	email := uniqueEmail("dup")
	s.newClient(t).do("POST", "/register", `{"email":"`+email+`","password":"`+testPassword+`","name":"A","name":"B"}`).want(t, 400, "invalid_json")
	s.newClient(t).do("POST", "/login", `{"email":"x@example.com","Email":"y@example.com","password":"`+testPassword+`"}`).want(t, 401, "invalid_credentials")
}

// TestWrongTypedFieldsAreNamedTogether: a client fixing its body learns of
// every wrong field at once, not one per round trip.
func TestWrongTypedFieldsAreNamedTogether(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	fields := s.newClient(t).do("POST", "/login", `{"email": 1, "password": true}`).want(t, 400, "validation_failed").fields()
	if fields["email"] != "must be a string" || fields["password"] != "must be a string" || len(fields) != 2 {
		t.Fatalf("got fields %v, want email and password named as wrong types", fields)
	}
	fields = s.newClient(t).do("POST", "/register", `{"email": [], "password": {}, "name": 7}`).want(t, 400, "validation_failed").fields()
	if len(fields) != 3 {
		t.Fatalf("got fields %v, want email, password and name", fields)
	}
	// A wrong type and a rule broken elsewhere are reported together too.
	fields = s.newClient(t).do("POST", "/register", `{"email": false, "password": "short", "name": "N"}`).want(t, 400, "validation_failed").fields()
	if fields["email"] != "must be a string" || fields["password"] == "" {
		t.Fatalf("got fields %v, want email (type) and password (length)", fields)
	}
}

// TestControlAndFormatCharactersAreValidationFailed is the attack of bytes
// PostgreSQL refuses (NUL) or that hide text (bidi overrides, zero-width
// characters): they used to reach the database and answer 503, counted as a
// database outage. Now every such field or parameter is named in one 400,
// and no client input raises the dependency-error metric.
func TestControlAndFormatCharactersAreValidationFailed(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	admin, _ := s.newAdmin(t)
	c := s.newClient(t)
	cases := []struct {
		path, body string
		fields     []string
	}{
		{"/register", `{"email":"` + uniqueEmail("nul") + `","password":"` + testPassword + `","name":"Ada\u0000"}`, []string{"name"}},
		{"/register", `{"email":"ada\u202e@example.com","password":"pass\tword and more","name":"\u200b"}`, []string{"email", "password", "name"}},
		{"/register", `{"email":"` + uniqueEmail("bell") + `","password":"` + testPassword + `","name":"A\u0007B"}`, []string{"name"}},
		{"/login", `{"email":"a\u0000@example.com","password":"` + testPassword + `"}`, []string{"email"}},
		{"/login", `{"email":"a@example.com","password":"x\u0000xxxxxxx"}`, []string{"password"}},
	}
	for _, tc := range cases {
		fields := c.do("POST", tc.path, tc.body).want(t, 400, "validation_failed").fields()
		for _, f := range tc.fields {
			if fields[f] == "" {
				t.Errorf("%s %s: got fields %v, want %s named", tc.path, tc.body, fields, f)
			}
		}
	}
	admin.do("POST", "/admin/users", `{"email":"`+uniqueEmail("adm")+`","password":"`+testPassword+`","name":"Bob\u0000","role":"user"}`).
		want(t, 400, "validation_failed")
	for query, field := range map[string]string{
		"email=%00":              "email",
		"email=ada%E2%80%AE":     "email", // U+202E, right-to-left override
		"email=%FF":              "email", // not UTF-8
		"email=ada&limit=1%00":   "limit",
		"utm=%0D%0Aset-cookie:x": "utm", // a parameter the route does not know is still checked
		"email=a%C2%AD":          "email",
		"email=" + url.QueryEscape("ａｄａ\u0430"): "email", // NFKC leaves the Cyrillic а: not ASCII
	} {
		fields := admin.do("GET", "/admin/users?"+query, nil).want(t, 400, "validation_failed").fields()
		if fields[field] == "" {
			t.Errorf("?%s: got fields %v, want %s named", query, fields, field)
		}
	}
	m := scrape(t, admin)
	m.wantMetric(t, 0, "sessionauth_dependency_errors_total", "dependency", "database")
	m.wantMetric(t, 0, "sessionauth_http_requests_total", "method", "POST", "route", "/register", "status", "503")
}

// TestMalformedUserIDsAreNotFound: only the canonical lower-case UUID names
// a user. Other spellings used to be read by the database (upper case found
// the user) or refused by it (urn:uuid: answered 503).
func TestMalformedUserIDsAreNotFound(t *testing.T) {
	t.Parallel()
	s := newServer(t, nil)
	admin, _ := s.newAdmin(t)
	email, id := s.seedUser(t, "victim", models.RoleUser, false)
	victim := s.loggedIn(t, email, testPassword)
	for _, bad := range []string{
		strings.ToUpper(id),
		"urn:uuid:" + id,
		"URN:UUID:" + strings.ToUpper(id),
		"%7B" + id + "%7D", // {…}
		strings.ReplaceAll(id, "-", ""),
		id + "%00",
		"%20" + id,
	} {
		admin.do("PATCH", "/admin/users/"+bad, map[string]any{"disabled": true}).want(t, 404, "not_found")
		admin.do("POST", "/admin/users/"+bad+"/logout-all", nil).want(t, 404, "not_found")
	}
	victim.do("GET", "/me", nil).want(t, 200) // nothing reached the victim
	if s.storedUser(t, id).Disabled {
		t.Fatal("a malformed id disabled the user")
	}
	m := scrape(t, admin)
	m.wantMetric(t, 0, "sessionauth_dependency_errors_total", "dependency", "database")
	admin.do("POST", "/admin/users/"+id+"/logout-all", nil).want(t, 200)
	victim.do("GET", "/me", nil).want(t, 401)
}

// TestLookAlikeEmailsAndInvisibleNames is the attack of a second account
// that reads as someone else's: full-width letters are the same address,
// other scripts and hidden characters are refused, and a name must show
// something.
func TestLookAlikeEmailsAndInvisibleNames(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{"LOGIN_MAX_FAILURES": "100"})
	email := uniqueEmail("ada")
	s.newClient(t).register(email)
	local, domain, _ := strings.Cut(email, "@")

	register := func(email, name string) *response {
		return s.newClient(t).do("POST", "/register", map[string]any{"email": email, "password": testPassword, "name": name})
	}
	register(fullWidth(email), "Ada").want(t, 409, "email_taken")
	register(fullWidth(strings.ToUpper(local))+"@"+domain, "Ada").want(t, 409, "email_taken")
	c := s.newClient(t)
	if got := c.login(fullWidth(email), testPassword).want(t, 200).user().Email; got != email {
		t.Fatalf("got %s, want the full-width login to be %s", got, email)
	}
	for label, lookalike := range map[string]string{
		"cyrillic a":    "\u0430" + email[1:],
		"greek omicron": strings.Replace(email, "o", "\u03bf", 1),
		"bidi override": "\u202e" + email,
		"zero width":    local + "\u200b@" + domain,
		"unicode IDN":   local + "@bücher.example",
	} {
		res := register(lookalike, "Ada").want(t, 400, "validation_failed")
		if res.fields()["email"] == "" {
			t.Errorf("%s: got %s, want email named", label, res.Raw)
		}
		s.newClient(t).login(lookalike, testPassword).want(t, 400, "validation_failed")
	}
	register(local+"-idn@xn--bcher-kva.example", "Ada").want(t, 201) // an IDN in its xn-- form is ASCII

	for label, name := range map[string]string{
		"zero-width space":  "\u200b",
		"word joiners":      "\u2060\u2060",
		"hangul fillers":    "\u3164\u3164",
		"blank braille":     "\u2800",
		"spaces only":       "\u00a0\u3000 ",
		"over 100 (in NFC)": strings.Repeat("e\u0301", 101),
	} {
		res := register(uniqueEmail("name"), name).want(t, 400, "validation_failed")
		if res.fields()["name"] == "" {
			t.Errorf("%s: got %s, want name named", label, res.Raw)
		}
	}
	// NFC: a decomposed é is stored composed, so it counts and compares as one character.
	if got := register(uniqueEmail("nfc"), " Rene\u0301 ").want(t, 201).user().Name; got != "René" {
		t.Fatalf("got name %q, want %q", got, "René")
	}
	if got := register(uniqueEmail("long"), strings.Repeat("e\u0301", 100)).want(t, 201).user().Name; got != strings.Repeat("é", 100) {
		t.Fatalf("got name %q, want 100 composed é", got)
	}

	admin, _ := s.newAdmin(t)
	admin.do("POST", "/admin/users", map[string]any{"email": fullWidth(email), "password": testPassword, "name": "Ada", "role": "admin"}).
		want(t, 409, "email_taken")
	admin.do("POST", "/admin/users", map[string]any{"email": "\u0430" + email[1:], "password": testPassword, "name": "Ada", "role": "admin"}).
		want(t, 400, "validation_failed")
	res := admin.do("GET", "/admin/users?email="+url.QueryEscape(fullWidth(strings.ToUpper(local)+"@")), nil).want(t, 200)
	if users := decodeBody[usersBody](res).Users; len(users) != 1 || users[0].Email != email {
		t.Fatalf("got %s, want the full-width filter to find %s", res.Raw, email)
	}
}
