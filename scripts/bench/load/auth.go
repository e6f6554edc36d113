package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// authClient does the few JSON calls of the contract the load needs. Each call uses a new
// connection (no keep-alive), so no request is silently retried on another connection and a
// transport error always belongs to the request that saw it. Cookies are handled by hand: the
// product's cookie is Secure, which a cookie jar would not send over plain http.
type authClient struct {
	base, ua, cookieName string
	register             bool
	hc                   *http.Client
}

func newAuthClient(base, ua string, timeout time.Duration) *authClient {
	return &authClient{
		base: base, ua: ua, cookieName: envOr("SESSION_COOKIE_NAME", ""),
		hc: &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true}},
	}
}

// call is the outcome of one request: status 0 with err set for a transport error.
type call struct {
	start   time.Time
	latency time.Duration
	status  int
	cookie  string // name=value of the session cookie the answer set, if any
	body    []byte
	err     error
}

func (a *authClient) do(method, path, cookie string, payload any, headers ...string) call {
	var body io.Reader
	if payload != nil {
		b, _ := json.Marshal(payload)
		body = bytes.NewReader(b)
	}
	c := call{start: time.Now()}
	req, err := http.NewRequest(method, a.base+path, body)
	if err != nil {
		c.err = err
		return c
	}
	req.Header.Set("User-Agent", a.ua)
	if payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cookie != "" {
		req.Header.Set("Cookie", cookie)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		// a new connection each time: no answer at all (or refused, or a timeout)
		c.latency, c.err = time.Since(c.start), &requestError{err: err}
		return c
	}
	c.body, err = io.ReadAll(resp.Body)
	resp.Body.Close()
	c.latency, c.status = time.Since(c.start), resp.StatusCode
	if err != nil {
		c.status, c.err = 0, &requestError{err: err, gotBytes: true} // cut short: not an answer
	}
	for _, ck := range resp.Cookies() {
		if a.isSessionCookie(ck.Name) && ck.Value != "" && ck.MaxAge >= 0 {
			c.cookie = ck.Name + "=" + ck.Value
		}
	}
	return c
}

// isSessionCookie reports whether name is the product's session cookie:
// SESSION_COOKIE_NAME when set, else either default (__Host-sessionId for a
// Secure cookie, sessionId otherwise).
func (a *authClient) isSessionCookie(name string) bool {
	if a.cookieName != "" {
		return name == a.cookieName
	}
	return name == "__Host-sessionId" || name == "sessionId"
}

func (a *authClient) login(email, password string, headers ...string) call {
	return a.do(http.MethodPost, "/login", "", map[string]string{"email": email, "password": password}, headers...)
}

func (a *authClient) logout(cookie string) call {
	return a.do(http.MethodPost, "/logout", cookie, nil)
}

// ensureUser registers the user (201, or 409 when it exists). A 429 from the per-IP register
// limit is tolerated: the login that follows tells whether the user exists.
func (a *authClient) ensureUser(email, password, name string) error {
	if !a.register {
		return nil
	}
	c := a.do(http.MethodPost, "/register", "", map[string]string{"email": email, "password": password, "name": name})
	switch {
	case c.err != nil:
		return fmt.Errorf("POST /register: %w", c.err)
	case c.status == http.StatusCreated || c.status == http.StatusConflict:
		return nil
	case c.status == http.StatusTooManyRequests:
		fmt.Fprintf(os.Stderr, "load: POST /register %s answered 429 (per-IP limit); trying to log in anyway\n", email)
		return nil
	}
	return fmt.Errorf("POST /register %s answered %d: %s", email, c.status, c.body)
}

// sessionCookie registers (if needed) and logs the user in, returning "name=value".
func (a *authClient) sessionCookie(email, password, name string) (string, error) {
	if err := a.ensureUser(email, password, name); err != nil {
		return "", err
	}
	c := a.login(email, password)
	if c.err != nil {
		return "", fmt.Errorf("POST /login %s: %w", email, c.err)
	}
	if c.status != http.StatusOK || c.cookie == "" {
		return "", fmt.Errorf("POST /login %s answered %d (cookie %q): %s", email, c.status, c.cookie, c.body)
	}
	return c.cookie, nil
}
