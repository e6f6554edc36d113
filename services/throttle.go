package services

import (
	"context"
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
const (
	reserveScript = `
local wait = 0
for i = 1, #KEYS do
  local n = tonumber(redis.call('GET', KEYS[i]) or '0')
  if n >= tonumber(ARGV[i]) then
    local ttl = redis.call('PTTL', KEYS[i])
    if ttl > wait then wait = ttl end
    if ttl < 0 then wait = tonumber(ARGV[#KEYS + 1]) end
  end
end
if wait > 0 then return wait end
for i = 1, #KEYS do
  if redis.call('INCR', KEYS[i]) == 1 then redis.call('PEXPIRE', KEYS[i], ARGV[#KEYS + 1]) end
end
return 0`
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
	a := &LoginAttempt{throttle: t, emailKey: t.keys.Throttle("login:email", strings.ToLower(email)), ipKey: t.keys.Throttle("login:ip", clientIPKey(ip))}
	err := t.take(ctx, []string{a.emailKey, a.ipKey}, []int{t.limits.LoginMaxFailures, t.limits.LoginIPMaxFailures}, t.limits.LoginWindow)
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

// BeginRegister counts one registration attempt for the client IP.
func (t *Throttle) BeginRegister(ctx context.Context, ip string) error {
	return t.take(ctx, []string{t.keys.Throttle("register:ip", clientIPKey(ip))}, []int{t.limits.RegisterIPMax}, t.limits.RegisterWindow)
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

func (t *Throttle) take(ctx context.Context, keys []string, limits []int, window time.Duration) error {
	args := make([]any, 0, 2*len(keys)+2)
	args = append(args, len(keys))
	for _, k := range keys {
		args = append(args, k)
	}
	for _, l := range limits {
		args = append(args, l)
	}
	args = append(args, window.Milliseconds())
	var waitMS int64
	err := t.redis.Do(ctx, func(ctx context.Context, conn redis.Conn) error {
		var err error
		waitMS, err = redis.Int64(t.reserve.DoContext(ctx, conn, args...))
		return err
	})
	if err != nil {
		return err
	}
	if waitMS > 0 {
		return models.TooManyRequests(time.Duration(waitMS) * time.Millisecond)
	}
	return nil
}
