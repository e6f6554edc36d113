package models

import "time"

// RecoveryCode is one unused recovery code of a user, stored as a keyed hash
// and found by it directly; using it deletes it.
type RecoveryCode struct {
	Hash      string    `gorm:"size:64;primaryKey"`
	UserID    string    `gorm:"type:uuid;not null;index"`
	CreatedAt time.Time `gorm:"not null"`
}

// MFA methods, as POST /login names them in "methods".
const (
	MethodTOTP         = "totp"
	MethodRecoveryCode = "recovery_code"
	MethodPasskey      = "passkey"
)

// Passkey is a WebAuthn credential of a user: a passwordless login and a
// second factor. ID is the opaque handle the API shows. Attestation is the
// attestation format; Transports the transports the browser named, comma
// separated. SignCount, the flags and LastUsedAt move with every assertion:
// a counter that does not grow (for an authenticator that keeps one) or a
// backup-eligible flag that changes refuses the assertion.
type Passkey struct {
	ID             string `gorm:"type:uuid;primaryKey"`
	UserID         string `gorm:"type:uuid;not null;index"`
	CredentialID   []byte `gorm:"not null;uniqueIndex"`
	PublicKey      []byte `gorm:"not null"`
	Attestation    string `gorm:"size:32;not null"`
	AAGUID         []byte
	SignCount      uint32    `gorm:"not null"`
	Transports     string    `gorm:"size:200;not null"`
	UserVerified   bool      `gorm:"not null;default:false"`
	BackupEligible bool      `gorm:"not null"`
	BackupState    bool      `gorm:"not null"`
	Name           string    `gorm:"size:100;not null"`
	CreatedAt      time.Time `gorm:"not null"`
	LastUsedAt     *time.Time
}

// MaxPasskeys is how many passkeys one user may have.
const MaxPasskeys = 20
