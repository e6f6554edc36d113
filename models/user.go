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
	SessionVersion int64     `gorm:"not null;default:1" json:"-"`
	CreatedAt      time.Time `gorm:"not null;index:idx_users_created_id,priority:1"`
	UpdatedAt      time.Time `gorm:"not null"`
}

// IsAdmin reports whether the user holds the admin role.
func (u User) IsAdmin() bool { return u.Role == RoleAdmin }
