package services

import (
	"context"

	"github.com/sessionauth/api/models"
)

// Accounts holds the rules of a user's own account: the profile shown in
// every session, and closing the account.
type Accounts struct {
	users    *Users
	auth     *Auth
	sessions *SessionStore
}

// NewAccounts returns the account service.
func NewAccounts(users *Users, auth *Auth, sessions *SessionStore) *Accounts {
	return &Accounts{users: users, auth: auth, sessions: sessions}
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
