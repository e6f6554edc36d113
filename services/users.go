package services

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
	"gorm.io/gorm"

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
	case isDataException(err):
		// SQLSTATE class 22: PostgreSQL could not take a value as its
		// column's type (a malformed id, a NUL byte). Input the API did not
		// refuse names no row; it is not an outage to alert on.
		return models.ErrNotFound
	default:
		return models.Unavailable("database", err)
	}
}

func isDataException(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && strings.HasPrefix(pgErr.Code, "22")
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

// FindByID returns the user, or not_found (also for an id that is not a
// canonical UUID).
func (u *Users) FindByID(ctx context.Context, id string) (models.User, error) {
	if !ValidUserID(id) {
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

// ChangePassword stores a new password hash and returns the user's new
// session version, which ends every session made before it.
func (u *Users) ChangePassword(ctx context.Context, id, hash string) (int64, error) {
	db, cancel := u.ctx(ctx)
	defer cancel()
	var user models.User
	err := db.Transaction(func(tx *gorm.DB) error {
		res := tx.Model(&models.User{}).Where("id = ?", id).Updates(map[string]any{"password_hash": hash,
			"session_version": gorm.Expr("session_version + 1"), "updated_at": time.Now().UTC()})
		if res.Error == nil && res.RowsAffected == 0 {
			return gorm.ErrRecordNotFound
		}
		if res.Error != nil {
			return res.Error
		}
		return tx.Select("session_version").Where("id = ?", id).Take(&user).Error
	})
	return user.SessionVersion, dbError(err)
}

// Update applies patch to the user with id and reports which fields it
// changed (none: nothing is written). The row is read again inside the
// transaction and only the changed fields are written, so a concurrent PATCH
// of another field is never undone. A change that would leave no active admin
// is refused with last_admin by one conditional UPDATE. On PostgreSQL every
// update first takes an advisory lock, so two admins demoting each other at
// once are serialised and the second sees the first; SQLite's one connection
// serialises them the same way. A malformed or unknown id is not_found.
func (u *Users) Update(ctx context.Context, id string, patch UserPatch) (models.User, []string, error) {
	if uuid.Validate(id) != nil {
		return models.User{}, nil, models.ErrNotFound
	}
	id = strings.ToLower(id)
	db, cancel := u.ctx(ctx)
	defer cancel()
	var user models.User
	var changed []string
	err := db.Transaction(func(tx *gorm.DB) error {
		if tx.Dialector.Name() == "postgres" {
			if err := tx.Exec("SELECT pg_advisory_xact_lock(?)", lastAdminLock).Error; err != nil {
				return err
			}
		}
		if err := tx.Where("id = ?", id).Take(&user).Error; err != nil {
			return err
		}
		wasActiveAdmin := user.IsAdmin() && !user.Disabled
		var updates map[string]any
		if updates, changed = applyPatch(&user, patch); len(changed) == 0 {
			return nil
		}
		removesAdmin := wasActiveAdmin && (!user.IsAdmin() || user.Disabled)
		query := tx.Model(&models.User{}).Where("id = ?", id)
		if removesAdmin {
			query = query.Where("EXISTS (SELECT 1 FROM users other WHERE other.role = ? AND other.disabled = ? AND other.id <> ?)",
				models.RoleAdmin, false, id)
		}
		res := query.Updates(updates)
		switch {
		case res.Error != nil:
			return res.Error
		case res.RowsAffected == 0 && removesAdmin:
			return models.ErrLastAdmin
		case res.RowsAffected == 0:
			return gorm.ErrRecordNotFound
		}
		return tx.Where("id = ?", id).Take(&user).Error
	})
	switch {
	case errors.Is(err, models.ErrLastAdmin):
		return models.User{}, nil, err
	case err != nil:
		return models.User{}, nil, dbError(err)
	}
	return user, changed, nil
}

// applyPatch applies patch to user and returns the columns to write (with a
// new session version, which ends every session made before) and the names
// of the fields that changed.
func applyPatch(user *models.User, patch UserPatch) (map[string]any, []string) {
	var changed []string
	updates := map[string]any{"session_version": gorm.Expr("session_version + 1"), "updated_at": time.Now().UTC()}
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

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// HashSamples returns one stored password hash per hash family (algorithm
// and cost: "$2b$12$", "$argon2id$v=19$m=…,t=…,p=…$"), at most limit, leaving
// out the hashes that start with skip (the current parameters). It reads the
// whole table once, so it is for the start, in the background, bounded by ctx
// rather than the per-query timeout.
func (u *Users) HashSamples(ctx context.Context, skip string, limit int) ([]string, error) {
	// A bcrypt family is its first 7 characters; an Argon2id hash of ours
	// ends in a 22-character salt, a '$' and a 43-character key. Other
	// lengths make more groups, which the limit bounds.
	family := `CASE WHEN password_hash LIKE '$2%' THEN substr(password_hash, 1, 7)
		WHEN length(password_hash) > 66 THEN substr(password_hash, 1, length(password_hash) - 66)
		ELSE password_hash END`
	var samples []string
	err := u.db.WithContext(ctx).Model(&models.User{}).Select("MIN(password_hash)").
		Where(`password_hash NOT LIKE ? ESCAPE '\'`, escapeLike(skip)+"%").
		Group(family).Limit(limit).Scan(&samples).Error
	return samples, dbError(err)
}
