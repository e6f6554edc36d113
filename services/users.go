package services

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/sessionauth/api/models"
)

// lastAdminLock is the PostgreSQL advisory lock key that serialises changes
// that could remove an active admin.
const lastAdminLock = 727274

// Users is the user repository in the database. Every call is bounded by the
// database timeout; any database failure is service_unavailable.
type Users struct {
	db      *gorm.DB
	timeout time.Duration
}

// NewUsers returns the user repository.
func NewUsers(db *gorm.DB, timeout time.Duration) *Users {
	return &Users{db: db, timeout: timeout}
}

// NewUser is a user to create; Email and Name are already normalised.
type NewUser struct {
	Email        string
	Name         string
	Role         models.Role
	PasswordHash string
}

// UserPatch holds the admin-changeable fields; nil means unchanged.
type UserPatch struct {
	Role     *models.Role
	Disabled *bool
}

// UserQuery filters and pages the admin listing.
type UserQuery struct {
	Limit, Offset int
	Email         string
}

func (u *Users) ctx(ctx context.Context) (*gorm.DB, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, u.timeout)
	return u.db.WithContext(ctx), cancel
}

func dbError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, gorm.ErrRecordNotFound):
		return models.ErrNotFound
	case errors.Is(err, gorm.ErrDuplicatedKey):
		return models.ErrEmailTaken
	default:
		return models.Unavailable("database", err)
	}
}

// Create inserts a user; a taken email is email_taken.
func (u *Users) Create(ctx context.Context, in NewUser) (models.User, error) {
	db, cancel := u.ctx(ctx)
	defer cancel()
	user := models.User{ID: uuid.NewString(), Email: in.Email, Name: in.Name, Role: in.Role, PasswordHash: in.PasswordHash, SessionVersion: 1}
	if err := db.Create(&user).Error; err != nil {
		return models.User{}, dbError(err)
	}
	return user, nil
}

// FindByEmail returns the user with that normalised email, or not_found.
func (u *Users) FindByEmail(ctx context.Context, email string) (models.User, error) {
	db, cancel := u.ctx(ctx)
	defer cancel()
	var user models.User
	err := db.Where("email = ?", email).Take(&user).Error
	return user, dbError(err)
}

// FindByID returns the user, or not_found (also for a malformed id).
func (u *Users) FindByID(ctx context.Context, id string) (models.User, error) {
	if !CanonicalID(id) {
		return models.User{}, models.ErrNotFound
	}
	db, cancel := u.ctx(ctx)
	defer cancel()
	var user models.User
	err := db.Where("id = ?", id).Take(&user).Error
	return user, dbError(err)
}

// List returns one page of users ordered by created_at then id, and the total.
func (u *Users) List(ctx context.Context, q UserQuery) ([]models.User, int64, error) {
	db, cancel := u.ctx(ctx)
	defer cancel()
	query := db.Model(&models.User{})
	if q.Email != "" {
		query = query.Where(`email LIKE ? ESCAPE '\'`, "%"+escapeLike(strings.ToLower(q.Email))+"%")
	}
	var total int64
	if err := query.Count(&total).Error; err != nil {
		return nil, 0, dbError(err)
	}
	users := []models.User{}
	err := query.Order("created_at, id").Limit(q.Limit).Offset(q.Offset).Find(&users).Error
	return users, total, dbError(err)
}

// Rehash replaces the stored hash of the same password (an upgrade from
// bcrypt or older parameters); sessions stay valid.
func (u *Users) Rehash(ctx context.Context, id, hash string) error {
	db, cancel := u.ctx(ctx)
	defer cancel()
	return dbError(db.Model(&models.User{}).Where("id = ?", id).Update("password_hash", hash).Error)
}

// Revoker ends every session of a user for a new session version
// (SessionStore.RevokeUser); called inside a change's transaction.
type Revoker func(ctx context.Context, userID string, sessionVersion int64) (int, error)

// userChange applies a change to the locked row user (in memory) and returns
// the columns to write and the names of the fields that changed; none: nothing
// is written. It may query through tx (the last-admin rule does).
type userChange func(tx *gorm.DB, user *models.User) (updates map[string]any, changed []string, err error)

// changeRevoking applies change to the row of user id and, when anything
// changed, ends every session of the user, failing closed: inside one
// transaction it locks the row, advances the session version, revokes the
// user's sessions in Redis with the new version, and only then commits. A
// revocation that fails rolls the change back (nothing stored; the request
// can be sent again). A commit that fails after the revocation leaves a
// revocation mark newer than the row: the sessions are gone and the next
// login heals the row (AdvanceSessionVersion), so nobody is locked out.
// The transaction holds the row for at most one Redis call.
func (u *Users) changeRevoking(ctx context.Context, id string, change userChange, revoke Revoker) (models.User, []string, error) {
	if !CanonicalID(id) {
		return models.User{}, nil, models.ErrNotFound
	}
	db, cancel := u.ctx(ctx)
	defer cancel()
	var user models.User
	var changed []string
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&user).Error; err != nil {
			return err
		}
		updates, fields, err := change(tx, &user)
		if err != nil || len(fields) == 0 {
			return err
		}
		changed = fields
		read := user.SessionVersion
		user.SessionVersion = read + 1
		updates["session_version"] = user.SessionVersion
		updates["updated_at"] = time.Now().UTC()
		res := tx.Model(&models.User{}).Where("id = ? AND session_version = ?", id, read).Updates(updates)
		if res.Error != nil {
			return res.Error
		}
		if res.RowsAffected == 0 {
			return gorm.ErrRecordNotFound
		}
		if _, err := revoke(ctx, id, user.SessionVersion); err != nil {
			return err // rolls the change back
		}
		return nil
	})
	var coded *models.Error
	switch {
	case errors.As(err, &coded):
		return models.User{}, nil, err
	case err != nil:
		return models.User{}, nil, dbError(err)
	}
	return user, changed, nil
}

// ChangePassword stores a new password hash and ends every session of the
// user, failing closed (see changeRevoking). It returns the row as stored,
// whose session version the caller's replacement session is created with.
func (u *Users) ChangePassword(ctx context.Context, id, hash string, revoke Revoker) (models.User, error) {
	user, _, err := u.changeRevoking(ctx, id, func(_ *gorm.DB, user *models.User) (map[string]any, []string, error) {
		user.PasswordHash = hash
		return map[string]any{"password_hash": hash}, []string{"password"}, nil
	}, revoke)
	return user, err
}

// AdvanceSessionVersion moves the user's session version from `from` to
// `to` only if the row still holds `from`, and reports whether it did (see
// middleware.SessionManager's create for why).
func (u *Users) AdvanceSessionVersion(ctx context.Context, id string, from, to int64) (bool, error) {
	db, cancel := u.ctx(ctx)
	defer cancel()
	res := db.Model(&models.User{}).Where("id = ? AND session_version = ?", id, from).
		Updates(map[string]any{"session_version": to, "updated_at": time.Now().UTC()})
	return res.RowsAffected == 1, dbError(res.Error)
}

// Update applies patch to the user with id and reports which fields it
// changed (none: nothing is written, nothing revoked). A change of role or
// of the disabled flag ends every session of the user, failing closed (see
// changeRevoking). Only the changed fields are written, so a concurrent PATCH
// of another field is never undone. A change that would leave no active
// admin is refused with last_admin: on PostgreSQL every update first takes an
// advisory lock, so two admins demoting each other at once are serialised
// and the second sees the first; SQLite's one connection serialises them the
// same way. A malformed or unknown id is not_found.
func (u *Users) Update(ctx context.Context, id string, patch UserPatch, revoke Revoker) (models.User, []string, error) {
	return u.changeRevoking(ctx, id, func(tx *gorm.DB, user *models.User) (map[string]any, []string, error) {
		if tx.Dialector.Name() == "postgres" {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", lastAdminLock).Error; err != nil {
				return nil, nil, err
			}
		}
		wasActiveAdmin := user.IsAdmin() && !user.Disabled
		updates, changed := applyPatch(user, patch)
		if len(changed) == 0 || !wasActiveAdmin || (user.IsAdmin() && !user.Disabled) {
			return updates, changed, nil
		}
		var others int64
		err := tx.Model(&models.User{}).Where("role = ? AND disabled = ? AND id <> ?", models.RoleAdmin, false, user.ID).
			Count(&others).Error
		if err == nil && others == 0 {
			err = models.ErrLastAdmin
		}
		return updates, changed, err
	}, revoke)
}

// applyPatch applies patch to user and returns the columns to write and the
// names of the fields that changed.
func applyPatch(user *models.User, patch UserPatch) (map[string]any, []string) {
	var changed []string
	updates := map[string]any{}
	if patch.Role != nil && *patch.Role != user.Role {
		changed = append(changed, "role")
		updates["role"], user.Role = *patch.Role, *patch.Role
	}
	if patch.Disabled != nil && *patch.Disabled != user.Disabled {
		changed = append(changed, "disabled")
		updates["disabled"], user.Disabled = *patch.Disabled, *patch.Disabled
	}
	return updates, changed
}

// CanonicalID reports whether id is a user id as the API writes it: a UUID
// in its canonical lower-case form. Anything else (upper case, braces,
// urn:uuid:) names no user, and never reaches the database.
func CanonicalID(id string) bool {
	parsed, err := uuid.Parse(id)
	return err == nil && parsed.String() == id
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}
