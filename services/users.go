package services

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgconn"
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
	if !ValidUserID(id) {
		return models.User{}, models.ErrNotFound
	}
	return u.revokingTxOf(ctx, func(*gorm.DB) (string, error) { return id, nil }, change, revoke)
}

// revokingTxOf is revokingTx for the user that locate finds inside the
// transaction (the owner of a token, say).
func (u *Users) revokingTxOf(ctx context.Context, locate func(tx *gorm.DB) (string, error),
	change func(tx *gorm.DB, user *models.User) (bool, error), revoke Revoker) (models.User, error) {
	db, cancel := u.ctx(ctx)
	defer cancel()
	var user models.User
	err := db.Transaction(func(tx *gorm.DB) error {
		id, err := locate(tx)
		if err != nil {
			return err
		}
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", id).Take(&user).Error; err != nil {
			return err
		}
		mustRevoke, err := change(tx, &user)
		if err != nil || !mustRevoke {
			return err
		}
		_, err = revoke(ctx, user.ID, user.SessionVersion) // an error rolls the change back
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
// session version the caller's replacement session is created with. Every
// reset link and pending email change of the user is void: a thief who knew
// the old password cannot finish an email change the owner did not stop.
func (u *Users) ChangePassword(ctx context.Context, id, hash string, revoke Revoker) (models.User, error) {
	return u.revokingTx(ctx, id, func(tx *gorm.DB, user *models.User) (bool, error) {
		return true, setPassword(tx, user, hash, false)
	}, revoke)
}

// ResetPassword stores a new password for the owner of a reset token, which
// is used up, and ends every session of the user, failing closed (see
// revokingTx; a failure leaves the token usable). Using the link also proves
// the email. An unknown, used, expired or superseded token is invalid_token.
func (u *Users) ResetPassword(ctx context.Context, token, hash string, revoke Revoker) (models.User, error) {
	return u.revokingTxOf(ctx, func(tx *gorm.DB) (string, error) {
		t, err := takeToken(tx, token, models.TokenPasswordReset)
		return t.UserID, err
	}, func(tx *gorm.DB, user *models.User) (bool, error) {
		return true, setPassword(tx, user, hash, true)
	}, revoke)
}

// setPassword writes a new password hash to the locked row with the next
// session version, voids the user's reset and email-change tokens, and with
// verify marks the email verified.
func setPassword(tx *gorm.DB, user *models.User, hash string, verify bool) error {
	updates := map[string]any{"password_hash": hash}
	user.PasswordHash = hash
	if verify && user.EmailVerifiedAt == nil {
		now := time.Now().UTC()
		user.EmailVerifiedAt = &now
		updates["email_verified_at"] = now
		user.ProfileVersion++
		updates["profile_version"] = user.ProfileVersion
	}
	if err := writeRevoking(tx, user, updates); err != nil {
		return err
	}
	return voidTokens(tx, user.ID, models.TokenPasswordReset, models.TokenEmailChange)
}

// Delete deletes the user, their second factors and every session of
// theirs, failing closed (see revokingTx); the last active admin cannot be
// deleted (last_admin). Their audit events stay.
func (u *Users) Delete(ctx context.Context, id string, revoke Revoker) error {
	_, err := u.revokingTx(ctx, id, func(tx *gorm.DB, user *models.User) (bool, error) {
		if err := lockAdmins(tx, *user, user.IsAdmin() && !user.Disabled); err != nil {
			return false, err
		}
		user.SessionVersion++ // the mark that refuses a login racing the deletion
		if err := voidTokens(tx, user.ID); err != nil {
			return false, err
		}
		// Its second factors go with it: a passkey of a deleted account logs nobody in.
		if err := replaceRecoveryCodes(tx, user.ID, nil); err != nil {
			return false, err
		}
		if err := tx.Where("user_id = ?", user.ID).Delete(&models.Passkey{}).Error; err != nil {
			return false, err
		}
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

// IssueToken stores a new mailed token of purpose for the user, proving
// email, and supersedes the user's earlier ones of that purpose.
func (u *Users) IssueToken(ctx context.Context, userID string, purpose models.TokenPurpose, email string, ttl time.Duration) (string, error) {
	db, cancel := u.ctx(ctx)
	defer cancel()
	var token string
	err := db.Transaction(func(tx *gorm.DB) error {
		var err error
		token, err = issueToken(tx, userID, purpose, email, ttl)
		return err
	})
	return token, dbError(err)
}

// TokenOwner returns the user a live token of purpose belongs to, without
// using the token up; invalid_token when there is none.
func (u *Users) TokenOwner(ctx context.Context, token string, purpose models.TokenPurpose) (models.User, error) {
	db, cancel := u.ctx(ctx)
	defer cancel()
	var t models.Token
	err := db.Where("hash = ? AND purpose = ? AND expires_at > ?", tokenHash(token), purpose, time.Now().UTC()).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return models.User{}, models.ErrInvalidToken
	}
	if err != nil {
		return models.User{}, dbError(err)
	}
	var user models.User
	err = db.Where("id = ?", t.UserID).Take(&user).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return models.User{}, models.ErrInvalidToken
	}
	return user, dbError(err)
}

// VerifyEmail uses up a verification or email-change token: the address it
// was mailed to becomes the user's email, verified, with the next profile
// version. A verification token for an address the user no longer has is
// invalid_token; an email change to an address another account took
// meanwhile is email_taken (and the token stays usable).
//
// show, called before the commit with the user as changed, makes the change
// visible elsewhere (the sessions); its failure rolls the change back.
func (u *Users) VerifyEmail(ctx context.Context, token string, show func(context.Context, models.User) error) (models.User, models.TokenPurpose, error) {
	db, cancel := u.ctx(ctx)
	defer cancel()
	var user models.User
	var purpose models.TokenPurpose
	err := db.Transaction(func(tx *gorm.DB) error {
		t, err := takeToken(tx, token, models.TokenEmailVerification, models.TokenEmailChange)
		if err != nil {
			return err
		}
		purpose = t.Purpose
		if err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("id = ?", t.UserID).Take(&user).Error; err != nil {
			return err
		}
		if t.Purpose == models.TokenEmailVerification && t.Email != user.Email {
			return models.ErrInvalidToken
		}
		now := time.Now().UTC()
		user.Email, user.EmailVerifiedAt, user.ProfileVersion = t.Email, &now, user.ProfileVersion+1
		res := tx.Model(&models.User{}).Where("id = ?", user.ID).Updates(map[string]any{"email": t.Email,
			"email_verified_at": now, "profile_version": user.ProfileVersion, "updated_at": now})
		if errors.Is(res.Error, gorm.ErrDuplicatedKey) {
			return models.ErrEmailTaken
		}
		if res.Error != nil {
			return res.Error
		}
		if err := voidTokens(tx, user.ID, models.TokenEmailVerification); err != nil {
			return err
		}
		return show(ctx, user)
	})
	var coded *models.Error
	if errors.As(err, &coded) {
		return models.User{}, purpose, err
	}
	return user, purpose, dbError(err)
}

// updateProfile writes updates with the next profile version and returns the
// row as stored.
func (u *Users) updateProfile(ctx context.Context, id string, updates map[string]any) (models.User, error) {
	if !ValidUserID(id) {
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
