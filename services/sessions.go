package services

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/sessionauth/api/models"
)

// Every write to a user's sessions is one atomic script, so a record and the
// user's index never disagree and a request in flight cannot resurrect a
// session. The index is two sorted sets scored by creation time, full and
// pending sessions apart, each capped, so creating, listing and revoking cost
// in proportion to the cap whatever the user's history. Every script first
// migrates the hash index of older versions (once; see RedisKeys).
//
// Scripts take the user's keys as KEYS[1..5] (RedisKeys.userKeys) and the key
// prefix and the absolute timeout in ms as ARGV[1..2].
const (
	migrateLua = `
local prefix, absolute = ARGV[1], ARGV[2]
local function migrate()
  if redis.call('EXISTS', KEYS[4]) == 0 then return end
  local all = redis.call('HGETALL', KEYS[4])
  for i = 1, #all, 2 do
    if all[i] == '#ver' then
      if tonumber(all[i + 1]) > tonumber(redis.call('GET', KEYS[3]) or '0') then
        redis.call('SET', KEYS[3], all[i + 1], 'PX', absolute)
      end
    else
      local body = redis.call('GET', prefix .. all[i + 1])
      if body then
        local ok, rec = pcall(cjson.decode, body)
        local created = ok and type(rec) == 'table' and tonumber(rec.c) or 0
        redis.call('ZADD', KEYS[1], created * 1000, all[i + 1])
        redis.call('PEXPIRE', KEYS[1], absolute)
      end
    end
  end
  redis.call('DEL', KEYS[4])
end
migrate()
`
	// ARGV[3] id, [4] record, [5] TTL ms, [6] session version read, [7] now
	// ms, [8] '1' for a pending session, [9] the cap of its index. Returns
	// how many sessions the cap ended, or minus the revocation mark when the
	// user's sessions were revoked for a newer version than the row read.
	createScript = migrateLua + `
local mark = tonumber(redis.call('GET', KEYS[3]) or '0')
if mark > tonumber(ARGV[6]) then return -mark end
local record = ARGV[4]
local latest = redis.call('GET', KEYS[5])
if latest then
  -- A profile changed after the caller read the user: the session shows the newer one.
  local p, rec = cjson.decode(latest), cjson.decode(record)
  if tonumber(p.v) > (tonumber(rec.pv) or 0) then
    rec.e, rec.n, rec.ev, rec.mt, rec.mp, rec.pv = p.e, p.n, p.ev, p.mt, p.mp, p.v
    record = cjson.encode(rec)
  end
end
local index = KEYS[1]
if ARGV[8] == '1' then index = KEYS[2] end
for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
  if redis.call('EXISTS', prefix .. id) == 0 then redis.call('ZREM', index, id) end
end
redis.call('SET', prefix .. ARGV[3], record, 'PX', ARGV[5])
redis.call('ZADD', index, ARGV[7], ARGV[3])
redis.call('PEXPIRE', index, absolute)
local over = redis.call('ZCARD', index) - tonumber(ARGV[9])
local ended = 0
if over > 0 then
  for _, id in ipairs(redis.call('ZRANGE', index, 0, over)) do
    if over > 0 and id ~= ARGV[3] then
      ended = ended + redis.call('DEL', prefix .. id)
      redis.call('ZREM', index, id)
      over = over - 1
    end
  end
end
return ended`
	// ARGV[3] id. Returns 1 when a live session was deleted.
	deleteScript = migrateLua + `
redis.call('ZREM', KEYS[1], ARGV[3])
redis.call('ZREM', KEYS[2], ARGV[3])
return redis.call('DEL', prefix .. ARGV[3])`
	// ARGV[3] the new session version, 0 for none. Returns how many live
	// sessions were deleted.
	revokeUserScript = migrateLua + `
local n = 0
for _, index in ipairs({KEYS[1], KEYS[2]}) do
  for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do n = n + redis.call('DEL', prefix .. id) end
  redis.call('DEL', index)
end
if tonumber(ARGV[3]) > tonumber(redis.call('GET', KEYS[3]) or '0') then
  redis.call('SET', KEYS[3], ARGV[3], 'PX', absolute)
end
return n`
	// ARGV[3] the profile (models.Profile JSON), [4] its version. Stores it as
	// the user's latest unless a newer one is there, and rewrites the profile
	// fields (only those) of every session that holds an older or the same
	// version, keeping TTLs: a retry heals, an older rewrite racing a newer one
	// changes nothing.
	profileScript = migrateLua + `
local p, v = cjson.decode(ARGV[3]), tonumber(ARGV[4])
local latest = redis.call('GET', KEYS[5])
if latest and tonumber(cjson.decode(latest).v) > v then return 0 end
redis.call('SET', KEYS[5], ARGV[3], 'PX', absolute)
local n = 0
for _, index in ipairs({KEYS[1], KEYS[2]}) do
  for _, id in ipairs(redis.call('ZRANGE', index, 0, -1)) do
    local body = redis.call('GET', prefix .. id)
    if body then
      local rec = cjson.decode(body)
      if (tonumber(rec.pv) or 0) <= v then
        rec.e, rec.n, rec.ev, rec.mt, rec.mp, rec.pv = p.e, p.n, p.ev, p.mt, p.mp, v
        redis.call('SET', prefix .. id, cjson.encode(rec), 'KEEPTTL')
        n = n + 1
      end
    end
  end
end
return n`
	// Returns the ids of the user's sessions, full ones newest first, then pending ones.
	membersScript = migrateLua + `
local ids = redis.call('ZREVRANGE', KEYS[1], 0, -1)
for _, id in ipairs(redis.call('ZREVRANGE', KEYS[2], 0, -1)) do ids[#ids + 1] = id end
return ids`
	// KEYS[1] a record; ARGV[1] a numeric field, [2] its value, [3] the TTL
	// in ms or 0 to keep it. Rewrites that one field only if the record still
	// exists, so a request in flight never brings back a session revoked
	// meanwhile, nor an older value of a field it did not mean to write.
	setFieldScript = `
local body = redis.call('GET', KEYS[1])
if not body then return 0 end
local rec = cjson.decode(body)
rec[ARGV[1]] = tonumber(ARGV[2])
if ARGV[3] == '0' then
  redis.call('SET', KEYS[1], cjson.encode(rec), 'KEEPTTL')
else
  redis.call('SET', KEYS[1], cjson.encode(rec), 'PX', ARGV[3])
end
return 1`
)

// maxPendingPerUser bounds a user's pending (second-factor) sessions: they
// do not count toward MaxPerUser and never end a full session.
const maxPendingPerUser = 5

// SessionCounter is told how many sessions were created and how many live
// ones were revoked (metrics). Declared here so services need no metrics library.
type SessionCounter interface {
	SessionsCreated(n int)
	SessionsRevoked(n int)
}

type noCounter struct{}

func (noCounter) SessionsCreated(int) {}
func (noCounter) SessionsRevoked(int) {}

// SessionStore keeps session records and the per-user indexes in Redis.
// Finding a user's sessions reads that user's index, never the keyspace.
type SessionStore struct {
	redis      *Redis
	keys       RedisKeys
	lifetimes  models.SessionLifetimes
	maxPerUser int
	now        func() time.Time
	counter    SessionCounter
	create     *redis.Script
	deleteOne  *redis.Script
	revokeUser *redis.Script
	members    *redis.Script
	setField   *redis.Script
	profile    *redis.Script
}

// SessionStoreOptions configure a SessionStore.
type SessionStoreOptions struct {
	Lifetimes  models.SessionLifetimes
	MaxPerUser int              // live full sessions per user; a login beyond it ends the oldest
	Now        func() time.Time // time.Now when nil
	Counter    SessionCounter   // told of every session created and revoked; may be nil
}

// NewSessionStore returns the session store on r.
func NewSessionStore(r *Redis, opts SessionStoreOptions) *SessionStore {
	if opts.Counter == nil {
		opts.Counter = noCounter{}
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &SessionStore{
		redis: r, keys: r.Keys(), lifetimes: opts.Lifetimes, maxPerUser: max(1, opts.MaxPerUser), now: opts.Now, counter: opts.Counter,
		create:     redis.NewScript(userKeyCount, createScript),
		deleteOne:  redis.NewScript(userKeyCount, deleteScript),
		revokeUser: redis.NewScript(userKeyCount, revokeUserScript),
		members:    redis.NewScript(userKeyCount, membersScript),
		setField:   redis.NewScript(1, setFieldScript),
		profile:    redis.NewScript(userKeyCount, profileScript),
	}
}

// Lifetimes returns the idle and absolute timeouts.
func (s *SessionStore) Lifetimes() models.SessionLifetimes { return s.lifetimes }

// userArgs are a user script's keys and its first two arguments, then args.
func (s *SessionStore) userArgs(userID string, args ...any) []any {
	out := append(s.keys.userKeys(userID), s.keys.Prefix(), s.lifetimes.Absolute.Milliseconds())
	return append(out, args...)
}

// Create mints a fresh id for rec and stores it with the TTL of its earlier
// deadline in the user's index, in one step; entries of ended sessions are
// pruned from that index (at most the cap of them), and beyond the cap (MaxPerUser full
// sessions, or a few pending ones) the user's oldest sessions of that kind
// end. It fails with a models.RevokedVersionError (an invalid_credentials)
// when the user's sessions were revoked for a newer version than the row the
// caller read (sessionVersion).
func (s *SessionStore) Create(ctx context.Context, rec *models.Session, sessionVersion int64) error {
	rec.ID = newSessionID()
	body, ttl, err := s.encode(rec)
	if err != nil {
		return err
	}
	pending, limit := "0", s.maxPerUser
	if rec.Pending {
		pending, limit = "1", maxPendingPerUser
	}
	var ended int64
	err = s.redis.DoWrite(ctx, func(ctx context.Context, conn redis.Conn) error {
		var err error
		ended, err = redis.Int64(s.create.DoContext(ctx, conn, s.userArgs(rec.UserID, rec.ID, body, ttl.Milliseconds(),
			sessionVersion, s.now().UnixMilli(), pending, limit)...))
		if err == nil && ended < 0 {
			return &models.RevokedVersionError{Mark: -ended}
		}
		return err
	})
	if err != nil {
		return err
	}
	s.counter.SessionsCreated(1)
	s.counter.SessionsRevoked(int(ended))
	return nil
}

// Touch records activity at the record's LastSeenAt and slides its TTL, and
// MarkAuthenticated records a proof at AuthAt: each rewrites only its own
// field, and only while the session exists.
func (s *SessionStore) Touch(ctx context.Context, rec *models.Session) error {
	ttl := s.ttl(rec)
	if ttl <= 0 {
		return models.ErrNotAuthenticated
	}
	return s.setRecordField(ctx, rec.ID, "s", rec.LastSeenAt, ttl.Milliseconds())
}

// MarkAuthenticated records that the session's owner just proved who they are.
func (s *SessionStore) MarkAuthenticated(ctx context.Context, rec *models.Session) error {
	return s.setRecordField(ctx, rec.ID, "a", rec.AuthAt, 0)
}

func (s *SessionStore) setRecordField(ctx context.Context, id, field string, value, ttlMS int64) error {
	return s.redis.Do(ctx, func(ctx context.Context, conn redis.Conn) error {
		_, err := s.setField.DoContext(ctx, conn, s.keys.Session(id), field, value, ttlMS)
		return err
	})
}

// UpdateProfile shows p in every live session of the user at once, without
// logging anyone out, and keeps it as the user's latest profile, which a
// login that read the user before the change picks up. Call it after the
// change is stored; calling it again with the same profile heals a failed
// earlier call.
func (s *SessionStore) UpdateProfile(ctx context.Context, userID string, p models.Profile) error {
	body, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode profile: %w", err)
	}
	return s.redis.Do(ctx, func(ctx context.Context, conn redis.Conn) error {
		_, err := s.profile.DoContext(ctx, conn, s.userArgs(userID, body, p.Version)...)
		return err
	})
}

// Delete removes one session and its index entry.
func (s *SessionStore) Delete(ctx context.Context, rec *models.Session) error {
	return s.deleteByID(ctx, rec.UserID, rec.ID)
}

func (s *SessionStore) deleteByID(ctx context.Context, userID, id string) error {
	return s.redis.DoWrite(ctx, func(ctx context.Context, conn redis.Conn) error {
		n, err := redis.Int(s.deleteOne.DoContext(ctx, conn, s.userArgs(userID, id)...))
		s.counter.SessionsRevoked(n)
		return err
	})
}

// DeleteByID removes a session key known only by id (a cookie whose record is
// gone or unreadable); an index entry left behind is pruned on listing.
func (s *SessionStore) DeleteByID(ctx context.Context, id string) error {
	return s.redis.DoWrite(ctx, func(ctx context.Context, conn redis.Conn) error {
		n, err := redis.Int(redis.DoContext(conn, ctx, "DEL", s.keys.Session(id)))
		s.counter.SessionsRevoked(n)
		return err
	})
}

// RevokeUser deletes every session of the user, pending ones included, and
// returns how many were live. A sessionVersion above zero also refuses
// sessions for logins that read an older user row (pass the row's new
// version with a change that must end the user's sessions).
func (s *SessionStore) RevokeUser(ctx context.Context, userID string, sessionVersion int64) (revoked int, err error) {
	err = s.redis.DoWrite(ctx, func(ctx context.Context, conn redis.Conn) error {
		var err error
		revoked, err = redis.Int(s.revokeUser.DoContext(ctx, conn, s.userArgs(userID, sessionVersion)...))
		return err
	})
	s.counter.SessionsRevoked(revoked)
	return revoked, err
}

// RevokeHandle deletes the user's session with that handle. It reports
// whether a live session of this user was deleted.
func (s *SessionStore) RevokeHandle(ctx context.Context, userID, handle string) (bool, error) {
	ids, err := s.sessionIDs(ctx, userID)
	if err != nil {
		return false, err
	}
	for _, id := range ids {
		if models.SessionHandle(id) == handle {
			revoked := 0
			err := s.redis.DoWrite(ctx, func(ctx context.Context, conn redis.Conn) error {
				var err error
				revoked, err = redis.Int(s.deleteOne.DoContext(ctx, conn, s.userArgs(userID, id)...))
				return err
			})
			s.counter.SessionsRevoked(revoked)
			return revoked > 0, err
		}
	}
	return false, nil
}

func (s *SessionStore) sessionIDs(ctx context.Context, userID string) ([]string, error) {
	var ids []string
	err := s.redis.Do(ctx, func(ctx context.Context, conn redis.Conn) error {
		var err error
		ids, err = redis.Strings(s.members.DoContext(ctx, conn, s.userArgs(userID)...))
		return err
	})
	return ids, err
}

// List returns the user's live sessions, pending ones included, newest
// first, in two round trips (the index, then one MGET); index entries whose
// session ended are pruned.
func (s *SessionStore) List(ctx context.Context, userID string) ([]models.Session, error) {
	var out []models.Session
	err := s.redis.Do(ctx, func(ctx context.Context, conn redis.Conn) error {
		ids, err := redis.Strings(s.members.DoContext(ctx, conn, s.userArgs(userID)...))
		if err != nil || len(ids) == 0 {
			return err
		}
		keys := make([]any, len(ids))
		for i, id := range ids {
			keys[i] = s.keys.Session(id)
		}
		records, err := redis.ByteSlices(redis.DoContext(conn, ctx, "MGET", keys...))
		if err != nil {
			return err
		}
		var dead []any
		for i, body := range records {
			var rec models.Session
			if body == nil || json.Unmarshal(body, &rec) != nil || !rec.Live(s.now(), s.lifetimes) {
				dead = append(dead, ids[i])
				continue
			}
			rec.ID = ids[i]
			out = append(out, rec)
		}
		if len(dead) == 0 {
			return nil
		}
		if _, err := redis.DoContext(conn, ctx, "ZREM", append([]any{s.keys.UserSessions(userID)}, dead...)...); err != nil {
			return err
		}
		_, err = redis.DoContext(conn, ctx, "ZREM", append([]any{s.keys.UserPending(userID)}, dead...)...)
		return err
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].CreatedAt != out[j].CreatedAt {
			return out[i].CreatedAt > out[j].CreatedAt
		}
		return out[i].ID > out[j].ID
	})
	return out, err
}

// encode returns the record's JSON and its TTL, the time to the earlier of
// its two deadlines; a record past them is not_authenticated.
func (s *SessionStore) encode(rec *models.Session) ([]byte, time.Duration, error) {
	ttl := s.ttl(rec)
	if ttl <= 0 {
		return nil, 0, models.ErrNotAuthenticated
	}
	body, err := json.Marshal(rec)
	if err != nil {
		return nil, 0, fmt.Errorf("encode session: %w", err)
	}
	return body, ttl, nil
}

// ttl is the time to the earlier of the record's two deadlines.
func (s *SessionStore) ttl(rec *models.Session) time.Duration {
	return rec.ExpiresAt(s.lifetimes).Sub(s.now())
}

// newSessionID returns 256 random bits in 43 base64url characters.
func newSessionID() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}
