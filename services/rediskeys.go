package services

// RedisKeys is the product's key layout in Redis, declared in one place.
// Every key starts with the deployment's prefix (SESSION_KEY_PREFIX), so one
// prefix isolates one deployment:
//
//	<prefix><session id>             a session record (JSON), read by gin-contrib/sessions
//	<prefix>u:<user id>              the user's session index: handle -> session id, and versionField
//	<prefix>throttle:<kind>:<key>    a throttle counter (login:email, login:ip, register:ip)
//	<prefix>audit:throttled:<kind>:<key>  set while a run of refusals by that counter is in the audit log
//	<prefix>audit:prune-lock         held by the one instance pruning the audit log
//
// Session ids are base64url and never contain ':', so no session key can
// collide with the others.
type RedisKeys struct{ prefix string }

// versionField is the per-user index field holding the highest
// models.User.SessionVersion revoked so far. A login that read an older user
// row cannot create its session, so a login racing a password change, a role
// change or a disable never survives it. Each new mark keeps the index for
// at least the absolute timeout, far longer than any login in flight.
const versionField = "#ver"

// Prefix is the deployment's prefix, also the prefix of session keys.
func (k RedisKeys) Prefix() string { return k.prefix }

// Session is the key of the session record with id.
func (k RedisKeys) Session(id string) string { return k.prefix + id }

// UserIndex is the key of the user's session index.
func (k RedisKeys) UserIndex(userID string) string { return k.prefix + "u:" + userID }

// Throttle is the key of one throttle counter: kind names what is counted
// (login:email, login:ip, register:ip), subject whose attempts.
func (k RedisKeys) Throttle(kind, subject string) string {
	return k.prefix + "throttle:" + kind + ":" + subject
}

// ThrottledMark is the key whose presence says that the current run of
// refusals by one throttle counter is already in the audit log; it lives as
// long as the counter's window.
func (k RedisKeys) ThrottledMark(kind, subject string) string {
	return k.prefix + "audit:throttled:" + kind + ":" + subject
}

// AuditPruneLock is the key of the lock that lets one instance at a time
// prune the audit log.
func (k RedisKeys) AuditPruneLock() string { return k.prefix + "audit:prune-lock" }
