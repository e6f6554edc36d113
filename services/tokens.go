package services

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"

	"github.com/sessionauth/api/models"
)

// newToken returns a token of 256 random bits (base64url) and its hash.
func newToken() (token, hash string) {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, tokenHash(token)
}

// tokenHash is how a token is stored and looked up.
func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// issueToken stores a new token of purpose for the user, proving email, and
// deletes the user's earlier tokens of that purpose (a new link supersedes the
// older ones). It returns the token, which only the mail will carry.
func issueToken(tx *gorm.DB, userID string, purpose models.TokenPurpose, email string, ttl time.Duration) (string, error) {
	if err := voidTokens(tx, userID, purpose); err != nil {
		return "", err
	}
	token, hash := newToken()
	now := time.Now().UTC()
	err := tx.Create(&models.Token{Hash: hash, UserID: userID, Purpose: purpose, Email: email,
		ExpiresAt: now.Add(ttl), CreatedAt: now}).Error
	return token, err
}

// takeToken finds the token by its hash, deletes it (single use) and returns
// it, locked for the rest of tx. Unknown, used, expired, superseded and
// tokens of another purpose are all one invalid_token.
func takeToken(tx *gorm.DB, token string, purposes ...models.TokenPurpose) (models.Token, error) {
	var t models.Token
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Where("hash = ? AND purpose IN ?", tokenHash(token), purposes).Take(&t).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return t, models.ErrInvalidToken
	}
	if err != nil {
		return t, err
	}
	if err := tx.Delete(&models.Token{}, "hash = ?", t.Hash).Error; err != nil {
		return t, err
	}
	if !time.Now().Before(t.ExpiresAt) {
		return t, models.ErrInvalidToken
	}
	return t, nil
}

// voidTokens deletes the user's tokens of the purposes (all when none given).
func voidTokens(tx *gorm.DB, userID string, purposes ...models.TokenPurpose) error {
	q := tx.Where("user_id = ?", userID)
	if len(purposes) > 0 {
		q = q.Where("purpose IN ?", purposes)
	}
	return q.Delete(&models.Token{}).Error
}
