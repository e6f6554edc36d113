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
	Verified     bool // the email counts as verified (an admin vouched for it)
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
	user := models.User{ID: uuid.NewString(), Email: in.Email, Name: in.Name, Role: in.Role, PasswordHash: in.PasswordHash,
		SessionVersion: 1, ProfileVersion: 1}
	if in.Verified {
		now := time.Now().UTC().Truncate(time.Microsecond)
		user.EmailVerifiedAt = &now
	}
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

// revokingTx locks the row of user id and runs change on it inside a
// transaction. When change reports that what it wrote must end the user's
// sessions, they are revoked, failing closed: change has advanced
// user.SessionVersion (in the row, or in memory for a deletion) and the
// sessions are revoked in Redis with that version before the commit. A
// revocation that fails rolls the change back (nothing stored; the request
// can be sent again). A commit that fails after the revocation leaves a
// revocation mark newer than the row: the sessions are gone and the next
// login heals the row (AdvanceSessionVersion), so nobody is locked out. The
// transaction holds the row for at most one Redis call.
func (u *Users) revokingTx(ctx context.Context, id string, change func(tx *gorm.DB, user *models.User) (bool, error), revoke Revoker) (models.User, error) {
	if !CanonicalID(id) {
		return models.User{}, models.ErrNotFound
	}
	db, cancel := u.ctx(ctx)
	defer cancel()
	var user models.User
	err := db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&user).Error; err != nil {
			return err
		}
		mustRevoke, err := change(tx, &user)
		if err != nil || !mustRevoke {
			return err
		}
		_, err = revoke(ctx, id, user.SessionVersion) // an error rolls the change back
		return err
	})
	var coded *models.Error
	switch {
	case errors.As(err, &coded):
		return models.User{}, err
	case err != nil:
		return models.User{}, dbError(err)
	}
	return user, nil
}

// writeRevoking writes updates to the locked row with the next session
// version, which ends every session made before.
func writeRevoking(tx *gorm.DB, user *models.User, updates map[string]any) error {
	read := user.SessionVersion
	user.SessionVersion = read + 1
	updates["session_version"] = user.SessionVersion
	updates["updated_at"] = time.Now().UTC()
	res := tx.Model(&models.User{}).Where("id = ? AND session_version = ?", user.ID, read).Updates(updates)
	if res.Error == nil && res.RowsAffected == 0 {
		return gorm.ErrRecordNotFound
	}
	return res.Error
}

// lockAdmins serialises the changes that could remove the last active admin
// (PostgreSQL advisory lock; SQLite's one connection serialises them anyway),
// and refuses with last_admin when user, an active admin, would be removed
// and no other active admin remains.
func lockAdmins(tx *gorm.DB, user models.User, removed bool) error {
	if tx.Dialector.Name() == "postgres" {
		if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", lastAdminLock).Error; err != nil {
			return err
		}
	}
	if !removed {
		return nil
	}
	var others int64
	err := tx.Model(&models.User{}).Where("role = ? AND disabled = ? AND id <> ?", models.RoleAdmin, false, user.ID).
		Count(&others).Error
	if err == nil && others == 0 {
		err = models.ErrLastAdmin
	}
	return err
}

// ChangePassword stores a new password hash and ends every session of the
// user, failing closed (see revokingTx). It returns the row as stored, whose
// session version the caller's replacement session is created with.
func (u *Users) ChangePassword(ctx context.Context, id, hash string, revoke Revoker) (models.User, error) {
	return u.revokingTx(ctx, id, func(tx *gorm.DB, user *models.User) (bool, error) {
		user.PasswordHash = hash
		return true, writeRevoking(tx, user, map[string]any{"password_hash": hash})
	}, revoke)
}

// Delete deletes the user and every session of theirs, failing closed (see
// revokingTx); the last active admin cannot be deleted (last_admin). Their
// audit events stay.
func (u *Users) Delete(ctx context.Context, id string, revoke Revoker) error {
	_, err := u.revokingTx(ctx, id, func(tx *gorm.DB, user *models.User) (bool, error) {
		if err := lockAdmins(tx, *user, user.IsAdmin() && !user.Disabled); err != nil {
			return false, err
		}
		user.SessionVersion++ // the mark that refuses a login racing the deletion
		return true, tx.Delete(&models.User{}, "id = ?", user.ID).Error
	}, revoke)
	return err
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
// revokingTx). Only the changed fields are written, so a concurrent PATCH of
// another field is never undone. A change that would leave no active admin
// is refused with last_admin (see lockAdmins). A malformed or unknown id is
// not_found.
func (u *Users) Update(ctx context.Context, id string, patch UserPatch, revoke Revoker) (models.User, []string, error) {
	var changed []string
	user, err := u.revokingTx(ctx, id, func(tx *gorm.DB, user *models.User) (bool, error) {
		wasActiveAdmin := user.IsAdmin() && !user.Disabled
		var updates map[string]any
		if updates, changed = applyPatch(user, patch); len(changed) == 0 {
			return false, nil
		}
		if err := lockAdmins(tx, *user, wasActiveAdmin && (!user.IsAdmin() || user.Disabled)); err != nil {
			return false, err
		}
		return true, writeRevoking(tx, user, updates)
	}, revoke)
	if err != nil {
		return models.User{}, nil, err
	}
	return user, changed, nil
}

// SetName stores a new name and advances the profile version; it writes even
// when the name is unchanged, so that the caller's profile rewrite in the
// sessions runs again and heals an earlier one that failed.
func (u *Users) SetName(ctx context.Context, id, name string) (models.User, error) {
	return u.updateProfile(ctx, id, map[string]any{"name": name})
}

// updateProfile writes updates with the next profile version and returns the
// row as stored.
func (u *Users) updateProfile(ctx context.Context, id string, updates map[string]any) (models.User, error) {
	if !CanonicalID(id) {
		return models.User{}, models.ErrNotFound
	}
	db, cancel := u.ctx(ctx)
	defer cancel()
	var user models.User
	err := db.Transaction(func(tx *gorm.DB) error {
		updates["profile_version"] = gorm.Expr("profile_version + 1")
		updates["updated_at"] = time.Now().UTC()
		res := tx.Model(&models.User{}).Where("id = ?", id).Updates(updates)
		if res.Error == nil && res.RowsAffected == 0 {
			return gorm.ErrRecordNotFound
		}
		if res.Error != nil {
			return res.Error
		}
		return tx.Where("id = ?", id).Take(&user).Error
	})
	return user, dbError(err)
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
