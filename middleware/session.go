package middleware

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/boj/redistore"
	ginsessions "github.com/gin-contrib/sessions"
	"github.com/gin-gonic/gin"
	"github.com/gomodule/redigo/redis"
	"github.com/gorilla/securecookie"
	gsessions "github.com/gorilla/sessions"

	"github.com/sessionauth/api/models"
)

// recordKey is the one value a session holds: the typed record.
const (
	recordKey       = "record"
	currentKey      = "current_session"
	maxUserAgentLen = 256
)

// SessionRepository writes session records atomically (services.SessionStore).
// Reads go through gin-contrib/sessions; writes cannot (see Login).
type SessionRepository interface {
	Create(ctx context.Context, rec *models.Session, sessionVersion int64) error
	Touch(ctx context.Context, rec *models.Session) error
	MarkAuthenticated(ctx context.Context, rec *models.Session) error
	Delete(ctx context.Context, rec *models.Session) error
	DeleteByID(ctx context.Context, id string) error
}

// SessionVersions advances a user's session version in the database
// (services.Users): see Login.
type SessionVersions interface {
	AdvanceSessionVersion(ctx context.Context, userID string, from, to int64) (bool, error)
}

// StoreRedis is the Redis access of the session store (services.Redis):
// gin-contrib/sessions' Redis store borrows from Pool, and every read takes a
// permit from Acquire first, so it waits in bounded time like every borrower.
type StoreRedis interface {
	Pool() *redis.Pool
	Acquire(ctx context.Context) (release func(), err error)
}

// CookieOptions are the session cookie's attributes, from config.
type CookieOptions struct {
	Name     string
	Secure   bool
	SameSite http.SameSite
	Domain   string
}

// redisStore adapts redistore to gin-contrib/sessions, as its redis package
// does, but without giving up when Redis is down at start: its
// NewStoreWithPool returns no store when the first PING fails.
type redisStore struct{ *redistore.RediStore }

func (s redisStore) Options(o ginsessions.Options) { s.RediStore.Options = o.ToGorillaOptions() }

// newGinStore returns the gin-contrib/sessions Redis store on pool: keys
// under prefix, records as our typed JSON, cookies signed with the first
// secret and verified with every one (rotation), valid for at most absolute.
func newGinStore(pool *redis.Pool, prefix string, absolute time.Duration, secrets [][]byte) (ginsessions.Store, []securecookie.Codec) {
	keyPairs := make([][]byte, 0, 2*len(secrets))
	for _, secret := range secrets {
		keyPairs = append(keyPairs, secret, nil) // signed, not encrypted: the cookie holds only the id
	}
	rs, _ := redistore.NewRediStoreWithPool(pool, keyPairs...) // a failed first PING is not fatal: it heals
	rs.SetKeyPrefix(prefix)
	rs.SetSerializer(recordSerializer{})
	rs.SetMaxAge(int(absolute.Seconds()))
	for _, codec := range rs.Codecs {
		// The cookie carries one string: JSON costs a fraction of gob's
		// per-call decoder on the hot path.
		if sc, ok := codec.(*securecookie.SecureCookie); ok {
			sc.SetSerializer(securecookie.JSONEncoder{})
		}
	}
	return redisStore{rs}, rs.Codecs
}

// recordSerializer stores the session as JSON of models.Session, so numbers
// stay integers and nothing but the record can be in it.
type recordSerializer struct{}

// errBadRecord marks a record that does not decode: treated as no session.
var errBadRecord = errors.New("session record does not decode")

func (recordSerializer) Serialize(s *gsessions.Session) ([]byte, error) {
	rec, ok := s.Values[recordKey].(*models.Session)
	if !ok {
		return nil, errBadRecord
	}
	return json.Marshal(rec)
}

func (recordSerializer) Deserialize(d []byte, s *gsessions.Session) error {
	rec := new(models.Session)
	if err := json.Unmarshal(d, rec); err != nil {
		return fmt.Errorf("%w: %v", errBadRecord, err)
	}
	s.Values[recordKey] = rec
	return nil
}

// SessionManager owns the session cookie and record on the request path. It
// is the only code that touches gin-contrib/sessions.
type SessionManager struct {
	store     ginsessions.Store
	codecs    []securecookie.Codec
	redis     StoreRedis
	records   SessionRepository
	versions  SessionVersions
	cookie    CookieOptions
	lifetimes models.SessionLifetimes
	touch     time.Duration
	now       func() time.Time
	// pendingTimeout is how long a session waits for its second factor.
	pendingTimeout time.Duration
}

// SessionManagerOptions configure a SessionManager.
type SessionManagerOptions struct {
	Redis     StoreRedis
	Records   SessionRepository // writes records atomically (services.SessionStore)
	Versions  SessionVersions   // heals a revocation whose database change was not stored
	KeyPrefix string            // of session keys, as Records writes them
	Secrets   [][]byte          // the signing secret first, then older ones still accepted
	Cookie    CookieOptions
	Lifetimes models.SessionLifetimes
	Touch     time.Duration // activity is recorded at most this often
	// PendingTimeout is how long a half logged-in session waits for its
	// second factor (MFA_PENDING_TIMEOUT).
	PendingTimeout time.Duration
	Now            func() time.Time // time.Now when nil
}

// NewSessionManager returns the session manager.
func NewSessionManager(o SessionManagerOptions) *SessionManager {
	if o.Now == nil {
		o.Now = time.Now
	}
	store, codecs := newGinStore(o.Redis.Pool(), o.KeyPrefix, o.Lifetimes.Absolute, o.Secrets)
	return &SessionManager{store: store, codecs: codecs, redis: o.Redis, records: o.Records, versions: o.Versions, cookie: o.Cookie,
		lifetimes: o.Lifetimes, touch: o.Touch, now: o.Now, pendingTimeout: o.PendingTimeout}
}

// Middleware installs gin-contrib/sessions for the request.
func (m *SessionManager) Middleware() gin.HandlerFunc {
	return ginsessions.Sessions(m.cookie.Name, m.store)
}

// RequireAuth answers 401 not_authenticated without a live session, and 503
// when Redis cannot say (never 401: that would log the SPA out).
// A pending session (second factor not given yet) is 401 mfa_required.
func (m *SessionManager) RequireAuth() gin.HandlerFunc {
	return m.require(func(rec *models.Session) error {
		if rec.Pending {
			return models.ErrMFARequired
		}
		return nil
	})
}

// RequirePending admits only a pending session: the second step of a login.
// Anything else is 401 not_authenticated.
func (m *SessionManager) RequirePending() gin.HandlerFunc {
	return m.require(func(rec *models.Session) error {
		if !rec.Pending {
			return models.ErrNotAuthenticated
		}
		return nil
	})
}

// require loads the session and lets check refuse it; no session is 401
// not_authenticated, Redis that cannot say is 503.
func (m *SessionManager) require(check func(*models.Session) error) gin.HandlerFunc {
	return func(c *gin.Context) {
		rec, err := m.load(c)
		if err == nil && rec == nil {
			err = models.ErrNotAuthenticated
		}
		if err == nil {
			err = check(rec)
		}
		if err != nil {
			_ = c.Error(err)
			c.Abort()
			return
		}
		c.Next()
	}
}

// Optional loads the session when there is one (for logout), answering 503
// only when Redis cannot say.
func (m *SessionManager) Optional() gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, err := m.load(c); err != nil {
			_ = c.Error(err)
			c.Abort()
			return
		}
		c.Next()
	}
}

// CurrentSession returns the caller's session record, or nil.
func CurrentSession(c *gin.Context) *models.Session {
	rec, _ := c.Value(currentKey).(*models.Session)
	return rec
}

// load reads the session through gin-contrib/sessions (cookie decode, one
// GET), tells a bad cookie (no session) from an unreachable store (503),
// enforces both timeouts and slides the idle expiry at most once per touch
// interval.
func (m *SessionManager) load(c *gin.Context) (*models.Session, error) {
	if m.presentedCookie(c) == nil {
		return nil, nil
	}
	release, err := m.redis.Acquire(c.Request.Context())
	if err != nil {
		return nil, models.Unavailable("redis", err)
	}
	// gin-contrib/sessions swallows store errors; gorilla's per-request
	// registry keeps them, so ask it first.
	_, err = gsessions.GetRegistry(c.Request).Get(m.store, m.cookie.Name)
	release()
	var cookieErr securecookie.Error
	switch {
	case errors.As(err, &cookieErr), errors.Is(err, errBadRecord):
		return nil, nil
	case err != nil:
		return nil, models.Unavailable("redis", err)
	}
	session := ginsessions.Default(c)
	rec, _ := session.Get(recordKey).(*models.Session)
	if rec == nil {
		return nil, nil
	}
	rec.ID = session.ID()
	now := m.now()
	if !rec.Live(now, m.lifetimes) {
		return nil, nil
	}
	if now.Sub(time.Unix(rec.LastSeenAt, 0)) >= m.touch {
		rec.LastSeenAt = now.Unix()
		// A failed slide is retried on the next request; the read stands.
		_ = m.records.Touch(c.Request.Context(), rec)
	}
	c.Set(currentKey, rec)
	c.Set(currentUserID, rec.UserID)
	return rec, nil
}

// Login starts a new session for user: the old session of the request, if
// any, is deleted and a new id is minted, never reused (redistore would reuse
// a presented id whose key is gone), so no cookie from before login
// authenticates after it. The record is written by our atomic script (record
// and per-user index in one step) and the cookie signed with the store's codecs.
func (m *SessionManager) Login(c *gin.Context, user models.User, opts LoginOptions) error {
	if err := m.dropPresented(c); err != nil {
		return err
	}
	now := m.now()
	rec := &models.Session{
		UserID: user.ID, Role: user.Role, UserCreatedAt: user.CreatedAt.Unix(),
		CreatedAt: now.Unix(), LastSeenAt: now.Unix(), AuthAt: now.Unix(), AbsoluteAt: now.Add(m.lifetimes.Absolute).Unix(),
		IP: c.ClientIP(), UserAgent: truncateUTF8(c.Request.UserAgent(), maxUserAgentLen), Forget: opts.Forget,
	}
	if opts.Pending {
		rec.Pending, rec.AuthAt, rec.AbsoluteAt = true, 0, now.Add(m.pendingTimeout).Unix()
	}
	rec.SetProfile(user.Profile())
	if err := m.create(c.Request.Context(), rec, user.SessionVersion); err != nil {
		return err
	}
	encoded, err := securecookie.EncodeMulti(m.cookie.Name, rec.ID, m.codecs...)
	if err != nil {
		return fmt.Errorf("sign session cookie: %w", err)
	}
	maxAge := int(rec.AbsoluteAt - now.Unix()) // the absolute lifetime, or the pending one
	if rec.Forget {
		maxAge = 0 // no Max-Age nor Expires: the cookie ends with the browser
	}
	http.SetCookie(c.Writer, m.newCookie(encoded, maxAge))
	c.Set(currentKey, rec)
	c.Set(currentUserID, rec.UserID)
	return nil
}

// LoginOptions shape the session Login starts.
type LoginOptions struct {
	// Forget is a login without "remember": the cookie ends with the
	// browser; the server-side lifetimes are the same.
	Forget bool
	// Pending is the first step of a login with a second factor: the
	// session lives the pending timeout and proves nothing but the password
	// until the second step replaces it with a full one.
	Pending bool
}

// create stores rec. A login refused only because the user's sessions were
// revoked for a version newer than the row it read is either racing a change
// (the row moves to that version when the change commits) or follows a
// change whose revocation ran but whose commit failed (the row stays behind
// the mark forever). Advancing the row from the version read to the mark,
// only if it still holds the version read, tells them apart: it succeeds only
// in the second case (the first waits on the change's row lock, then finds
// the row moved), and then the login goes on, so nobody is locked out.
func (m *SessionManager) create(ctx context.Context, rec *models.Session, version int64) error {
	err := m.records.Create(ctx, rec, version)
	var revoked *models.RevokedVersionError
	if !errors.As(err, &revoked) || m.versions == nil {
		return err
	}
	advanced, aerr := m.versions.AdvanceSessionVersion(ctx, rec.UserID, version, revoked.Mark)
	if aerr != nil || !advanced {
		return cmp.Or(aerr, err)
	}
	return m.records.Create(ctx, rec, revoked.Mark)
}

// presentedCookie is the request's session cookie. A request that carries it
// more than once carries none: which one a server reads first is not what a
// browser meant, and a sibling subdomain could set a second to shadow the
// first (a forced logout or a planted session).
func (m *SessionManager) presentedCookie(c *gin.Context) *http.Cookie {
	cookies := c.Request.CookiesNamed(m.cookie.Name)
	if len(cookies) != 1 {
		return nil
	}
	return cookies[0]
}

// dropPresented deletes the session the request came with, known by its
// loaded record or only by a cookie that still verifies.
func (m *SessionManager) dropPresented(c *gin.Context) error {
	if rec := CurrentSession(c); rec != nil {
		return m.records.Delete(c.Request.Context(), rec)
	}
	cookie := m.presentedCookie(c)
	if cookie == nil {
		return nil
	}
	var id string
	if securecookie.DecodeMulti(m.cookie.Name, cookie.Value, &id, m.codecs...) != nil || id == "" {
		return nil
	}
	return m.records.DeleteByID(c.Request.Context(), id)
}

// Logout deletes the caller's session, if any, and expires the cookie.
func (m *SessionManager) Logout(c *gin.Context) error {
	if err := m.dropPresented(c); err != nil {
		return err
	}
	m.ExpireCookie(c)
	return nil
}

// MarkAuthenticated records that the caller just proved the password.
func (m *SessionManager) MarkAuthenticated(c *gin.Context) error {
	rec := CurrentSession(c)
	if rec == nil {
		return models.ErrNotAuthenticated
	}
	rec.AuthAt = m.now().Unix()
	return m.records.MarkAuthenticated(c.Request.Context(), rec)
}

// ExpireCookie expires the session cookie, repeating every attribute.
func (m *SessionManager) ExpireCookie(c *gin.Context) {
	http.SetCookie(c.Writer, m.newCookie("", -1))
}

func (m *SessionManager) newCookie(value string, maxAge int) *http.Cookie {
	return gsessions.NewCookie(m.cookie.Name, value, &gsessions.Options{
		Path: "/", Domain: m.cookie.Domain, MaxAge: maxAge,
		Secure: m.cookie.Secure, HttpOnly: true, SameSite: m.cookie.SameSite,
	})
}

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
