package services

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/sessionauth/api/models"
)

// The database side of passkeys, on the passkeys table and the user's
// passkey_count, which is kept in step with it (recounted on every change)
// so that a listing and the session's profile copy need no join.

// errTooManyPasskeys refuses a passkey beyond models.MaxPasskeys.
var errTooManyPasskeys = models.Validation(map[string]string{"passkeys": "at most 20 passkeys per account; remove one first"})

// ListPasskeys returns the user's passkeys, newest first.
func (u *Users) ListPasskeys(ctx context.Context, userID string) ([]models.Passkey, error) {
	if !ValidUserID(userID) {
		return nil, models.ErrNotFound
	}
	db, cancel := u.ctx(ctx)
	defer cancel()
	keys := []models.Passkey{}
	err := db.Where("user_id = ?", userID).Order("created_at DESC, id").Find(&keys).Error
	return keys, dbError(err)
}

// PasskeyOwner returns the id of the user whose passkey has credentialID,
// or not_found.
func (u *Users) PasskeyOwner(ctx context.Context, credentialID []byte) (string, error) {
	db, cancel := u.ctx(ctx)
	defer cancel()
	var pk models.Passkey
	err := db.Select("user_id").Where("credential_id = ?", credentialID).Take(&pk).Error
	return pk.UserID, dbError(err)
}

// AddPasskey stores a new passkey of the user: validation_failed beyond
// models.MaxPasskeys, invalid_code for a credential already registered (to
// anyone). When it is the user's first second factor every session of the
// user ends, failing closed (see revokingTx), and first is true: the caller
// gets a new session. It returns the user as stored.
func (u *Users) AddPasskey(ctx context.Context, userID string, pk models.Passkey, revoke Revoker) (user models.User, first bool, err error) {
	user, err = u.revokingTx(ctx, userID, func(tx *gorm.DB, user *models.User) (bool, error) {
		if user.PasskeyCount >= models.MaxPasskeys {
			return false, errTooManyPasskeys
		}
		pk.UserID = user.ID
		if err := tx.Create(&pk).Error; errors.Is(err, gorm.ErrDuplicatedKey) {
			return false, models.ErrInvalidCode
		} else if err != nil {
			return false, err
		}
		first = !user.HasSecondFactor()
		updates, err := recountPasskeys(tx, user)
		if err != nil {
			return false, err
		}
		if !first {
			updates["updated_at"] = time.Now().UTC()
			return false, tx.Model(&models.User{}).Where("id = ?", user.ID).Updates(updates).Error
		}
		return true, writeRevoking(tx, user, updates)
	}, revoke)
	return user, first && err == nil, err
}

// DeletePasskey removes the user's passkey with that id (not_found for any
// id that is not one of theirs); the recovery codes go too when no second
// factor is left. It returns the user as stored (the profile copy changes)
// and the passkey removed.
func (u *Users) DeletePasskey(ctx context.Context, userID, id string) (models.User, models.Passkey, error) {
	var removed models.Passkey
	if !ValidUserID(id) { // passkey ids are UUIDs: any other spelling names none
		return models.User{}, removed, models.ErrNotFound
	}
	user, err := u.revokingTx(ctx, userID, func(tx *gorm.DB, user *models.User) (bool, error) {
		// Read first: the name goes into the notice and the id into the audit log.
		if err := tx.Where("id = ? AND user_id = ?", id, user.ID).Take(&removed).Error; err != nil {
			return false, err
		}
		if err := tx.Delete(&models.Passkey{}, "id = ?", removed.ID).Error; err != nil {
			return false, err
		}
		updates, err := recountPasskeys(tx, user)
		if err != nil {
			return false, err
		}
		if !user.HasSecondFactor() {
			if err := replaceRecoveryCodes(tx, user.ID, nil); err != nil {
				return false, err
			}
		}
		updates["updated_at"] = time.Now().UTC()
		return false, tx.Model(&models.User{}).Where("id = ?", user.ID).Updates(updates).Error
	}, nil)
	return user, removed, err
}

// recountPasskeys sets user.PasskeyCount from the table and advances the
// profile version, and returns the columns to write.
func recountPasskeys(tx *gorm.DB, user *models.User) (map[string]any, error) {
	var n int64
	if err := tx.Model(&models.Passkey{}).Where("user_id = ?", user.ID).Count(&n).Error; err != nil {
		return nil, err
	}
	user.PasskeyCount = int(n)
	user.ProfileVersion++
	return map[string]any{"passkey_count": user.PasskeyCount, "profile_version": user.ProfileVersion}, nil
}

// PasskeyUse is what an accepted assertion moves on its passkey.
type PasskeyUse struct {
	SignCount    uint32
	UserVerified bool
	BackupState  bool
	At           time.Time
}

// RecordPasskeyUse stores use on pk, only if the passkey's signature counter
// is still the one read with pk, and reports whether it did: of two
// assertions racing with the same counter one is refused, as a clone's
// would be.
func (u *Users) RecordPasskeyUse(ctx context.Context, pk models.Passkey, use PasskeyUse) (bool, error) {
	db, cancel := u.ctx(ctx)
	defer cancel()
	res := db.Model(&models.Passkey{}).Where("id = ? AND sign_count = ?", pk.ID, pk.SignCount).Updates(map[string]any{
		"sign_count": use.SignCount, "user_verified": use.UserVerified, "backup_state": use.BackupState, "last_used_at": use.At.UTC(),
	})
	return res.RowsAffected == 1, dbError(res.Error)
}
