package services

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/sessionauth/api/models"
)

// Every session write is one atomic script, so the record and the per-user
// index never disagree and a request in flight cannot resurrect a session.
const (
	createScript = `
if tonumber(redis.call('HGET', KEYS[2], '#ver') or '0') > tonumber(ARGV[5]) then return 0 end
local index = redis.call('HGETALL', KEYS[2])
for i = 1, #index, 2 do
  if index[i] ~= '#ver' and redis.call('EXISTS', ARGV[7] .. index[i + 1]) == 0 then redis.call('HDEL', KEYS[2], index[i]) end
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('HSET', KEYS[2], ARGV[3], ARGV[4])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[6]) then redis.call('PEXPIRE', KEYS[2], ARGV[6]) end
return 1`
	deleteScript = `
local n = redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[2], ARGV[1])
return n`
	revokeUserScript = `
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  if all[i] ~= '#ver' then
    n = n + redis.call('DEL', ARGV[1] .. all[i + 1])
    redis.call('HDEL', KEYS[1], all[i])
  end
end
if tonumber(ARGV[2]) > tonumber(redis.call('HGET', KEYS[1], '#ver') or '0') then
  redis.call('HSET', KEYS[1], '#ver', ARGV[2])
  if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
end
return n`
	revokeHandleScript = `
local sid = redis.call('HGET', KEYS[1], ARGV[2])
if not sid then return 0 end
redis.call('HDEL', KEYS[1], ARGV[2])
return redis.call('DEL', ARGV[1] .. sid)`
)

// SessionCounter is told how many sessions were created and how many live
// ones were revoked (metrics). Declared here so services need no metrics library.
type SessionCounter interface {
	SessionsCreated(n int)
	SessionsRevoked(n int)
}

type noCounter struct{}

func (noCounter) SessionsCreated(int) {}
func (noCounter) SessionsRevoked(int) {}

// SessionStore keeps session records and the per-user index in Redis.
// Finding a user's sessions reads that index, never the keyspace.
type SessionStore struct {
	redis        *Redis
	keys         RedisKeys
	lifetimes    models.SessionLifetimes
	now          func() time.Time
	counter      SessionCounter
	create       *redis.Script
	deleteOne    *redis.Script
	revokeUser   *redis.Script
	revokeHandle *redis.Script
}

// SessionStoreOptions configure a SessionStore.
type SessionStoreOptions struct {
	Lifetimes models.SessionLifetimes
	Now       func() time.Time // time.Now when nil
	Counter   SessionCounter   // told of every session created and revoked; may be nil
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
		redis: r, keys: r.Keys(), lifetimes: opts.Lifetimes, now: opts.Now, counter: opts.Counter,
		create:       redis.NewScript(2, createScript),
		deleteOne:    redis.NewScript(2, deleteScript),
		revokeUser:   redis.NewScript(1, revokeUserScript),
		revokeHandle: redis.NewScript(1, revokeHandleScript),
	}
}

// Lifetimes returns the idle and absolute timeouts.
func (s *SessionStore) Lifetimes() models.SessionLifetimes { return s.lifetimes }

// Create mints a fresh id and handle for rec, stores it with the TTL of its
// earlier deadline and adds it to the user's index, in one step; index
// entries whose session has expired are pruned in that step too, so the index
// of a user who never lists sessions does not grow. It fails
// with invalid_credentials when the user's sessions were revoked for a newer
// version than the row the caller read (sessionVersion).
func (s *SessionStore) Create(ctx context.Context, rec *models.Session, sessionVersion int64) error {
	rec.ID = newSessionID()
	body, ttl, err := s.encode(rec)
	if err != nil {
		return err
	}
	err = s.redis.DoWrite(ctx, func(ctx context.Context, conn redis.Conn) error {
		ok, err := redis.Int(s.create.DoContext(ctx, conn, s.keys.Session(rec.ID), s.keys.UserIndex(rec.UserID),
			body, ttl.Milliseconds(), rec.Handle(), rec.ID, sessionVersion, s.lifetimes.Absolute.Milliseconds(), s.keys.Prefix()))
		if err == nil && ok == 0 {
			return models.ErrInvalidCredentials
		}
		return err
	})
	if err == nil {
		s.counter.SessionsCreated(1)
	}
	return err
}

// Update rewrites rec only if it still exists (SET XX), so a slide written by
// a request in flight never brings back a session revoked meanwhile.
func (s *SessionStore) Update(ctx context.Context, rec *models.Session) error {
	body, ttl, err := s.encode(rec)
	if err != nil {
		return err
	}
	return s.redis.Do(ctx, func(ctx context.Context, conn redis.Conn) error {
		_, err := redis.DoContext(conn, ctx, "SET", s.keys.Session(rec.ID), body, "PX", ttl.Milliseconds(), "XX")
		if errors.Is(err, redis.ErrNil) {
			return nil // revoked meanwhile: stays revoked
		}
		return err
	})
}

// Delete removes one session and its index entry.
func (s *SessionStore) Delete(ctx context.Context, rec *models.Session) error {
	return s.redis.DoWrite(ctx, func(ctx context.Context, conn redis.Conn) error {
		n, err := redis.Int(s.deleteOne.DoContext(ctx, conn, s.keys.Session(rec.ID), s.keys.UserIndex(rec.UserID), rec.Handle()))
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

// RevokeUser deletes every session of the user and returns how many were
// live. A sessionVersion above zero also refuses sessions for logins that read
// an older user row (pass the row's new version after a credential change).
func (s *SessionStore) RevokeUser(ctx context.Context, userID string, sessionVersion int64) (revoked int, err error) {
	err = s.redis.DoWrite(ctx, func(ctx context.Context, conn redis.Conn) error {
		var err error
		revoked, err = redis.Int(s.revokeUser.DoContext(ctx, conn, s.keys.UserIndex(userID), s.keys.Prefix(), sessionVersion, s.lifetimes.Absolute.Milliseconds()))
		return err
	})
	s.counter.SessionsRevoked(revoked)
	return revoked, err
}

// RevokeHandle deletes the user's session with that handle. It reports
// whether a live session of this user was deleted.
func (s *SessionStore) RevokeHandle(ctx context.Context, userID, handle string) (bool, error) {
	var n int
	err := s.redis.DoWrite(ctx, func(ctx context.Context, conn redis.Conn) error {
		var err error
		n, err = redis.Int(s.revokeHandle.DoContext(ctx, conn, s.keys.UserIndex(userID), s.keys.Prefix(), handle))
		return err
	})
	s.counter.SessionsRevoked(n)
	return n > 0, err
}

// List returns the user's live sessions, newest first, in two round trips
// (the index, then one MGET); entries whose session expired are pruned.
func (s *SessionStore) List(ctx context.Context, userID string) ([]models.Session, error) {
	var out []models.Session
	err := s.redis.Do(ctx, func(ctx context.Context, conn redis.Conn) error {
		index, err := redis.StringMap(redis.DoContext(conn, ctx, "HGETALL", s.keys.UserIndex(userID)))
		if err != nil || len(index) == 0 {
			return err
		}
		delete(index, versionField)
		handles := make([]string, 0, len(index))
		keys := make([]any, 0, len(index))
		for handle, id := range index {
			handles = append(handles, handle)
			keys = append(keys, s.keys.Session(id))
		}
		if len(keys) == 0 {
			return nil
		}
		records, err := redis.ByteSlices(redis.DoContext(conn, ctx, "MGET", keys...))
		if err != nil {
			return err
		}
		var dead []any
		for i, body := range records {
			var rec models.Session
			if body == nil || json.Unmarshal(body, &rec) != nil || !rec.Live(s.now(), s.lifetimes) {
				dead = append(dead, handles[i])
				continue
			}
			rec.ID = index[handles[i]]
			out = append(out, rec)
		}
		if len(dead) > 0 {
			_, err = redis.DoContext(conn, ctx, "HDEL", append([]any{s.keys.UserIndex(userID)}, dead...)...)
		}
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
