package models

import (
	"errors"
	"fmt"
	"time"
)

// Error is the one coded error of the product. Code is its identity (several
// codes share an HTTP status); middleware.Errors maps it to the contract.
type Error struct {
	Code       string
	Message    string
	Fields     map[string]string
	RetryAfter time.Duration
	// Dependency names the failing dependency of a service_unavailable error
	// ("redis", "database", "hashing") for logs and metrics; never sent to clients.
	Dependency string
	cause      error
}

func (e *Error) Error() string {
	if e.cause != nil {
		return e.Code + ": " + e.cause.Error()
	}
	return e.Code
}

// Unwrap returns the internal cause, if any.
func (e *Error) Unwrap() error { return e.cause }

// Is matches coded errors by code, so errors.Is(err, ErrTooManyRequests)
// holds for a copy that carries a RetryAfter.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	return false
}

// One value per code of the contract's error table.
var (
	ErrInvalidJSON            = &Error{Code: "invalid_json", Message: "The request body is not valid JSON."}
	ErrValidation             = &Error{Code: "validation_failed", Message: "Some fields are missing or invalid."}
	ErrInvalidCurrentPassword = &Error{Code: "invalid_current_password", Message: "The current password is wrong."}
	ErrNotAuthenticated       = &Error{Code: "not_authenticated", Message: "You are not logged in."}
	ErrInvalidCredentials     = &Error{Code: "invalid_credentials", Message: "Email or password is wrong."}
	ErrForbidden              = &Error{Code: "forbidden", Message: "You are not allowed to do this."}
	ErrCrossOrigin            = &Error{Code: "cross_origin_rejected", Message: "Cross-origin request rejected."}
	ErrReauthRequired         = &Error{Code: "reauthentication_required", Message: "Confirm your password first (POST /reauth)."}
	ErrRegistrationDisabled   = &Error{Code: "registration_disabled", Message: "Registration is disabled."}
	ErrNotFound               = &Error{Code: "not_found", Message: "Not found."}
	ErrMethodNotAllowed       = &Error{Code: "method_not_allowed", Message: "Method not allowed."}
	ErrEmailTaken             = &Error{Code: "email_taken", Message: "An account with this email already exists."}
	ErrLastAdmin              = &Error{Code: "last_admin", Message: "This change would leave no active admin."}
	ErrPayloadTooLarge        = &Error{Code: "payload_too_large", Message: "The request body is larger than 64 KiB."}
	ErrUnsupportedMediaType   = &Error{Code: "unsupported_media_type", Message: "Send the body as application/json."}
	ErrTooManyRequests        = &Error{Code: "too_many_requests", Message: "Too many attempts; try again later."}
	ErrUnavailable            = &Error{Code: "service_unavailable", Message: "The service is temporarily unavailable; try again shortly."}
	ErrInternal               = &Error{Code: "internal_error", Message: "Something went wrong on our side."}
	ErrInvalidToken           = &Error{Code: "invalid_token", Message: "This link is invalid or has expired; ask for a new one."}
	ErrInvalidCode            = &Error{Code: "invalid_code", Message: "The code is wrong, already used or expired."}
	ErrMFARequired            = &Error{Code: "mfa_required", Message: "Complete the login with your second factor."}
	ErrMFAEnrollmentRequired  = &Error{Code: "mfa_enrollment_required", Message: "Set up a second factor before using admin routes."}
	ErrEmailNotVerified       = &Error{Code: "email_not_verified", Message: "Verify your email address first: use the link we sent."}
	ErrMFAAlreadyEnabled      = &Error{Code: "mfa_already_enabled", Message: "TOTP is already on; turn it off first."}
)

// Codes returns every coded error of the contract's table, one value per
// code, for the error mapper's test.
func Codes() []*Error {
	return []*Error{ErrInvalidJSON, ErrValidation, ErrInvalidCurrentPassword, ErrNotAuthenticated, ErrInvalidCredentials,
		ErrForbidden, ErrCrossOrigin, ErrReauthRequired, ErrRegistrationDisabled, ErrNotFound, ErrMethodNotAllowed,
		ErrEmailTaken, ErrLastAdmin, ErrPayloadTooLarge, ErrUnsupportedMediaType, ErrTooManyRequests, ErrUnavailable, ErrInternal,
		ErrInvalidToken, ErrInvalidCode, ErrMFARequired, ErrMFAEnrollmentRequired, ErrEmailNotVerified, ErrMFAAlreadyEnabled}
}

// Validation returns a validation_failed error naming the bad fields.
func Validation(fields map[string]string) *Error {
	e := *ErrValidation
	e.Fields = fields
	return &e
}

// TooManyRequests returns a too_many_requests error carrying what is left of the window.
func TooManyRequests(retryAfter time.Duration) *Error {
	e := *ErrTooManyRequests
	e.RetryAfter = retryAfter
	return &e
}

// Unavailable wraps the cause of an outage of dependency (redis, database,
// hashing) as service_unavailable; the cause is logged, never sent.
func Unavailable(dependency string, cause error) *Error {
	e := *ErrUnavailable
	e.Dependency = dependency
	e.RetryAfter = 2 * time.Second
	e.cause = fmt.Errorf("%s: %w", dependency, cause)
	return &e
}
