package services

// RedisKeys is the product's key layout in Redis, declared in one place.
// Every key starts with the deployment's prefix (SESSION_KEY_PREFIX), so one
// prefix isolates one deployment:
//
//	<prefix><session id>             a session record (JSON), read by gin-contrib/sessions
//	<prefix>s:<user id>              the user's sessions: a sorted set of session ids scored by creation (ms)
//	<prefix>m:<user id>              the user's pending (second-factor) sessions, scored the same way
//	<prefix>v:<user id>              the highest session version revoked so far (see SessionStore)
//	<prefix>p:<user id>              the user's latest profile copy (models.Profile JSON, with its version)
//	<prefix>u:<user id>              the index of versions before the sorted sets (a hash of handle ->
//	                                 session id and "#ver"): read, migrated and deleted, never written
//	<prefix>throttle:<kind>:<key>    a throttle counter (login:email, login:ip, register:ip, passkey-begin:ip, …)
//	<prefix>audit:throttled:<kind>:<key>  set while a run of refusals by that counter is in the audit log
//	<prefix>audit:prune-lock         held by the one instance pruning the audit log
//	<prefix>webauthn:<challenge>     a passkey ceremony begun and not finished (JSON), 5 minutes, taken once
//
// Session ids are base64url and never contain ':', so no session key can
// collide with the others.
type RedisKeys struct{ prefix string }

// Prefix is the deployment's prefix, also the prefix of session keys.
func (k RedisKeys) Prefix() string { return k.prefix }

// Session is the key of the session record with id.
func (k RedisKeys) Session(id string) string { return k.prefix + id }

// UserSessions is the key of the user's index of full sessions.
func (k RedisKeys) UserSessions(userID string) string { return k.prefix + "s:" + userID }

// UserPending is the key of the user's index of pending sessions.
func (k RedisKeys) UserPending(userID string) string { return k.prefix + "m:" + userID }

// UserVersion is the key of the user's revocation version.
func (k RedisKeys) UserVersion(userID string) string { return k.prefix + "v:" + userID }

// UserProfile is the key of the user's latest profile copy.
func (k RedisKeys) UserProfile(userID string) string { return k.prefix + "p:" + userID }

// LegacyUserIndex is the key of the hash index older versions kept.
func (k RedisKeys) LegacyUserIndex(userID string) string { return k.prefix + "u:" + userID }

// Throttle is the key of one throttle counter: kind names what is counted
// (login:email, login:ip, register:ip), subject whose attempts.
func (k RedisKeys) Throttle(kind, subject string) string {
	return k.prefix + "throttle:" + kind + ":" + subject
}

// userKeys are the keys every script on a user's sessions takes, in this
// order: KEYS[1] full index, KEYS[2] pending index, KEYS[3] version, KEYS[4]
// legacy index, KEYS[5] profile.
func (k RedisKeys) userKeys(userID string) []any {
	return []any{k.UserSessions(userID), k.UserPending(userID), k.UserVersion(userID), k.LegacyUserIndex(userID),
		k.UserProfile(userID)}
}

// userKeyCount is len(userKeys(…)).
const userKeyCount = 5

// ThrottledMark is the key whose presence says that the current run of
// refusals by one throttle counter is already in the audit log; it lives as
// long as the counter's window.
func (k RedisKeys) ThrottledMark(kind, subject string) string {
	return k.prefix + "audit:throttled:" + kind + ":" + subject
}

// AuditPruneLock is the key of the lock that lets one instance at a time
// prune the audit log.
func (k RedisKeys) AuditPruneLock() string { return k.prefix + "audit:prune-lock" }

// PasskeyChallenge is the key of the passkey ceremony begun with challenge
// (base64url, so it never holds ':'), found again by the challenge the
// browser signed: no cookie is needed between begin and finish.
func (k RedisKeys) PasskeyChallenge(challenge string) string {
	return k.prefix + "webauthn:" + challenge
}
