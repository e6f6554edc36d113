package services

import (
	"context"
	"errors"
	"time"

	"gorm.io/gorm"

	"github.com/sessionauth/api/models"
)

// The database side of second factors, on the users table and the recovery
// codes table.

// SetPendingTOTP stores a sealed TOTP secret being set up (not yet active),
// replacing an earlier one; mfa_already_enabled while TOTP is on.
func (u *Users) SetPendingTOTP(ctx context.Context, id string, sealed func(models.User) []byte) error {
	db, cancel := u.ctx(ctx)
	defer cancel()
	err := db.Transaction(func(tx *gorm.DB) error {
		var user models.User
		if err := tx.Where("id = ?", id).Take(&user).Error; err != nil {
			return err
		}
		if user.TOTPEnabled {
			return models.ErrMFAAlreadyEnabled
		}
		return tx.Model(&models.User{}).Where("id = ?", id).Update("totp_pending", sealed(user)).Error
	})
	return codedOrDB(err)
}

// EnableTOTP turns the pending secret on with a first accepted step, replaces
// the recovery codes with hashes, and, when it is the user's first second
// factor, ends every session of the user failing closed (see revokingTx).
// check verifies the code against the pending secret and returns its step.
func (u *Users) EnableTOTP(ctx context.Context, id string, check func(models.User) (int64, error), recoveryHashes []string,
	revoke Revoker) (models.User, bool, error) {
	var first bool
	user, err := u.revokingTx(ctx, id, func(tx *gorm.DB, user *models.User) (bool, error) {
		if user.TOTPEnabled {
			return false, models.ErrMFAAlreadyEnabled
		}
		if len(user.TOTPPending) == 0 {
			return false, models.ErrInvalidCode // nothing set up: POST /mfa/totp first
		}
		step, err := check(*user)
		if err != nil {
			return false, err
		}
		first = !user.HasSecondFactor()
		user.TOTPEnabled, user.TOTPSecret, user.TOTPPending, user.TOTPLastStep = true, user.TOTPPending, nil, step
		user.ProfileVersion++
		updates := map[string]any{"totp_enabled": true, "totp_secret": user.TOTPSecret, "totp_pending": nil,
			"totp_last_step": step, "profile_version": user.ProfileVersion}
		if err := replaceRecoveryCodes(tx, user.ID, recoveryHashes); err != nil {
			return false, err
		}
		if !first {
			return false, tx.Model(&models.User{}).Where("id = ?", user.ID).Updates(updates).Error
		}
		return true, writeRevoking(tx, user, updates)
	}, revoke)
	return user, first, err
}

// DisableTOTP turns TOTP off; the recovery codes go too when no passkey is
// left. It returns the user as stored (the profile copy changes).
func (u *Users) DisableTOTP(ctx context.Context, id string) (models.User, error) {
	return u.changeProfile(ctx, id, func(tx *gorm.DB, user *models.User) error {
		if !user.TOTPEnabled {
			return models.ErrNotFound
		}
		user.TOTPEnabled, user.TOTPSecret, user.TOTPPending, user.TOTPLastStep = false, nil, nil, 0
		if user.PasskeyCount == 0 {
			if err := replaceRecoveryCodes(tx, user.ID, nil); err != nil {
				return err
			}
		}
		return tx.Model(&models.User{}).Where("id = ?", user.ID).Updates(map[string]any{"totp_enabled": false,
			"totp_secret": nil, "totp_pending": nil, "totp_last_step": 0}).Error
	})
}

// RemoveFactors removes every second factor of the user (TOTP, recovery
// codes, passkeys) and ends every session of theirs, failing closed: the
// way back for a user who lost every device. It reports whether the user had
// a factor to remove.
func (u *Users) RemoveFactors(ctx context.Context, id string, revoke Revoker) (models.User, bool, error) {
	var had bool
	user, err := u.revokingTx(ctx, id, func(tx *gorm.DB, user *models.User) (bool, error) {
		had = user.HasSecondFactor()
		if err := replaceRecoveryCodes(tx, user.ID, nil); err != nil {
			return false, err
		}
		if err := tx.Where("user_id = ?", user.ID).Delete(&models.Passkey{}).Error; err != nil {
			return false, err
		}
		user.TOTPEnabled, user.TOTPSecret, user.TOTPPending, user.TOTPLastStep, user.PasskeyCount = false, nil, nil, 0, 0
		user.ProfileVersion++
		return true, writeRevoking(tx, user, map[string]any{"totp_enabled": false, "totp_secret": nil, "totp_pending": nil,
			"totp_last_step": 0, "passkey_count": 0, "profile_version": user.ProfileVersion})
	}, revoke)
	return user, had, err
}

// AcceptTOTPStep records step as the last accepted one, only if it is later
// than the last one accepted: a code is accepted once, also by two requests
// racing with it.
func (u *Users) AcceptTOTPStep(ctx context.Context, id string, step int64) (bool, error) {
	db, cancel := u.ctx(ctx)
	defer cancel()
	res := db.Model(&models.User{}).Where("id = ? AND totp_enabled = ? AND totp_last_step < ?", id, true, step).
		Update("totp_last_step", step)
	return res.RowsAffected == 1, dbError(res.Error)
}

// ReplaceRecoveryCodes stores a new set of recovery code hashes for the user;
// the old codes stop working.
func (u *Users) ReplaceRecoveryCodes(ctx context.Context, id string, hashes []string) error {
	db, cancel := u.ctx(ctx)
	defer cancel()
	return dbError(db.Transaction(func(tx *gorm.DB) error { return replaceRecoveryCodes(tx, id, hashes) }))
}

// UseRecoveryCode deletes the user's recovery code with that hash and reports
// whether there was one: each code works once.
func (u *Users) UseRecoveryCode(ctx context.Context, id, hash string) (bool, error) {
	db, cancel := u.ctx(ctx)
	defer cancel()
	res := db.Where("user_id = ? AND hash = ?", id, hash).Delete(&models.RecoveryCode{})
	return res.RowsAffected == 1, dbError(res.Error)
}

// HasRecoveryCodes reports whether the user has an unused recovery code.
func (u *Users) HasRecoveryCodes(ctx context.Context, id string) (bool, error) {
	db, cancel := u.ctx(ctx)
	defer cancel()
	var n int64
	err := db.Model(&models.RecoveryCode{}).Where("user_id = ?", id).Limit(1).Count(&n).Error
	return n > 0, dbError(err)
}

func replaceRecoveryCodes(tx *gorm.DB, userID string, hashes []string) error {
	if err := tx.Where("user_id = ?", userID).Delete(&models.RecoveryCode{}).Error; err != nil {
		return err
	}
	if len(hashes) == 0 {
		return nil
	}
	now := time.Now().UTC()
	codes := make([]models.RecoveryCode, len(hashes))
	for i, h := range hashes {
		codes[i] = models.RecoveryCode{Hash: h, UserID: userID, CreatedAt: now}
	}
	return tx.Create(&codes).Error
}

// changeProfile applies change to the locked row with the next profile
// version and returns the user as stored; the caller then shows the new
// profile in the user's sessions.
func (u *Users) changeProfile(ctx context.Context, id string, change func(tx *gorm.DB, user *models.User) error) (models.User, error) {
	user, err := u.revokingTx(ctx, id, func(tx *gorm.DB, user *models.User) (bool, error) {
		if err := change(tx, user); err != nil {
			return false, err
		}
		user.ProfileVersion++
		return false, tx.Model(&models.User{}).Where("id = ?", user.ID).
			Updates(map[string]any{"profile_version": user.ProfileVersion, "updated_at": time.Now().UTC()}).Error
	}, nil)
	return user, err
}

// codedOrDB passes a coded error through and maps any other to the database's.
func codedOrDB(err error) error {
	var coded *models.Error
	if errors.As(err, &coded) {
		return err
	}
	return dbError(err)
}
