package services

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/gomodule/redigo/redis"
	"github.com/google/uuid"
	"gorm.io/gorm"

	"github.com/sessionauth/api/models"
)

// pruneBatch is how many events one DELETE of the pruning removes, so no
// statement holds locks or grows the WAL for long however much is due.
const pruneBatch = 1000

// maxUserAgentBytes is the contract's cut of a stored user agent.
const maxUserAgentBytes = 256

// The prune lock is released, and extended between batches, only by the
// instance that holds it (its random token).
const (
	releaseLockScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`
	extendLockScript = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`
)

// Audit is the audit log: security events stored in the database, read back
// newest first in keyset pages, and pruned past the retention. Every database
// call is bounded by the database timeout; a failure is service_unavailable.
type Audit struct {
	db          *gorm.DB
	timeout     time.Duration
	redis       *Redis
	keys        RedisKeys
	now         func() time.Time
	lockTTL     time.Duration
	releaseLock *redis.Script
	extendLock  *redis.Script
}

// AuditOptions configure the audit log.
type AuditOptions struct {
	DB      *gorm.DB
	Timeout time.Duration // bounds each database call
	Redis   *Redis        // throttled-run marks and the prune lock
	Now     func() time.Time
}

// NewAudit returns the audit log.
func NewAudit(o AuditOptions) *Audit {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Audit{db: o.DB, timeout: o.Timeout, redis: o.Redis, keys: o.Redis.Keys(), now: o.Now,
		lockTTL: max(time.Minute, 10*o.Timeout), releaseLock: redis.NewScript(1, releaseLockScript),
		extendLock: redis.NewScript(1, extendLockScript)}
}

func (a *Audit) ctx(ctx context.Context) (*gorm.DB, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	return a.db.WithContext(ctx), cancel
}

// Record stores ev with a new id and the current time; its user agent is cut
// to 256 bytes (and made valid UTF-8 without NUL, which PostgreSQL's text
// refuses: a browser may send any byte above 0x7f). Callers pass only facts that may be stored: never a password,
// token, code, cookie or session id.
func (a *Audit) Record(ctx context.Context, ev models.AuditEvent) error {
	id, err := uuid.NewV7() // time-ordered: new rows land at the end of the primary key
	if err != nil {
		return fmt.Errorf("audit event id: %w", err)
	}
	ev.ID = id.String()
	// UTC always: SQLite keeps times as text, which sorts as time only within one offset.
	ev.At = a.now().UTC().Truncate(time.Microsecond)
	ev.UserAgent = storableText(ev.UserAgent, maxUserAgentBytes)
	if ev.Details == nil {
		ev.Details = models.AuditDetails{}
	}
	db, cancel := a.ctx(ctx)
	defer cancel()
	return dbError(db.Create(&ev).Error)
}

// FirstRefusal reports whether a refusal by the throttle starts a run that
// the audit log has not stored yet, and marks the run stored until the
// counter's window ends: a run of refusals is stored once per counter and window.
func (a *Audit) FirstRefusal(ctx context.Context, refused *ThrottledError) (bool, error) {
	window := max(refused.Err.RetryAfter, time.Millisecond)
	var first bool
	err := a.redis.Do(ctx, func(ctx context.Context, conn redis.Conn) error {
		_, err := redis.String(redis.DoContext(conn, ctx, "SET", a.keys.ThrottledMark(refused.Kind, refused.Subject), 1,
			"NX", "PX", window.Milliseconds()))
		if errors.Is(err, redis.ErrNil) {
			return nil
		}
		first = err == nil
		return err
	})
	return first, err
}

// AuditQuery selects one page of events, newest first.
type AuditQuery struct {
	UserID string       // only events about this user; "" for all
	Event  models.Event // only this event; "" for all
	Limit  int          // events per page, 1..100
	Before *AuditCursor // the page after this cursor; nil for the first page
}

// AuditPage is one page of events and the cursor of the next (nil at the end).
type AuditPage struct {
	Events []models.AuditEvent
	Next   *AuditCursor
}

// List returns one page of events, ordered by time then id, newest first,
// by keyset: a page costs the same at any depth, and events stored while a
// client pages neither repeat nor shift the pages it has not read yet.
func (a *Audit) List(ctx context.Context, q AuditQuery) (AuditPage, error) {
	db, cancel := a.ctx(ctx)
	defer cancel()
	query := db.Model(&models.AuditEvent{})
	if q.UserID != "" {
		query = query.Where("user_id = ?", q.UserID)
	}
	if q.Event != "" {
		query = query.Where("event = ?", q.Event)
	}
	if q.Before != nil {
		query = query.Where("(at, id) < (?, ?)", q.Before.At, q.Before.ID)
	}
	events := make([]models.AuditEvent, 0, q.Limit+1)
	if err := query.Order("at DESC, id DESC").Limit(q.Limit + 1).Find(&events).Error; err != nil {
		return AuditPage{}, dbError(err)
	}
	page := AuditPage{Events: events}
	if len(events) > q.Limit {
		page.Events = events[:q.Limit]
		last := page.Events[q.Limit-1]
		page.Next = &AuditCursor{At: last.At, ID: last.ID}
	}
	return page, nil
}

// AuditCursor is the position after which the next page starts: the time
// and id of the last event of a page. Clients see it only as an opaque string.
type AuditCursor struct {
	At time.Time
	ID string
}

// String is the cursor as clients see it: base64url of the time in
// microseconds and the id's 16 bytes.
func (c AuditCursor) String() string {
	var b [24]byte
	binary.BigEndian.PutUint64(b[:8], uint64(c.At.UnixMicro()))
	id, _ := uuid.Parse(c.ID)
	copy(b[8:], id[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// ErrBadCursor is returned by ParseAuditCursor for a string that is not one
// of its cursors.
var ErrBadCursor = errors.New("not a cursor of this listing")

// ParseAuditCursor reads a cursor made by AuditCursor.String.
func ParseAuditCursor(s string) (AuditCursor, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil || len(b) != 24 {
		return AuditCursor{}, ErrBadCursor
	}
	micros := int64(binary.BigEndian.Uint64(b[:8]))
	id, err := uuid.FromBytes(b[8:])
	if err != nil || micros < 0 {
		return AuditCursor{}, ErrBadCursor
	}
	return AuditCursor{At: time.UnixMicro(micros).UTC(), ID: id.String()}, nil
}

// Prune deletes the events stored before cutoff, pruneBatch rows per
// statement until fewer remain, and returns how many it deleted. Between
// batches it calls keepGoing (nil: always), which may stop it.
func (a *Audit) Prune(ctx context.Context, cutoff time.Time, keepGoing func(context.Context) bool) (int64, error) {
	var total int64
	for {
		db, cancel := a.ctx(ctx)
		res := db.Exec("DELETE FROM audit_events WHERE id IN (SELECT id FROM audit_events WHERE at < ? ORDER BY at LIMIT ?)",
			cutoff.UTC(), pruneBatch)
		cancel()
		if res.Error != nil {
			return total, dbError(res.Error)
		}
		total += res.RowsAffected
		if res.RowsAffected < pruneBatch || ctx.Err() != nil || (keepGoing != nil && !keepGoing(ctx)) {
			return total, ctx.Err()
		}
	}
}

// PruneExclusive prunes the events older than retention while holding the
// deployment's prune lock in Redis, so at most one instance prunes at a
// time; ran is false when another instance holds it. The lock is extended
// between batches and released only by its holder.
func (a *Audit) PruneExclusive(ctx context.Context, retention time.Duration) (deleted int64, ran bool, err error) {
	token := make([]byte, 16)
	_, _ = rand.Read(token) // crypto/rand.Read never fails (Go 1.24+)
	key := a.keys.AuditPruneLock()
	err = a.redis.Do(ctx, func(ctx context.Context, conn redis.Conn) error {
		_, err := redis.String(redis.DoContext(conn, ctx, "SET", key, token, "NX", "PX", a.lockTTL.Milliseconds()))
		if errors.Is(err, redis.ErrNil) {
			return nil
		}
		ran = err == nil
		return err
	})
	if err != nil || !ran {
		return 0, false, err
	}
	defer a.lockScript(context.WithoutCancel(ctx), a.releaseLock, key, token)
	deleted, err = a.Prune(ctx, a.now().Add(-retention), func(ctx context.Context) bool {
		return a.lockScript(ctx, a.extendLock, key, token, a.lockTTL.Milliseconds())
	})
	return deleted, true, err
}

// lockScript runs a script on the prune lock and reports whether the caller
// still held it.
func (a *Audit) lockScript(ctx context.Context, script *redis.Script, key string, args ...any) bool {
	var n int
	_ = a.redis.Do(ctx, func(ctx context.Context, conn redis.Conn) error {
		var err error
		n, err = redis.Int(script.DoContext(ctx, conn, append([]any{key}, args...)...))
		return err
	})
	return n > 0
}

// storableText makes s valid UTF-8 without NUL and cuts it to at most n
// bytes without splitting a character.
func storableText(s string, n int) string {
	s = strings.ReplaceAll(strings.ToValidUTF8(s, "\uFFFD"), "\x00", "")
	if len(s) <= n {
		return s
	}
	s = s[:n]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s
}
