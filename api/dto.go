package api

import (
	"time"

	"github.com/sessionauth/api/models"
	"github.com/sessionauth/api/services"
)

// userResponse is the contract's user object; a models.User is never
// serialised directly, so a hash cannot leak.
type userResponse struct {
	ID            string      `json:"id"`
	Email         string      `json:"email"`
	Name          string      `json:"name"`
	Role          models.Role `json:"role"`
	Disabled      bool        `json:"disabled"`
	EmailVerified bool        `json:"email_verified"`
	MFA           mfaResponse `json:"mfa"`
	CreatedAt     string      `json:"created_at"`
}

// mfaResponse is the user's second factors.
type mfaResponse struct {
	TOTP     bool `json:"totp"`
	Passkeys int  `json:"passkeys"`
}

func newUserResponse(u models.User) userResponse {
	return userResponse{ID: u.ID, Email: u.Email, Name: u.Name, Role: u.Role, Disabled: u.Disabled,
		EmailVerified: u.EmailVerified(), MFA: mfaResponse{TOTP: u.TOTPEnabled, Passkeys: u.PasskeyCount},
		CreatedAt: formatTime(u.CreatedAt)}
}

type userEnvelope struct {
	User userResponse `json:"user"`
}

type successResponse struct {
	Success bool `json:"success"`
}

type revokedResponse struct {
	Success bool `json:"success"`
	Revoked int  `json:"revoked"`
}

// formatTime is RFC 3339 in UTC, whole seconds, ending in Z.
func formatTime(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

func unixTime(sec int64) string { return formatTime(time.Unix(sec, 0)) }

type credentialsRequest struct {
	Email    string `json:"email" validate:"required,max=254,email,ascii"`
	Password string `json:"password" validate:"required,min=8,max=128"`
	Remember *bool  `json:"remember"` // absent: true
}

func (r *credentialsRequest) normalize() { r.Email = services.NormalizeEmail(r.Email) }

type registerRequest struct {
	Email    string `json:"email" validate:"required,max=254,email,ascii"`
	Password string `json:"password" validate:"required,min=8,max=128"`
	Name     string `json:"name" validate:"required,min=1,max=100,visible"`
}

func (r *registerRequest) normalize() {
	r.Email = services.NormalizeEmail(r.Email)
	r.Name = services.NormalizeName(r.Name)
}

type createUserRequest struct {
	Email    string      `json:"email" validate:"required,max=254,email,ascii"`
	Password string      `json:"password" validate:"required,min=8,max=128"`
	Name     string      `json:"name" validate:"required,min=1,max=100,visible"`
	Role     models.Role `json:"role" validate:"required,oneof=user admin"`
}

func (r *createUserRequest) normalize() {
	r.Email = services.NormalizeEmail(r.Email)
	r.Name = services.NormalizeName(r.Name)
}

type passwordRequest struct {
	CurrentPassword string `json:"current_password" validate:"required,max=128"`
	NewPassword     string `json:"new_password" validate:"required,min=8,max=128"`
}

type reauthRequest struct {
	Password string `json:"password" validate:"required,max=128"`
	Code     string `json:"code" validate:"max=32"` // a TOTP or recovery code, while TOTP is on
}

type patchUserRequest struct {
	Role     *models.Role `json:"role" validate:"omitempty,oneof=user admin"`
	Disabled *bool        `json:"disabled"`
}
