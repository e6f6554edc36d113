package services

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/gomodule/redigo/redis"

	"github.com/sessionauth/api/models"
)

// Counting reserves before the attempt runs, in one script, so concurrent
// attempts can never slip past the limit: a reservation is released when the
// attempt succeeds and kept as a failure otherwise. A throttled attempt is
// neither counted nor extends the window, which is fixed from its first count.
// A refusal names the counter that refused (its index in KEYS, from 1).
const (
	reserveScript = `
local wait, which = 0, 0
for i = 1, #KEYS do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n >= tonumber(ARGV[i]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl < 0 then ttl = tonumber(ARGV[#KEYS + 1]) end
    if ttl > wait then wait, which = ttl, i end
  end
end
if wait > 0 then return {wait, which} end
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[#KEYS + 1]) end
end
return {0, 0}`
	releaseScript = `
if ARGV[1] == 'reset' then redis.call('DEL', KEYS[1])
elseif redis.call('DECR', KEYS[1]) <= 0 then redis.call('DEL', KEYS[1]) end
if #KEYS > 1 and redis.call('DECR', KEYS[2]) <= 0 then redis.call('DEL', KEYS[2]) end
return 0`
)

// ThrottleLimits are the contract's throttling settings.
type ThrottleLimits struct {
	LoginMaxFailures   int
	LoginIPMaxFailures int
	LoginWindow        time.Duration
	RegisterIPMax      int
	RegisterWindow     time.Duration
}

// ThrottledError is too_many_requests naming the counter that refused, so a
// run of refusals can be told apart per counter and window (the audit log
// stores one event per run). It unwraps to the coded error the client gets.
type ThrottledError struct {
	Kind    string // the counter's kind: login:email, login:ip, register:ip
	Subject string // whose attempts it counts (a normalised email or a client IP)
	Err     *models.Error
}

func (e *ThrottledError) Error() string { return e.Err.Error() }

// Unwrap returns the coded too_many_requests, which carries Retry-After.
func (e *ThrottledError) Unwrap() error { return e.Err }

// Throttle counts attempts in Redis, so every instance shares the counts.
type Throttle struct {
	redis   *Redis
	keys    RedisKeys
	limits  ThrottleLimits
	reserve *redis.Script
	release *redis.Script
}

// NewThrottle returns the Redis-backed throttle with limits.
func NewThrottle(r *Redis, limits ThrottleLimits) *Throttle {
	return &Throttle{redis: r, keys: r.Keys(), limits: limits,
		reserve: redis.NewScript(-1, reserveScript), release: redis.NewScript(-1, releaseScript)}
}

// LoginAttempt is a reserved password attempt; call Succeeded or keep it as a failure.
type LoginAttempt struct {
	throttle *Throttle
	emailKey string
	ipKey    string
}

// BeginLogin reserves one password attempt for the normalised email and the
// client IP, or fails with too_many_requests carrying what is left of the window.
func (t *Throttle) BeginLogin(ctx context.Context, email, ip string) (*LoginAttempt, error) {
	email, ip = strings.ToLower(email), clientIPKey(ip)
	a := &LoginAttempt{throttle: t, emailKey: t.keys.Throttle("login:email", email), ipKey: t.keys.Throttle("login:ip", ip)}
	err := t.take(ctx, []counter{{"login:email", email, t.limits.LoginMaxFailures}, {"login:ip", ip, t.limits.LoginIPMaxFailures}},
		t.limits.LoginWindow)
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Succeeded resets the email's count and gives the IP its attempt back.
func (a *LoginAttempt) Succeeded(ctx context.Context) error {
	t := a.throttle
	// The verdict is known: release even when the client has gone, or an
	// abandoned correct login would count as a failure.
	return t.redis.Do(context.WithoutCancel(ctx), func(ctx context.Context, conn redis.Conn) error {
		_, err := t.release.DoContext(ctx, conn, 2, a.emailKey, a.ipKey, "reset")
		return err
	})
}

// Abandon gives the attempt back to the email and the IP: it ended without a
// verdict on the password (the database or hashing was unavailable), so an
// outage during which clients retry never locks an account out. Best effort:
// when Redis is what failed, the count stays.
func (a *LoginAttempt) Abandon(ctx context.Context) {
	t := a.throttle
	_ = t.redis.Do(context.WithoutCancel(ctx), func(ctx context.Context, conn redis.Conn) error {
		_, err := t.release.DoContext(ctx, conn, 2, a.emailKey, a.ipKey, "give-back")
		return err
	})
}

// The limit of POST /login/passkey/begin per client IP: each call stores a
// challenge in Redis for anyone who asks, so anonymous callers are bounded.
const (
	passkeyBeginsPerWindow = 30
	passkeyBeginWindow     = time.Minute
)

// BeginPasskeyLogin counts one passwordless login begun from the client IP:
// at most 30 a minute, then too_many_requests.
func (t *Throttle) BeginPasskeyLogin(ctx context.Context, ip string) error {
	return t.take(ctx, []counter{{"passkey-begin:ip", clientIPKey(ip), passkeyBeginsPerWindow}}, passkeyBeginWindow)
}

// BeginRegister counts one registration attempt for the client IP.
func (t *Throttle) BeginRegister(ctx context.Context, ip string) error {
	return t.take(ctx, []counter{{"register:ip", clientIPKey(ip), t.limits.RegisterIPMax}}, t.limits.RegisterWindow)
}

// clientIPKey is what one client IP is counted as: an IPv4 address as it
// is, an IPv6 address by its /64 (one subscriber's network, whose other
// addresses cost an attacker nothing) and an IPv4-mapped IPv6 address as its
// IPv4 address, so neither rotating addresses in a /64 nor writing one
// address two ways escapes a per-IP limit. Anything unparsable is kept as is.
func clientIPKey(ip string) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	network, err := addr.Prefix(64)
	if err != nil {
		return ip
	}
	return network.String()
}

// Mail-related limits of the contract: a per-email limit on reset mails
// (silent), and a per-user limit on verification and email-change mails.
const (
	mailsPerWindow = 3
	mailWindow     = 15 * time.Minute
)

// BeginForgot counts one POST /password/forgot for the client IP, with the
// registration limits (REGISTER_IP_MAX per REGISTER_WINDOW).
func (t *Throttle) BeginForgot(ctx context.Context, ip string) error {
	return t.take(ctx, []counter{{"forgot:ip", clientIPKey(ip), t.limits.RegisterIPMax}}, t.limits.RegisterWindow)
}

// AllowResetMail counts one reset mail for the normalised email and reports
// whether it may go out (at most 3 per 15 minutes). The refusal is silent:
// the answer to forgot never depends on it.
func (t *Throttle) AllowResetMail(ctx context.Context, email string) (bool, error) {
	err := t.take(ctx, []counter{{"forgot:email", strings.ToLower(email), mailsPerWindow}}, mailWindow)
	var throttled *ThrottledError
	if errors.As(err, &throttled) {
		return false, nil
	}
	return err == nil, err
}

// ClearLoginFailures forgets the failed logins of the normalised email (a
// password reset proved the owner).
func (t *Throttle) ClearLoginFailures(ctx context.Context, email string) error {
	return t.redis.Do(ctx, func(ctx context.Context, conn redis.Conn) error {
		_, err := redis.DoContext(conn, ctx, "DEL", t.keys.Throttle("login:email", strings.ToLower(email)))
		return err
	})
}

// BeginUserMail counts one mail of kind (verification, email-change) that the
// user asked for: at most 3 per 15 minutes, then too_many_requests.
func (t *Throttle) BeginUserMail(ctx context.Context, kind, userID string) error {
	return t.take(ctx, []counter{{"mail:" + kind, userID, mailsPerWindow}}, mailWindow)
}

// BeginTokenUse reserves one attempt to use a mailed token for the client IP,
// on the IP's login-failure counter: a wrong token counts as a failed login,
// a right one is given back (TokenAttempt.Succeeded).
func (t *Throttle) BeginTokenUse(ctx context.Context, ip string) (*TokenAttempt, error) {
	ip = clientIPKey(ip)
	if err := t.take(ctx, []counter{{"login:ip", ip, t.limits.LoginIPMaxFailures}}, t.limits.LoginWindow); err != nil {
		return nil, err
	}
	return &TokenAttempt{throttle: t, ipKey: t.keys.Throttle("login:ip", ip)}, nil
}

// TokenAttempt is a reserved attempt to use a token.
type TokenAttempt struct {
	throttle *Throttle
	ipKey    string
}

// Succeeded gives the attempt back: only wrong tokens count.
func (a *TokenAttempt) Succeeded(ctx context.Context) {
	t := a.throttle
	_ = t.redis.Do(context.WithoutCancel(ctx), func(ctx context.Context, conn redis.Conn) error {
		_, err := t.release.DoContext(ctx, conn, 1, a.ipKey, "give-back")
		return err
	})
}

// counter is one throttle counter and its limit per window.
type counter struct {
	kind, subject string
	limit         int
}

// take reserves one attempt on every counter, or refuses with a
// ThrottledError naming the counter whose window ends last.
func (t *Throttle) take(ctx context.Context, counters []counter, window time.Duration) error {
	args := make([]any, 0, 2*len(counters)+2)
	args = append(args, len(counters))
	for _, c := range counters {
		args = append(args, t.keys.Throttle(c.kind, c.subject))
	}
	for _, c := range counters {
		args = append(args, c.limit)
	}
	args = append(args, window.Milliseconds())
	var reply []int64
	err := t.redis.Do(ctx, func(ctx context.Context, conn redis.Conn) error {
		var err error
		reply, err = redis.Int64s(t.reserve.DoContext(ctx, conn, args...))
		if err == nil && len(reply) != 2 {
			err = fmt.Errorf("throttle: unexpected reply %v", reply)
		}
		return err
	})
	if err != nil {
		return err
	}
	if wait, which := reply[0], int(reply[1]); wait > 0 && which >= 1 && which <= len(counters) {
		c := counters[which-1]
		return &ThrottledError{Kind: c.kind, Subject: c.subject, Err: models.TooManyRequests(time.Duration(wait) * time.Millisecond)}
	}
	return nil
}
