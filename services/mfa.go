package services

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/sessionauth/api/models"
)

// MFA holds the rules of second factors: TOTP enrolment and removal,
// recovery codes, and checking a code at the second step of a login or at a
// reauthentication.
type MFA struct {
	users    *Users
	auth     *Auth
	sessions *SessionStore
	throttle *Throttle
	keys     *MFAKeys
	issuer   string
	passkeys bool
	now      func() time.Time
}

// MFAOptions are the dependencies and settings of MFA.
type MFAOptions struct {
	Users    *Users
	Auth     *Auth
	Sessions *SessionStore
	Throttle *Throttle
	Keys     *MFAKeys
	Issuer   string           // the name authenticator apps show
	Passkeys bool             // passkeys are on: a login's second step may use one
	Now      func() time.Time // time.Now when nil
}

// NewMFA returns the second-factor service.
func NewMFA(o MFAOptions) *MFA {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &MFA{users: o.Users, auth: o.Auth, sessions: o.Sessions, throttle: o.Throttle, keys: o.Keys, issuer: o.Issuer, passkeys: o.Passkeys,
		now: o.Now}
}

// BeginTOTP makes a new TOTP secret for the user and keeps it, sealed, until
// it is confirmed; mfa_already_enabled while TOTP is on.
func (m *MFA) BeginTOTP(ctx context.Context, userID, email string) (secret, uri string, err error) {
	secret, uri, err = newTOTPKey(m.issuer, email)
	if err != nil {
		return "", "", err
	}
	err = m.users.SetPendingTOTP(ctx, userID, func(u models.User) []byte { return m.keys.seal(u.ID, secret) })
	return secret, uri, err
}

// ConfirmTOTP turns TOTP on when code matches the secret being set up, and
// returns a new set of recovery codes (shown once). When TOTP is the user's
// first second factor every session of theirs ends, failing closed, and
// first is true: the caller gets a new session.
func (m *MFA) ConfirmTOTP(ctx context.Context, userID, code string) (user models.User, codes []string, first bool, err error) {
	codes = newRecoveryCodes()
	hashes := make([]string, len(codes))
	for i, c := range codes {
		hashes[i] = m.keys.recoveryHash(c)
	}
	user, first, err = m.users.EnableTOTP(ctx, userID, func(u models.User) (int64, error) {
		secret, err := m.keys.open(u.ID, u.TOTPPending)
		if err != nil {
			return 0, err
		}
		step, ok := totpStep(secret, code, m.now())
		if !ok {
			return 0, models.ErrInvalidCode
		}
		return step, nil
	}, hashes, m.sessions.RevokeUser)
	if err != nil {
		return models.User{}, nil, false, err
	}
	if !first {
		err = m.sessions.UpdateProfile(ctx, userID, user.Profile())
	}
	return user, codes, first, err
}

// DisableTOTP turns TOTP off (the recovery codes go too when no passkey is
// left) and shows it in every session of the user; not_found when it is off.
func (m *MFA) DisableTOTP(ctx context.Context, userID string) (models.User, error) {
	user, err := m.users.DisableTOTP(ctx, userID)
	if err != nil {
		return models.User{}, err
	}
	return user, m.sessions.UpdateProfile(ctx, userID, user.Profile())
}

// NewRecoveryCodes replaces the user's recovery codes with a new set, shown
// once; the old ones stop working. It needs a second factor to recover.
func (m *MFA) NewRecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	user, err := m.users.FindByID(ctx, userID)
	if err != nil {
		return nil, err
	}
	if !user.HasSecondFactor() {
		return nil, models.Validation(map[string]string{"mfa": "turn on a second factor first"})
	}
	codes := newRecoveryCodes()
	hashes := make([]string, len(codes))
	for i, c := range codes {
		hashes[i] = m.keys.recoveryHash(c)
	}
	return codes, m.users.ReplaceRecoveryCodes(ctx, userID, hashes)
}

// RemoveFactors removes every second factor of the user and ends every
// session of theirs, failing closed (an admin's way back for a user who lost
// every device). It reports whether the user had a factor to remove.
func (m *MFA) RemoveFactors(ctx context.Context, userID string) (models.User, bool, error) {
	return m.users.RemoveFactors(ctx, userID, m.sessions.RevokeUser)
}

// Methods lists the second factors a user can complete a login with.
func (m *MFA) Methods(ctx context.Context, user models.User) ([]string, error) {
	var methods []string
	if user.TOTPEnabled {
		methods = append(methods, models.MethodTOTP)
	}
	if user.PasskeyCount > 0 && m.passkeys {
		methods = append(methods, models.MethodPasskey)
	}
	has, err := m.users.HasRecoveryCodes(ctx, user.ID)
	if err != nil {
		return nil, err
	}
	if has {
		methods = append(methods, models.MethodRecoveryCode)
	}
	return methods, nil
}

// Code is a second-factor proof: a TOTP code or a recovery code.
type Code struct {
	TOTP     string
	Recovery string
}

// AnyCode reads a code that may be either kind: six digits are a TOTP
// code, anything else a recovery code.
func AnyCode(code string) Code {
	code = strings.TrimSpace(code)
	if len(code) == 6 && strings.Trim(code, "0123456789") == "" {
		return Code{TOTP: code}
	}
	return Code{Recovery: code}
}

func (c Code) empty() bool {
	return strings.TrimSpace(c.TOTP) == "" && strings.TrimSpace(c.Recovery) == ""
}

// CompleteLogin checks the second factor of a pending login: a wrong,
// reused or expired code is invalid_code and counts as a failed login for
// the user's email (throttled as passwords are). It returns the user, read
// afresh, and the method used.
func (m *MFA) CompleteLogin(ctx context.Context, userID string, code Code, ip string) (models.User, string, error) {
	user, err := m.users.FindByID(ctx, userID)
	if err != nil {
		if errors.Is(err, models.ErrNotFound) {
			return models.User{}, "", models.ErrNotAuthenticated // deleted meanwhile
		}
		return models.User{}, "", err
	}
	if user.Disabled {
		return models.User{}, "", models.ErrNotAuthenticated
	}
	method, err := m.check(ctx, user, code, ip)
	return user, method, err
}

// Reauthenticate proves the caller recently: the password, plus a code while
// TOTP is on. With passkeys and no TOTP a password alone proves nothing
// (invalid_code): those users reauthenticate with a passkey. It returns the
// second-factor method used, if any.
func (m *MFA) Reauthenticate(ctx context.Context, userID, email, password string, code Code, ip string) (string, error) {
	user, err := m.auth.ProvePassword(ctx, userID, email, password, ip)
	if err != nil {
		return "", err
	}
	if !user.HasSecondFactor() {
		return "", nil
	}
	if !user.TOTPEnabled {
		return "", models.ErrInvalidCode
	}
	return m.check(ctx, user, code, ip)
}

// check verifies code for the user, counting a wrong one as a failed login.
func (m *MFA) check(ctx context.Context, user models.User, code Code, ip string) (string, error) {
	attempt, err := m.throttle.BeginLogin(ctx, user.Email, ip)
	if err != nil {
		return "", err
	}
	method, ok, err := m.verify(ctx, user, code)
	if err != nil {
		attempt.Abandon(ctx) // no verdict: a 503 is not a failed attempt
		return "", err
	}
	if !ok {
		return "", models.OnAccount(user.ID, models.ErrInvalidCode)
	}
	return method, attempt.Succeeded(ctx)
}

func (m *MFA) verify(ctx context.Context, user models.User, code Code) (method string, ok bool, err error) {
	if code.empty() {
		return "", false, nil
	}
	if strings.TrimSpace(code.Recovery) != "" {
		ok, err := m.users.UseRecoveryCode(ctx, user.ID, m.keys.recoveryHash(code.Recovery))
		return models.MethodRecoveryCode, ok, err
	}
	if !user.TOTPEnabled {
		return "", false, nil
	}
	secret, err := m.keys.open(user.ID, user.TOTPSecret)
	if err != nil {
		return "", false, err
	}
	step, ok := totpStep(secret, code.TOTP, m.now())
	if !ok {
		return "", false, nil
	}
	accepted, err := m.users.AcceptTOTPStep(ctx, user.ID, step) // a replay of an accepted step is refused
	return models.MethodTOTP, accepted, err
}

// LoadOrCreateKeyFile returns the key kept at path, making one (32 random
// bytes, hex, readable by the owner only) when there is none: the
// development MFA key, kept so that a restart locks no TOTP user out.
func LoadOrCreateKeyFile(path string) ([]byte, error) {
	if key, err := os.ReadFile(path); err == nil {
		if key = []byte(strings.TrimSpace(string(key))); len(key) >= 32 {
			return key, nil
		}
		return nil, fmt.Errorf("%s holds less than 32 bytes: delete it to make a new key (TOTP users then set TOTP up again)", path)
	} else if !os.IsNotExist(err) {
		return nil, fmt.Errorf("read mfa key: %w", err)
	}
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	key := []byte(fmt.Sprintf("%x", raw))
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("mfa key folder: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if os.IsExist(err) { // another process made it meanwhile
		return LoadOrCreateKeyFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("write mfa key: %w", err)
	}
	if _, err := f.Write(append(key, '\n')); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("write mfa key: %w", err)
	}
	return key, f.Close()
}
