package models

import (
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"
)

// Session is the record kept in Redis for one login, as compact JSON. It holds
// only what the auth middleware and /me need: the user's profile copy, the
// lifetimes and the device of the login; never a password hash. The id is the
// cookie's, so it is not stored in the record itself.
type Session struct {
	ID            string `json:"-"`
	UserID        string `json:"u"`
	Email         string `json:"e"`
	Name          string `json:"n"`
	EmailVerified bool   `json:"ev,omitempty"`
	TOTP          bool   `json:"mt,omitempty"`
	Passkeys      int    `json:"mp,omitempty"`
	// ProfileVersion is the version of the profile copy above (User.ProfileVersion).
	ProfileVersion int64  `json:"pv,omitempty"`
	Role           Role   `json:"r"`
	UserCreatedAt  int64  `json:"uc"`
	CreatedAt      int64  `json:"c"` // unix seconds of the login
	LastSeenAt     int64  `json:"s"` // last recorded activity
	AuthAt         int64  `json:"a"` // last time the password was proved
	AbsoluteAt     int64  `json:"x"` // absolute deadline
	IP             string `json:"ip,omitempty"`
	UserAgent      string `json:"ua,omitempty"`
	// Pending marks a session that proved the password and waits for the
	// second factor: it authenticates nothing but that step.
	Pending bool `json:"pd,omitempty"`
	// Forget is a login without "remember": its cookie ends with the browser,
	// and so does every cookie re-issued for it (a password change).
	Forget bool `json:"fg,omitempty"`
}

// RevokedVersionError refuses a session for a login that read a user row
// older than the user's last revocation (a password, role or disabled
// change): Mark is the version revoked. It is an invalid_credentials.
type RevokedVersionError struct{ Mark int64 }

func (e *RevokedVersionError) Error() string {
	return fmt.Sprintf("sessions revoked for session version %d", e.Mark)
}

// Unwrap makes it an invalid_credentials for the error mapper.
func (e *RevokedVersionError) Unwrap() error { return ErrInvalidCredentials }

// SessionLifetimes are the two timeouts of the contract.
type SessionLifetimes struct {
	Idle     time.Duration
	Absolute time.Duration
}

// ExpiresAt is the earlier of the idle and the absolute deadline.
func (s *Session) ExpiresAt(l SessionLifetimes) time.Time {
	idle := time.Unix(s.LastSeenAt, 0).Add(l.Idle)
	abs := time.Unix(s.AbsoluteAt, 0)
	if idle.Before(abs) {
		return idle
	}
	return abs
}

// Live reports whether the session is within both timeouts at now.
func (s *Session) Live(now time.Time, l SessionLifetimes) bool {
	return now.Before(s.ExpiresAt(l))
}

// User returns the profile copy as a user. It holds the fields /me returns.
func (s *Session) User() User {
	u := User{ID: s.UserID, Email: s.Email, Name: s.Name, Role: s.Role, CreatedAt: time.Unix(s.UserCreatedAt, 0).UTC(),
		TOTPEnabled: s.TOTP, PasskeyCount: s.Passkeys, ProfileVersion: s.ProfileVersion}
	if s.EmailVerified {
		verified := u.CreatedAt // the time is not kept in the session, only the fact
		u.EmailVerifiedAt = &verified
	}
	return u
}

// SetProfile copies p into the session.
func (s *Session) SetProfile(p Profile) {
	s.Email, s.Name, s.EmailVerified, s.TOTP, s.Passkeys, s.ProfileVersion = p.Email, p.Name, p.EmailVerified, p.TOTP, p.Passkeys, p.Version
}

// Handle is the session's opaque id in GET /sessions, derived from ID only
// where a listing or a revocation needs it (never on the /me path).
func (s *Session) Handle() string { return SessionHandle(s.ID) }

// SessionHandle is the opaque id of a session in GET /sessions: a one-way
// digest of the session id, so the id cannot be derived from it. Deriving it
// rather than storing it saves its bytes in every record.
func SessionHandle(id string) string {
	sum := sha256.Sum256([]byte("session-handle:" + id))
	return base64.RawURLEncoding.EncodeToString(sum[:16])
}
