package services

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/sessionauth/api/models"
)

// Passkeys holds the rules of WebAuthn credentials (go-webauthn): adding,
// listing and removing them, the passwordless login, the second step of a
// password login and a recent proof. Every ceremony's challenge is kept in
// Redis for 5 minutes and taken once, found again by the challenge the
// browser signed. Every failed ceremony is invalid_code.
type Passkeys struct {
	relyingParty *webauthn.WebAuthn
	users        *Users
	sessions     *SessionStore
	throttle     *Throttle
	redis        *Redis
	// verificationRequired refuses a passwordless login while the email is
	// not verified, as a password login is (EMAIL_VERIFICATION_REQUIRED).
	verificationRequired bool
	now                  func() time.Time
}

// PasskeysOptions are the relying party and the dependencies of Passkeys.
type PasskeysOptions struct {
	RPID                 string   // a domain, which every origin is on
	RPName               string   // the name authenticators show
	Origins              []string // at least one
	Users                *Users
	Sessions             *SessionStore
	Throttle             *Throttle
	Redis                *Redis
	VerificationRequired bool
	Now                  func() time.Time // time.Now when nil
}

// NewPasskeys returns the passkey service; an invalid relying party is an error.
func NewPasskeys(o PasskeysOptions) (*Passkeys, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	required := true
	rp, err := webauthn.New(&webauthn.Config{
		RPID: o.RPID, RPDisplayName: o.RPName, RPOrigins: o.Origins,
		AttestationPreference: protocol.PreferNoAttestation,
		// A discoverable credential, so the login needs no email; user
		// verification everywhere, so a passkey alone is two factors.
		AuthenticatorSelection: protocol.AuthenticatorSelection{ResidentKey: protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: &required, UserVerification: protocol.VerificationRequired},
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Enforce: true, Timeout: challengeTTL, TimeoutUVD: challengeTTL},
			Registration: webauthn.TimeoutConfig{Enforce: true, Timeout: challengeTTL, TimeoutUVD: challengeTTL},
		},
		// No extension is asked for or relied on; password managers add
		// outputs nobody asked for, which must not fail a ceremony.
		ExtensionsUnsolicitedOutputPolicy: protocol.UnsolicitedOutputPolicyIgnore,
	})
	if err != nil {
		return nil, fmt.Errorf("passkeys: %w", err)
	}
	return &Passkeys{relyingParty: rp, users: o.Users, sessions: o.Sessions, throttle: o.Throttle, redis: o.Redis,
		verificationRequired: o.VerificationRequired, now: o.Now}, nil
}

// BeginRegistration returns the creation options (the publicKey member) for
// a new passkey of the user: resident key and user verification required,
// the user's passkeys excluded. validation_failed at models.MaxPasskeys.
func (p *Passkeys) BeginRegistration(ctx context.Context, userID string) (protocol.PublicKeyCredentialCreationOptions, error) {
	owner, err := p.owner(ctx, userID)
	if err != nil {
		return protocol.PublicKeyCredentialCreationOptions{}, err
	}
	if len(owner.keys) >= models.MaxPasskeys {
		return protocol.PublicKeyCredentialCreationOptions{}, errTooManyPasskeys
	}
	exclude := webauthn.Credentials(owner.WebAuthnCredentials()).CredentialDescriptors()
	creation, session, err := p.relyingParty.BeginRegistration(owner, webauthn.WithExclusions(exclude))
	if err != nil {
		return protocol.PublicKeyCredentialCreationOptions{}, fmt.Errorf("begin passkey registration: %w", err)
	}
	return creation.Response, p.keep(ctx, ceremony{Kind: ceremonyRegister, UserID: userID, Session: *session})
}

// NewPasskey is a finished registration to store.
type NewPasskey struct {
	Name       string // normalised; "" for the default
	Credential []byte // the PublicKeyCredential as JSON
}

// FinishRegistration verifies the credential created for the user's own
// registration challenge and stores it. As the user's first second factor
// it ends every session of the user, failing closed, and first is true: the
// caller gets a new session. invalid_code when it does not verify.
func (p *Passkeys) FinishRegistration(ctx context.Context, userID string, in NewPasskey) (user models.User, pk models.Passkey, first bool, err error) {
	parsed, err := protocol.ParseCredentialCreationResponseBytes(in.Credential)
	if err != nil {
		return user, pk, false, models.ErrInvalidCode
	}
	begun, err := p.take(ctx, parsed.Response.CollectedClientData.Challenge, ceremonyRegister, userID)
	if err != nil {
		return user, pk, false, err
	}
	owner, err := p.owner(ctx, userID)
	if err != nil {
		return user, pk, false, err
	}
	cred, err := p.relyingParty.CreateCredential(owner, begun.Session, parsed)
	if err != nil {
		return user, pk, false, models.ErrInvalidCode
	}
	pk = newPasskey(cred, in.Name, p.now())
	user, first, err = p.users.AddPasskey(ctx, userID, pk, p.sessions.RevokeUser)
	if err == nil && !first {
		err = p.sessions.UpdateProfile(ctx, userID, user.Profile())
	}
	return user, pk, first, err
}

// List returns the user's passkeys, newest first.
func (p *Passkeys) List(ctx context.Context, userID string) ([]models.Passkey, error) {
	return p.users.ListPasskeys(ctx, userID)
}

// Delete removes the user's passkey id and shows it in every session of the
// user; not_found for anything that is not one of theirs.
func (p *Passkeys) Delete(ctx context.Context, userID, id string) (models.User, models.Passkey, error) {
	user, removed, err := p.users.DeletePasskey(ctx, userID, id)
	if err != nil {
		return user, removed, err
	}
	return user, removed, p.sessions.UpdateProfile(ctx, userID, user.Profile())
}

// BeginLogin returns the request options (the publicKey member) of a
// passwordless login with a discoverable credential, user verification
// required. At most 30 a minute per client IP, then too_many_requests.
func (p *Passkeys) BeginLogin(ctx context.Context, ip string) (protocol.PublicKeyCredentialRequestOptions, error) {
	if err := p.throttle.BeginPasskeyLogin(ctx, ip); err != nil {
		return protocol.PublicKeyCredentialRequestOptions{}, err
	}
	assertion, session, err := p.relyingParty.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return protocol.PublicKeyCredentialRequestOptions{}, fmt.Errorf("begin passkey login: %w", err)
	}
	return assertion.Response, p.keep(ctx, ceremony{Kind: ceremonyLogin, Session: *session})
}

// FinishLogin verifies an assertion for a login challenge and returns its
// user. With pendingUserID (a pending session's user) it completes that
// user's second step, and only with their own credential. It is refused
// exactly when a password login would be: a disabled account is
// invalid_credentials (not_authenticated at a pending session), an
// unverified email while verification is required email_not_verified, a
// throttled email too_many_requests. A failure on a known account counts as
// a failed login for its email and names it (models.AccountOf).
func (p *Passkeys) FinishLogin(ctx context.Context, credential []byte, pendingUserID, ip string) (models.User, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credential)
	if err != nil {
		return models.User{}, models.ErrInvalidCode
	}
	begun, err := p.take(ctx, parsed.Response.CollectedClientData.Challenge, ceremonyLogin, "")
	if err != nil {
		return models.User{}, err
	}
	owner, credentialOwner, err := p.loginSubject(ctx, parsed.RawID, pendingUserID)
	if err != nil {
		return models.User{}, err
	}
	attempt, err := p.assert(ctx, owner, ip, func() (*webauthn.Credential, error) {
		if credentialOwner != owner.user.ID {
			return nil, errors.New("another user's credential")
		}
		_, cred, err := p.relyingParty.ValidatePasskeyLogin(func([]byte, []byte) (webauthn.User, error) { return owner, nil },
			begun.Session, parsed)
		return cred, err
	})
	if err != nil {
		return models.User{}, err
	}
	user := owner.user
	switch {
	case user.Disabled && pendingUserID != "":
		return models.User{}, models.ErrNotAuthenticated
	case user.Disabled: // after the assertion verified, as a password login does
		return models.User{}, models.OnAccount(user.ID, models.ErrInvalidCredentials)
	}
	if err := attempt.Succeeded(ctx); err != nil {
		return models.User{}, err
	}
	if pendingUserID == "" && p.verificationRequired && !user.EmailVerified() {
		return models.User{}, models.ErrEmailNotVerified
	}
	return user, nil
}

// loginSubject returns the account a login attempt with credentialID is on,
// with its passkeys, and the id of the credential's owner ("" when nobody's):
// the pending session's user when there is one (whose credential it must
// be), else the owner. An unknown credential without a pending session is
// invalid_code, with no account to count it on.
func (p *Passkeys) loginSubject(ctx context.Context, credentialID []byte, pendingUserID string) (passkeyOwner, string, error) {
	credentialOwner, err := p.users.PasskeyOwner(ctx, credentialID)
	switch {
	case errors.Is(err, models.ErrNotFound) && pendingUserID == "":
		return passkeyOwner{}, "", models.ErrInvalidCode
	case err != nil && !errors.Is(err, models.ErrNotFound):
		return passkeyOwner{}, "", err
	}
	owner, err := p.owner(ctx, cmp.Or(pendingUserID, credentialOwner))
	if errors.Is(err, models.ErrNotFound) {
		err = models.ErrInvalidCode // deleted meanwhile
	}
	return owner, credentialOwner, err
}

// BeginReauth returns the request options (the publicKey member) for the
// user to prove themself with one of their passkeys; validation_failed when
// they have none.
func (p *Passkeys) BeginReauth(ctx context.Context, userID string) (protocol.PublicKeyCredentialRequestOptions, error) {
	owner, err := p.owner(ctx, userID)
	if err != nil {
		return protocol.PublicKeyCredentialRequestOptions{}, err
	}
	if len(owner.keys) == 0 {
		return protocol.PublicKeyCredentialRequestOptions{}, models.Validation(map[string]string{
			"passkeys": "no passkey to prove it with; use POST /reauth"})
	}
	assertion, session, err := p.relyingParty.BeginLogin(owner, webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return protocol.PublicKeyCredentialRequestOptions{}, fmt.Errorf("begin passkey proof: %w", err)
	}
	return assertion.Response, p.keep(ctx, ceremony{Kind: ceremonyReauth, UserID: userID, Session: *session})
}

// FinishReauth verifies an assertion of the user's for their own proof
// challenge; a failure is invalid_code and counts as a failed login for the
// user's email.
func (p *Passkeys) FinishReauth(ctx context.Context, userID string, credential []byte, ip string) error {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(credential)
	if err != nil {
		return models.ErrInvalidCode
	}
	begun, err := p.take(ctx, parsed.Response.CollectedClientData.Challenge, ceremonyReauth, userID)
	if err != nil {
		return err
	}
	owner, err := p.owner(ctx, userID)
	if err != nil {
		return err
	}
	attempt, err := p.assert(ctx, owner, ip, func() (*webauthn.Credential, error) {
		return p.relyingParty.ValidateLogin(owner, begun.Session, parsed)
	})
	if err != nil {
		return err
	}
	return attempt.Succeeded(ctx)
}

// assert runs validate, the library's verification of an assertion by one
// of owner's passkeys, as a login attempt on owner's email: throttled first,
// and a failure (also a signature counter that did not grow: a cloned
// authenticator) is invalid_code kept as a failed attempt. The passkey's
// counter, flags and last use are stored; the caller settles the attempt.
func (p *Passkeys) assert(ctx context.Context, owner passkeyOwner, ip string, validate func() (*webauthn.Credential, error)) (*LoginAttempt, error) {
	attempt, err := p.throttle.BeginLogin(ctx, owner.user.Email, ip)
	if err != nil {
		return nil, err
	}
	refused := models.OnAccount(owner.user.ID, models.ErrInvalidCode)
	cred, err := validate()
	if err != nil || cred.Authenticator.CloneWarning {
		return nil, refused
	}
	used, found := owner.passkey(cred.ID)
	if !found {
		return nil, refused
	}
	stored, err := p.users.RecordPasskeyUse(ctx, used, PasskeyUse{SignCount: cred.Authenticator.SignCount,
		UserVerified: cred.Flags.UserVerified, BackupState: cred.Flags.BackupState, At: p.now()})
	if err != nil {
		attempt.Abandon(ctx) // no verdict: a 503 is not a failed attempt
		return nil, err
	}
	if !stored { // another assertion moved the counter since it was read
		return nil, refused
	}
	return attempt, nil
}

// owner loads the user and their passkeys.
func (p *Passkeys) owner(ctx context.Context, userID string) (passkeyOwner, error) {
	user, err := p.users.FindByID(ctx, userID)
	if err != nil {
		return passkeyOwner{}, err
	}
	keys, err := p.users.ListPasskeys(ctx, userID)
	return passkeyOwner{user: user, keys: keys}, err
}
