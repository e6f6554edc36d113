package tests

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
)

// client is one browser-like user agent with its own cookie jar.
type client struct {
	t    *testing.T
	srv  *testServer
	http *http.Client
}

// response is an answer with its JSON body decoded loosely into Body (for
// comparisons) and, on demand, into the contract's types (user, sessions, fields).
type response struct {
	t      *testing.T
	Status int
	Header http.Header
	Body   map[string]any
	Raw    string
}

// userBody is the contract's user object.
type userBody struct {
	ID            string `json:"id"`
	Email         string `json:"email"`
	Name          string `json:"name"`
	Role          string `json:"role"`
	Disabled      bool   `json:"disabled"`
	EmailVerified bool   `json:"email_verified"`
	CreatedAt     string `json:"created_at"`
	MFA           struct {
		TOTP     bool `json:"totp"`
		Passkeys int  `json:"passkeys"`
	} `json:"mfa"`
}

// sessionBody is the contract's session object in listings.
type sessionBody struct {
	ID         string `json:"id"`
	CreatedAt  string `json:"created_at"`
	LastSeenAt string `json:"last_seen_at"`
	ExpiresAt  string `json:"expires_at"`
	IP         string `json:"ip"`
	UserAgent  string `json:"user_agent"`
	Current    bool   `json:"current"`
}

// errorBody is the contract's error shape.
type errorBody struct {
	Error   string            `json:"error"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields"`
}

// decodeBody decodes the answer's JSON into a T, failing the test when the
// body does not have T's shape.
func decodeBody[T any](r *response) T {
	r.t.Helper()
	var v T
	if err := json.Unmarshal([]byte(r.Raw), &v); err != nil {
		r.t.Fatalf("got body %s, want %T: %v", r.Raw, v, err)
	}
	return v
}

func (s *testServer) newClient(t *testing.T) *client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &client{t: t, srv: s, http: &http.Client{
		Jar:           jar,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends method path with body encoded as JSON (a string is sent as is);
// headers are name, value pairs.
func (c *client) do(method, path string, body any, headers ...string) *response {
	c.t.Helper()
	var reader *bytes.Reader
	switch b := body.(type) {
	case nil:
		reader = bytes.NewReader(nil)
	case string:
		reader = bytes.NewReader([]byte(b))
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		reader = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, c.srv.URL+path, reader)
	if err != nil {
		c.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	out := &response{t: c.t, Status: res.StatusCode, Header: res.Header, Raw: mustReadAll(c.t, res.Body)}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		_ = json.Unmarshal([]byte(out.Raw), &out.Body)
	}
	validateAgainstOpenAPI(c.t, req, out)
	return out
}

// want fails the test unless the status (and, for errors, the code) match.
func (r *response) want(t *testing.T, status int, code ...string) *response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got status %d, want %d; body %s", r.Status, status, r.Raw)
	}
	if len(code) > 0 && r.Body["error"] != code[0] {
		t.Fatalf("got error %v, want %s; body %s", r.Body["error"], code[0], r.Raw)
	}
	return r
}

// user returns the "user" object of the body.
func (r *response) user() userBody {
	r.t.Helper()
	return decodeBody[struct {
		User userBody `json:"user"`
	}](r).User
}

// fields returns the "fields" of a validation_failed answer.
func (r *response) fields() map[string]string {
	r.t.Helper()
	return decodeBody[errorBody](r).Fields
}

// register creates and logs in a user through the API.
func (c *client) register(email string) userBody {
	c.t.Helper()
	return c.do("POST", "/register", map[string]any{"email": email, "password": testPassword, "name": "Test User"}).want(c.t, 201).user()
}

func (c *client) login(email, password string) *response {
	c.t.Helper()
	return c.do("POST", "/login", map[string]any{"email": email, "password": password})
}

// sessionCookie returns the session cookie the jar holds, or nil.
func (c *client) sessionCookie() *http.Cookie {
	u, _ := url.Parse(c.srv.URL)
	for _, ck := range c.http.Jar.Cookies(u) {
		if ck.Name == c.srv.Config.Cookie.Name {
			return ck
		}
	}
	return nil
}

// setSessionCookie plants value as the session cookie.
func (c *client) setSessionCookie(value string) {
	u, _ := url.Parse(c.srv.URL)
	c.http.Jar.SetCookies(u, []*http.Cookie{{Name: c.srv.Config.Cookie.Name, Value: value, Path: "/"}})
}

// registeredClients registers n users, each logged in with a client of its own.
func (s *testServer) registeredClients(t *testing.T, n int, name string) ([]*client, []string) {
	t.Helper()
	clients := make([]*client, n)
	emails := make([]string, n)
	for i := range clients {
		clients[i] = s.newClient(t)
		emails[i] = uniqueEmail(name)
		clients[i].register(emails[i])
	}
	return clients, emails
}

// syncBuffer collects the server's log lines safely across goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// usersBody is the admin listing.
type usersBody struct {
	Users []userBody `json:"users"`
	Total int        `json:"total"`
}
