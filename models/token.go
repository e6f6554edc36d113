package models

import "time"

// TokenPurpose is what a mailed token proves.
type TokenPurpose string

// The purposes of tokens.
const (
	TokenPasswordReset     TokenPurpose = "password_reset"     // sets a new password
	TokenEmailVerification TokenPurpose = "email_verification" // proves the user's email
	TokenEmailChange       TokenPurpose = "email_change"       // proves a new email and makes it the user's
)

// Token is a single-use token sent by mail. Only its SHA-256 is stored (the
// token has 256 random bits, so a fast hash is as good as a slow one), and it
// is found by that hash directly.
type Token struct {
	Hash      string       `gorm:"size:64;primaryKey"`
	UserID    string       `gorm:"type:uuid;not null;index"`
	Purpose   TokenPurpose `gorm:"size:32;not null"`
	Email     string       `gorm:"size:254;not null"` // the address the token was mailed to, which it proves
	ExpiresAt time.Time    `gorm:"not null"`
	CreatedAt time.Time    `gorm:"not null"`
}
