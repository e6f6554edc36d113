package services

import (
	"context"

	"github.com/sessionauth/api/models"
)

// Admin holds the rules of the admin endpoints.
type Admin struct {
	users    *Users
	auth     *Auth
	sessions *SessionStore
}

// NewAdmin returns the admin service.
func NewAdmin(users *Users, auth *Auth, sessions *SessionStore) *Admin {
	return &Admin{users: users, auth: auth, sessions: sessions}
}

// ListUsers returns one page of users and the total matching the filter.
func (a *Admin) ListUsers(ctx context.Context, q UserQuery) ([]models.User, int64, error) {
	return a.users.List(ctx, q)
}

// CreateUser creates a user with any role, registration setting aside. The
// email counts as verified: the admin (or the operator at the command line)
// vouches for it, so the first admin can log in while verification is required.
func (a *Admin) CreateUser(ctx context.Context, in Registration) (models.User, error) {
	if err := a.auth.CheckNewPassword("password", in.Password, in.Email); err != nil {
		return models.User{}, err
	}
	return a.auth.create(ctx, in, true)
}

// UpdateResult is the outcome of UpdateUser.
type UpdateResult struct {
	User    models.User
	Revoked bool // the user's sessions were ended (role or disabled changed)
	Changed []string
}

// UpdateUser applies patch to the user with id. A change of role or of the
// disabled flag revokes every session of that user at once, failing closed
// (a revocation Redis cannot confirm stores nothing); a patch that changes
// nothing revokes nothing; the last active admin cannot be removed
// (last_admin); a malformed or unknown id is not_found.
func (a *Admin) UpdateUser(ctx context.Context, id string, patch UserPatch) (UpdateResult, error) {
	updated, changed, err := a.users.Update(ctx, id, patch, a.sessions.RevokeUser)
	if err != nil {
		return UpdateResult{}, err
	}
	return UpdateResult{User: updated, Revoked: len(changed) > 0, Changed: changed}, nil
}

// DeleteUser deletes the user with id and every session of theirs, failing
// closed; the last active admin cannot be deleted (last_admin).
func (a *Admin) DeleteUser(ctx context.Context, id string) error {
	return a.users.Delete(ctx, id, a.sessions.RevokeUser)
}

// LogoutUser revokes every session of the user with id and counts them.
func (a *Admin) LogoutUser(ctx context.Context, id string) (int, error) {
	user, err := a.users.FindByID(ctx, id)
	if err != nil {
		return 0, err
	}
	return a.sessions.RevokeUser(ctx, user.ID, 0)
}

// UserWithSessions returns the user with id and their live sessions, newest
// first; a malformed or unknown id is not_found.
func (a *Admin) UserWithSessions(ctx context.Context, id string) (models.User, []models.Session, error) {
	user, err := a.users.FindByID(ctx, id)
	if err != nil {
		return models.User{}, nil, err
	}
	sessions, err := a.sessions.List(ctx, user.ID)
	return user, sessions, err
}

// RevokeSession ends the session with handle if it is one of the user's and
// reports whether it was.
func (a *Admin) RevokeSession(ctx context.Context, userID, handle string) (bool, error) {
	return a.sessions.RevokeHandle(ctx, userID, handle)
}
