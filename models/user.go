// Package models holds the GORM models and the coded errors shared by every layer.
package models

import "time"

// Role is a user's role. Only the constants below are valid.
type Role string

// The roles of the contract.
const (
	RoleUser  Role = "user"
	RoleAdmin Role = "admin"
)

// Valid reports whether r is one of the contract's roles.
func (r Role) Valid() bool { return r == RoleUser || r == RoleAdmin }

// User is an account. Email is stored trimmed and lower-cased; PasswordHash
// is a PHC Argon2id string or an imported bcrypt hash and never leaves the server.
type User struct {
	ID           string `gorm:"type:uuid;primaryKey"`
	Email        string `gorm:"size:254;not null;uniqueIndex"`
	Name         string `gorm:"size:100;not null"`
	Role         Role   `gorm:"size:16;not null;default:user;index"`
	Disabled     bool   `gorm:"not null;default:false"`
	PasswordHash string `gorm:"not null" json:"-"`
	// SessionVersion grows whenever every session of the user must end
	// (password, role or disabled changed); a login that read an older row
	// cannot create a session after that change.
	SessionVersion int64 `gorm:"not null;default:1" json:"-"`
	// EmailVerifiedAt is when the user proved the email is theirs; users that
	// existed before verification was introduced count as verified (Migrate).
	EmailVerifiedAt *time.Time
	// TOTPEnabled and PasskeyCount are the user's second factors, kept on the
	// row so that a listing and the session's profile copy need no join.
	TOTPEnabled  bool `gorm:"not null;default:false"`
	PasskeyCount int  `gorm:"not null;default:0"`
	// TOTPSecret is the active TOTP secret, TOTPPending one being set up,
	// both sealed with the MFA key (never in clear, never in a session or a
	// log); TOTPLastStep is the last time step accepted, so a code is accepted
	// only once.
	TOTPSecret   []byte `json:"-"`
	TOTPPending  []byte `json:"-"`
	TOTPLastStep int64  `gorm:"not null;default:0" json:"-"`
	// ProfileVersion grows with every change of what GET /me shows (name,
	// email, email_verified, mfa), so the copies in the sessions can tell a
	// newer profile from an older one.
	ProfileVersion int64     `gorm:"not null;default:1" json:"-"`
	CreatedAt      time.Time `gorm:"not null;index:idx_users_created_id,priority:1"`
	UpdatedAt      time.Time `gorm:"not null"`
}

// EmailVerified reports whether the user proved the email is theirs.
func (u User) EmailVerified() bool { return u.EmailVerifiedAt != nil }

// HasSecondFactor reports whether the user has TOTP or a passkey.
func (u User) HasSecondFactor() bool { return u.TOTPEnabled || u.PasskeyCount > 0 }

// Profile is what GET /me shows of a user beyond id, role and creation: the
// part that changes without ending the user's sessions, copied into each of
// them with its version.
type Profile struct {
	Version       int64  `json:"v"`
	Email         string `json:"e"`
	Name          string `json:"n"`
	EmailVerified bool   `json:"ev"`
	TOTP          bool   `json:"mt"`
	Passkeys      int    `json:"mp"`
}

// Profile returns the user's current profile.
func (u User) Profile() Profile {
	return Profile{Version: u.ProfileVersion, Email: u.Email, Name: u.Name, EmailVerified: u.EmailVerified(),
		TOTP: u.TOTPEnabled, Passkeys: u.PasskeyCount}
}

// IsAdmin reports whether the user holds the admin role.
func (u User) IsAdmin() bool { return u.Role == RoleAdmin }
