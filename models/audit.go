package models

import (
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// Event is the name of a security event, in the log's event field and the
// audit log's event column. Only the constants below are valid: the set is
// closed, so a typo does not compile and GET /admin/audit?event= can refuse
// an unknown name.
type Event string

// The security events. Actor is who acted (nil when nobody was logged in),
// user whose account it concerns.
const (
	EventUserRegistered         Event = "user_registered"          // POST /register
	EventLoginSucceeded         Event = "login_succeeded"          // a full login
	EventLoginFailed            Event = "login_failed"             // wrong password (also at /password and /reauth), disabled account, unknown email (no user)
	EventLoginThrottled         Event = "login_throttled"          // 429: stored once per throttle counter and window
	EventLogout                 Event = "logout"                   // POST /logout
	EventLogoutAll              Event = "logout_all"               // POST /logout-all, POST /admin/users/:id/logout-all
	EventSessionRevoked         Event = "session_revoked"          // DELETE /sessions/:id, DELETE /admin/users/:id/sessions/:sid
	EventPasswordChanged        Event = "password_changed"         // POST /password
	EventPasswordResetRequested Event = "password_reset_requested" // POST /password/forgot, POST /admin/users/:id/password-reset
	EventPasswordReset          Event = "password_reset"           // POST /password/reset
	EventEmailChangeRequested   Event = "email_change_requested"   // POST /me/email
	EventEmailVerified          Event = "email_verified"           // POST /email/verify (an address or a change)
	EventMFAEnabled             Event = "mfa_enabled"              // TOTP confirmed
	EventMFADisabled            Event = "mfa_disabled"             // TOTP off, or every factor removed by an admin
	EventMFAUsed                Event = "mfa_used"                 // a second factor completed a login or a proof
	EventRecoveryCodeUsed       Event = "recovery_code_used"       // a recovery code was spent
	EventPasskeyAdded           Event = "passkey_added"
	EventPasskeyRemoved         Event = "passkey_removed"
	EventRoleChanged            Event = "role_changed"  // PATCH /admin/users/:id role
	EventUserDisabled           Event = "user_disabled" // PATCH /admin/users/:id disabled true
	EventUserEnabled            Event = "user_enabled"  // PATCH /admin/users/:id disabled false
	EventUserCreated            Event = "user_created"  // POST /admin/users
	EventUserDeleted            Event = "user_deleted"  // DELETE /me, DELETE /admin/users/:id
	EventReauthenticated        Event = "reauthenticated"
)

// Events returns every event name, in the order above.
func Events() []Event {
	return []Event{EventUserRegistered, EventLoginSucceeded, EventLoginFailed, EventLoginThrottled, EventLogout,
		EventLogoutAll, EventSessionRevoked, EventPasswordChanged, EventPasswordResetRequested, EventPasswordReset,
		EventEmailChangeRequested, EventEmailVerified, EventMFAEnabled, EventMFADisabled, EventMFAUsed,
		EventRecoveryCodeUsed, EventPasskeyAdded, EventPasskeyRemoved, EventRoleChanged, EventUserDisabled,
		EventUserEnabled, EventUserCreated, EventUserDeleted, EventReauthenticated}
}

// Valid reports whether e is one of the declared events.
func (e Event) Valid() bool {
	for _, known := range Events() {
		if e == known {
			return true
		}
	}
	return false
}

// AuditEvent is one stored security event. It keeps no foreign key to users,
// so a deleted user's history stays. Details never hold a password, token,
// code, cookie or session id (a session appears only as its listing handle).
// The indexes serve the keyset pages (newest first): per user, per event
// name, all, and the pruning by age.
type AuditEvent struct {
	ID        string       `gorm:"type:uuid;primaryKey;index:idx_audit_events_at_id,priority:2;index:idx_audit_events_user_at_id,priority:3;index:idx_audit_events_event_at_id,priority:3"`
	At        time.Time    `gorm:"not null;index:idx_audit_events_at_id,priority:1;index:idx_audit_events_user_at_id,priority:2;index:idx_audit_events_event_at_id,priority:2"`
	Event     Event        `gorm:"size:40;not null;index:idx_audit_events_event_at_id,priority:1"`
	ActorID   *string      `gorm:"type:uuid"`
	UserID    *string      `gorm:"type:uuid;index:idx_audit_events_user_at_id,priority:1"`
	IP        string       `gorm:"size:64;not null"`
	UserAgent string       `gorm:"size:256;not null"`
	Details   AuditDetails `gorm:"not null"`
}

// AuditDetails are an event's own facts (how many sessions ended, the new
// role, which throttle counter refused), stored as a JSON object: jsonb on
// PostgreSQL, text on SQLite.
type AuditDetails map[string]any

// GormDBDataType picks jsonb on PostgreSQL, so operators can query fields.
func (AuditDetails) GormDBDataType(db *gorm.DB, _ *schema.Field) string {
	if db.Dialector.Name() == "postgres" {
		return "jsonb"
	}
	return "text"
}

// Value stores the details as a JSON object ({} when empty).
func (d AuditDetails) Value() (driver.Value, error) {
	if d == nil {
		return "{}", nil
	}
	b, err := json.Marshal(map[string]any(d))
	if err != nil {
		return nil, fmt.Errorf("encode audit details: %w", err)
	}
	return string(b), nil
}

// Scan reads the stored JSON object.
func (d *AuditDetails) Scan(src any) error {
	var raw []byte
	switch v := src.(type) {
	case []byte:
		raw = v
	case string:
		raw = []byte(v)
	case nil:
		*d = AuditDetails{}
		return nil
	default:
		return fmt.Errorf("audit details: cannot scan %T", src)
	}
	out := AuditDetails{}
	if err := json.Unmarshal(raw, &out); err != nil {
		return fmt.Errorf("decode audit details: %w", err)
	}
	*d = out
	return nil
}

// AccountError is a failure on a known account: the coded error the client
// gets, plus whose account it was, for the audit log only (never answered,
// so an unknown email and a known one still look alike).
type AccountError struct {
	UserID string
	Err    error
}

func (e *AccountError) Error() string { return e.Err.Error() }

// Unwrap returns the coded error the client gets.
func (e *AccountError) Unwrap() error { return e.Err }

// OnAccount marks err as a failure on the account userID; with no user it
// returns err unchanged.
func OnAccount(userID string, err error) error {
	if userID == "" {
		return err
	}
	return &AccountError{UserID: userID, Err: err}
}

// AccountOf returns the account a failure was on, or "".
func AccountOf(err error) string {
	var ae *AccountError
	if errors.As(err, &ae) {
		return ae.UserID
	}
	return ""
}
