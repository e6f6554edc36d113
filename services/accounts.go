package services

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/sessionauth/api/models"
)

// Accounts holds the rules of a user's own account: the profile shown in
// every session, closing the account, and the flows that go through mail
// (password reset, email verification and change, notices).
type Accounts struct {
	users           *Users
	auth            *Auth
	sessions        *SessionStore
	throttle        *Throttle
	audit           *Audit
	mailer          *Mailer
	mails           *MailTemplates
	resetTTL        time.Duration
	verificationTTL time.Duration
	log             *slog.Logger
}

// AccountsOptions are the dependencies and settings of Accounts. Mailer may
// be nil (mail off): mails are then dropped.
type AccountsOptions struct {
	Users           *Users
	Auth            *Auth
	Sessions        *SessionStore
	Throttle        *Throttle
	Audit           *Audit
	Mailer          *Mailer
	Mails           *MailTemplates
	ResetTTL        time.Duration
	VerificationTTL time.Duration
	Log             *slog.Logger
}

// NewAccounts returns the account service.
func NewAccounts(o AccountsOptions) *Accounts {
	return &Accounts{users: o.Users, auth: o.Auth, sessions: o.Sessions, throttle: o.Throttle, audit: o.Audit,
		mailer: o.Mailer, mails: o.Mails, resetTTL: o.ResetTTL, verificationTTL: o.VerificationTTL, log: o.Log}
}

// Requester is who asked for something that happens after the answer, for
// the audit event recorded then.
type Requester struct {
	ActorID   string // the logged-in user who asked, if any
	IP        string
	UserAgent string
}

// Rename stores the user's new name and shows it in every live session of
// theirs at once. When the sessions cannot be updated the name is stored
// and the answer is 503; sending the request again updates them.
func (a *Accounts) Rename(ctx context.Context, userID, name string) (models.User, error) {
	user, err := a.users.SetName(ctx, userID, name)
	if err != nil {
		return models.User{}, err
	}
	return user, a.sessions.UpdateProfile(ctx, userID, user.Profile())
}

// Delete closes the caller's account after proving the password (a wrong
// one is invalid_current_password and counts as a failed login): the user and
// every session of theirs are gone, failing closed; the last active admin
// cannot leave (last_admin).
func (a *Accounts) Delete(ctx context.Context, userID, email, password, ip string) error {
	if _, err := a.auth.ProvePassword(ctx, userID, email, password, ip); err != nil {
		return err
	}
	return a.users.Delete(ctx, userID, a.sessions.RevokeUser)
}

// ForgotPassword counts the request for the client IP (too_many_requests past
// the limit) and queues a reset mail. Whether the account exists, is enabled
// or has asked too often (3 mails per 15 minutes per email, silently) is
// found out by the mail worker after the answer, so the answer and its time
// are the same for every well-formed email.
func (a *Accounts) ForgotPassword(ctx context.Context, email string, by Requester) error {
	if err := a.throttle.BeginForgot(ctx, by.IP); err != nil {
		return err
	}
	a.queueReset(by, func(ctx context.Context) (models.User, error) {
		if ok, err := a.throttle.AllowResetMail(ctx, email); !ok {
			return models.User{}, cmp.Or[error](err, models.ErrNotFound)
		}
		return a.users.FindByEmail(ctx, email)
	})
	return nil
}

// SendPasswordReset queues a reset mail for the user with id, as an admin
// asks; a disabled user gets none (the answer is the same). An unknown or
// malformed id is not_found.
func (a *Accounts) SendPasswordReset(ctx context.Context, id string, by Requester) error {
	if _, err := a.users.FindByID(ctx, id); err != nil {
		return err
	}
	a.queueReset(by, func(ctx context.Context) (models.User, error) { return a.users.FindByID(ctx, id) })
	return nil
}

// queueReset queues a reset mail for the user that find returns in the mail
// worker; not_found there sends nothing.
func (a *Accounts) queueReset(by Requester, find func(context.Context) (models.User, error)) {
	a.mailer.Enqueue(MailPasswordReset, func(ctx context.Context) (*Message, error) {
		user, err := find(ctx)
		if errors.Is(err, models.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		return a.resetMail(ctx, user, by)
	})
}

// resetMail issues a reset token for an enabled user (superseding earlier
// ones) and returns its mail; nil for a disabled user.
func (a *Accounts) resetMail(ctx context.Context, user models.User, by Requester) (*Message, error) {
	if user.Disabled {
		return nil, nil
	}
	token, err := a.users.IssueToken(ctx, user.ID, models.TokenPasswordReset, user.Email, a.resetTTL)
	if err != nil {
		return nil, err
	}
	a.record(ctx, models.EventPasswordResetRequested, by, user.ID)
	return a.mails.PasswordReset(user.Email, token, a.resetTTL)
}

// ResetPassword sets a new password with a reset token (used up), ends every
// session of the user failing closed, clears the email's failed-login count
// and marks the email verified; a notice goes to the user. Wrong tokens count
// as failed logins of the client IP. An unknown, used, expired or superseded
// token is invalid_token.
func (a *Accounts) ResetPassword(ctx context.Context, token, password, ip string) (models.User, error) {
	attempt, err := a.throttle.BeginTokenUse(ctx, ip)
	if err != nil {
		return models.User{}, err
	}
	owner, err := a.users.TokenOwner(ctx, token, models.TokenPasswordReset)
	if err != nil {
		return models.User{}, err
	}
	hash, err := a.auth.HashNewPassword(ctx, "new_password", password, owner.Email)
	if err != nil {
		attempt.Succeeded(ctx) // the token was right
		return models.User{}, err
	}
	user, err := a.users.ResetPassword(ctx, token, hash, a.sessions.RevokeUser)
	if err != nil {
		if !errors.Is(err, models.ErrInvalidToken) {
			attempt.Succeeded(ctx)
		}
		return models.User{}, err
	}
	attempt.Succeeded(ctx)
	if err := a.throttle.ClearLoginFailures(ctx, user.Email); err != nil {
		a.log.WarnContext(ctx, "failed-login count not cleared after a reset", "user_id", user.ID, "err", err)
	}
	a.notify(MailNoticePasswordReset, func() (*Message, error) { return a.mails.PasswordWasReset(user.Email) })
	return user, nil
}

// NotifySecondFactor queues the notice that a second factor was added or removed.
func (a *Accounts) NotifySecondFactor(email string, added bool) {
	if added {
		a.notify(MailNoticeSecondFactorAdded, func() (*Message, error) { return a.mails.SecondFactorAdded(email) })
		return
	}
	a.notify(MailNoticeSecondFactorRemoved, func() (*Message, error) { return a.mails.SecondFactorRemoved(email) })
}

// NotifyPasskey queues the notice that the passkey called name was added or removed.
func (a *Accounts) NotifyPasskey(email, name string, added bool) {
	if added {
		a.notify(MailNoticePasskeyAdded, func() (*Message, error) { return a.mails.PasskeyAdded(email, name) })
		return
	}
	a.notify(MailNoticePasskeyRemoved, func() (*Message, error) { return a.mails.PasskeyRemoved(email, name) })
}

// NotifyPasswordChanged queues the notice of a password change.
func (a *Accounts) NotifyPasswordChanged(email string) {
	a.notify(MailNoticePasswordChanged, func() (*Message, error) { return a.mails.PasswordChanged(email) })
}

// SendVerification queues a verification link for the user's email; it
// reports done (and sends nothing) when the email is already verified. At
// most 3 such mails per user per 15 minutes, then too_many_requests.
func (a *Accounts) SendVerification(ctx context.Context, userID string) (alreadyVerified bool, err error) {
	user, err := a.users.FindByID(ctx, userID)
	if err != nil {
		return false, err
	}
	if user.EmailVerified() {
		return true, nil
	}
	if err := a.throttle.BeginUserMail(ctx, "verification", userID); err != nil {
		return false, err
	}
	a.queueVerification(user)
	return false, nil
}

// Welcome queues the verification link a new registration gets.
func (a *Accounts) Welcome(user models.User) { a.queueVerification(user) }

func (a *Accounts) queueVerification(user models.User) {
	a.mailer.Enqueue(MailEmailVerification, func(ctx context.Context) (*Message, error) {
		token, err := a.users.IssueToken(ctx, user.ID, models.TokenEmailVerification, user.Email, a.verificationTTL)
		if err != nil {
			return nil, err
		}
		return a.mails.EmailVerification(user.Email, token, a.verificationTTL)
	})
}

// RequestEmailChange proves the password, then mails a confirmation link to
// the new address and a notice to the old one; the email changes only when
// the link is used (VerifyEmail). A new address that is the current one is
// validation_failed, one another account has is email_taken; at most 3
// requests per user per 15 minutes.
func (a *Accounts) RequestEmailChange(ctx context.Context, userID, email, password, newEmail, ip string) error {
	user, err := a.auth.ProvePassword(ctx, userID, email, password, ip)
	if err != nil {
		return err
	}
	if newEmail == user.Email {
		return models.Validation(map[string]string{"email": "is already your email"})
	}
	if _, err := a.users.FindByEmail(ctx, newEmail); err == nil {
		return models.ErrEmailTaken
	} else if !errors.Is(err, models.ErrNotFound) {
		return err
	}
	if err := a.throttle.BeginUserMail(ctx, "email-change", userID); err != nil {
		return err
	}
	token, err := a.users.IssueToken(ctx, userID, models.TokenEmailChange, newEmail, a.verificationTTL)
	if err != nil {
		return err
	}
	a.notify(MailEmailChange, func() (*Message, error) { return a.mails.EmailChange(newEmail, token, a.verificationTTL) })
	a.notify(MailNoticeEmailChangeRequest, func() (*Message, error) { return a.mails.EmailChangeRequested(user.Email, newEmail) })
	return nil
}

// VerifyEmail uses a verification or email-change token: the address it was
// sent to becomes the user's verified email, and every live session of the
// user shows it at once (the sessions are updated before the change is
// committed, so a failure leaves the token usable). Wrong tokens count as
// failed logins of the client IP.
func (a *Accounts) VerifyEmail(ctx context.Context, token, ip string) (models.User, models.TokenPurpose, error) {
	attempt, err := a.throttle.BeginTokenUse(ctx, ip)
	if err != nil {
		return models.User{}, "", err
	}
	user, purpose, err := a.users.VerifyEmail(ctx, token, func(ctx context.Context, user models.User) error {
		return a.sessions.UpdateProfile(ctx, user.ID, user.Profile())
	})
	if !errors.Is(err, models.ErrInvalidToken) {
		attempt.Succeeded(ctx)
	}
	return user, purpose, err
}

// notify queues a mail built from data known now.
func (a *Accounts) notify(kind MailKind, build func() (*Message, error)) {
	a.mailer.Enqueue(kind, func(context.Context) (*Message, error) { return build() })
}

// record stores an audit event that happens after the answer (in the mail
// worker); a failure is logged, as for events recorded in the request.
func (a *Accounts) record(ctx context.Context, event models.Event, by Requester, userID string) {
	ev := models.AuditEvent{Event: event, UserID: &userID, IP: by.IP, UserAgent: by.UserAgent}
	if by.ActorID != "" {
		ev.ActorID = &by.ActorID
	}
	if err := a.audit.Record(ctx, ev); err != nil {
		a.log.WarnContext(ctx, "audit event not stored", "event", string(event), "err", err)
	}
}
