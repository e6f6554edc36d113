package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services/commonpasswords"
)

// PasswordHasher hashes and verifies passwords; *Hasher is the real one.
type PasswordHasher interface {
	Hash(ctx context.Context, password string) (string, error)
	Verify(ctx context.Context, password, encoded string) (Verification, error)
	DummyHash() string
}

// Auth holds the rules of registration, login and password proofs.
type Auth struct {
	users    *Users
	hasher   PasswordHasher
	throttle *Throttle
	sessions *SessionStore
	common   *commonpasswords.List
	pacer    *LoginPacer
	log      *slog.Logger
	// verificationRequired refuses a login with the right password while
	// the email is not verified (EMAIL_VERIFICATION_REQUIRED).
	verificationRequired bool
}

// AuthOptions are the dependencies of Auth; every one is required but
// Pacer (nil: a LoginPacer padding by at most MaxLoginPadding).
type AuthOptions struct {
	Users           *Users
	Hasher          PasswordHasher
	Throttle        *Throttle
	Sessions        *SessionStore
	CommonPasswords *commonpasswords.List
	Pacer           *LoginPacer
	Log             *slog.Logger
	// VerificationRequired: a login with the right password answers
	// email_not_verified while the user's email is not verified.
	VerificationRequired bool
}

// NewAuth returns the authentication service.
func NewAuth(o AuthOptions) *Auth {
	if o.Pacer == nil {
		o.Pacer = NewLoginPacer(MaxLoginPadding)
	}
	return &Auth{users: o.Users, hasher: o.Hasher, throttle: o.Throttle, sessions: o.Sessions, common: o.CommonPasswords,
		pacer: o.Pacer, log: o.Log, verificationRequired: o.VerificationRequired}
}

// Registration is the input of Register and of an admin's create.
type Registration struct {
	Email, Name, Password string
	Role                  models.Role
}

// NormalizeEmail returns an email in NFKC, trimmed and lower-cased: the form
// it is stored, looked up and throttled in (full-width "ａｄａ" is "ada").
// EmailProblem then refuses what is not ASCII.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(norm.NFKC.String(email)))
}

// CheckNewPassword refuses a common password or one equal to the email
// (ASVS 6.2.4) as validation_failed on field.
func (a *Auth) CheckNewPassword(field, password, email string) error {
	switch {
	case a.common.Contains(password):
		return models.Validation(map[string]string{field: "is too common; choose a less guessable password"})
	case email != "" && strings.EqualFold(strings.TrimSpace(password), email):
		return models.Validation(map[string]string{field: "must not be your email"})
	}
	return nil
}

// HashNewPassword checks a new password (CheckNewPassword, on field) and
// returns its hash.
func (a *Auth) HashNewPassword(ctx context.Context, field, password, email string) (string, error) {
	if err := a.CheckNewPassword(field, password, email); err != nil {
		return "", err
	}
	return a.hasher.Hash(ctx, password)
}

// Register creates a user with the user role, counting the attempt against
// the client IP. Email and name must be normalised and validated.
func (a *Auth) Register(ctx context.Context, in Registration, ip string) (models.User, error) {
	if err := a.CheckNewPassword("password", in.Password, in.Email); err != nil {
		return models.User{}, err
	}
	if err := a.throttle.BeginRegister(ctx, ip); err != nil {
		return models.User{}, err
	}
	in.Role = models.RoleUser
	return a.create(ctx, in, false)
}

// create stores a new user; verified says whether the email counts as proved.
func (a *Auth) create(ctx context.Context, in Registration, verified bool) (models.User, error) {
	hash, err := a.hasher.Hash(ctx, in.Password)
	if err != nil {
		return models.User{}, err
	}
	return a.users.Create(ctx, NewUser{Email: in.Email, Name: in.Name, Role: in.Role, PasswordHash: hash, Verified: verified})
}

// Login checks email and password. An unknown email, a wrong password and a
// disabled account all answer invalid_credentials, and an unknown email still
// verifies a dummy hash of the current parameters. Every failure is then
// padded to the slowest hash family seen (LoginPacer), so neither an unknown
// email nor a legacy hash (bcrypt, older Argon2id) shows in the time taken.
// On a known account the error also names it (models.AccountOf), for the
// audit log; a refusal by the throttle is a *ThrottledError.
func (a *Auth) Login(ctx context.Context, email, password, ip string) (models.User, error) {
	attempt, err := a.throttle.BeginLogin(ctx, email, ip)
	if err != nil {
		return models.User{}, err
	}
	user, err := a.users.FindByEmail(ctx, email)
	hash := user.PasswordHash
	if errors.Is(err, models.ErrNotFound) {
		hash = a.hasher.DummyHash()
	} else if err != nil {
		attempt.Abandon(ctx) // no verdict: a 503 is not a failed login
		return models.User{}, err
	}
	v, err := a.hasher.Verify(ctx, password, hash)
	if err != nil {
		var coded *models.Error
		if errors.As(err, &coded) {
			attempt.Abandon(ctx)
			return models.User{}, err
		}
		a.log.ErrorContext(ctx, "stored password hash unreadable", "user_id", user.ID, "err", err)
		v.OK = false
	}
	a.pacer.Observe(v.Family, v.Took)
	if !v.OK || user.ID == "" || user.Disabled {
		a.pacer.Wait(ctx, v.Took) // after the slot is released: a wait costs no CPU
		// The account, when there is one, is for the audit log only.
		return models.User{}, models.OnAccount(user.ID, models.ErrInvalidCredentials)
	}
	if err := attempt.Succeeded(ctx); err != nil {
		return models.User{}, err
	}
	if v.Rehash {
		a.upgradeHash(ctx, user.ID, password)
	}
	if a.verificationRequired && !user.EmailVerified() {
		return models.User{}, models.ErrEmailNotVerified
	}
	return user, nil
}

// upgradeHash moves a bcrypt (or older-parameter) hash to Argon2id; a failure
// is logged and retried at the next login.
func (a *Auth) upgradeHash(ctx context.Context, userID, password string) {
	hash, err := a.hasher.Hash(ctx, password)
	if err == nil {
		err = a.users.Rehash(ctx, userID, hash)
	}
	if err != nil {
		a.log.WarnContext(ctx, "password rehash failed", "user_id", userID, "err", err)
	}
}

// ProvePassword checks the caller's password for /password and /reauth;
// a wrong one is invalid_current_password and counts as a failed login.
func (a *Auth) ProvePassword(ctx context.Context, userID, email, password, ip string) (models.User, error) {
	attempt, err := a.throttle.BeginLogin(ctx, email, ip)
	if err != nil {
		return models.User{}, err
	}
	user, err := a.users.FindByID(ctx, userID)
	if err != nil {
		attempt.Abandon(ctx) // no verdict: a 503 is not a failed proof
		return models.User{}, err
	}
	v, err := a.hasher.Verify(ctx, password, user.PasswordHash)
	if err != nil {
		var coded *models.Error
		if errors.As(err, &coded) {
			attempt.Abandon(ctx)
			return models.User{}, err
		}
		v.OK = false
	}
	a.pacer.Observe(v.Family, v.Took)
	if !v.OK || user.Disabled {
		return models.User{}, models.ErrInvalidCurrentPassword
	}
	return user, attempt.Succeeded(ctx)
}

// ChangePassword proves the current password, stores the new one and
// revokes every session of the user, failing closed: when Redis cannot
// confirm the revocation, nothing is stored. It returns the user as stored,
// with whose session version the caller's replacement session is created.
func (a *Auth) ChangePassword(ctx context.Context, userID, email, current, next, ip string) (models.User, error) {
	if err := a.CheckNewPassword("new_password", next, email); err != nil {
		return models.User{}, err
	}
	if _, err := a.ProvePassword(ctx, userID, email, current, ip); err != nil {
		return models.User{}, err
	}
	hash, err := a.hasher.Hash(ctx, next) // checked above, before the proof
	if err != nil {
		return models.User{}, err
	}
	return a.users.ChangePassword(ctx, userID, hash, a.sessions.RevokeUser)
}

// ValidateRegistration checks a registration made outside HTTP (the
// create-user command) with the contract's rules.
func ValidateRegistration(in Registration) error {
	n := utf8.RuneCountInString(in.Password)
	switch {
	case EmailProblem(in.Email) != "":
		return fmt.Errorf("email %q %s", in.Email, EmailProblem(in.Email))
	case NameProblem(in.Name) != "":
		return fmt.Errorf("name %s", NameProblem(in.Name))
	case !in.Role.Valid():
		return fmt.Errorf("role %q is not valid (want user or admin)", in.Role)
	case n < 8 || n > 128:
		return errors.New("password must be 8 to 128 characters")
	case !PlainText(in.Password):
		return errors.New("password " + PlainTextProblem)
	}
	return nil
}
