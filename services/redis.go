package services

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"
)

// idlePingAfter is how long a pooled connection may sit idle before it is
// PINGed on borrow; fresher ones are trusted, so the hot path costs no PING.
const idlePingAfter = 30 * time.Second

// NewRedisPool returns a bounded redigo pool for url (redis:// or rediss://,
// with ACL user, password and database taken from the URL). timeout bounds
// each dial, read and write; callers bound the wait for a connection with
// their context (GetContext) or a RedisGate.
func NewRedisPool(url string, size int, timeout time.Duration) *redis.Pool {
	return &redis.Pool{
		MaxIdle:     size,
		MaxActive:   size,
		Wait:        true,
		IdleTimeout: 4 * time.Minute,
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialURLContext(ctx, url,
				redis.DialConnectTimeout(timeout),
				redis.DialReadTimeout(timeout),
				redis.DialWriteTimeout(timeout),
			)
		},
		TestOnBorrow: func(c redis.Conn, lastUsed time.Time) error {
			if time.Since(lastUsed) < idlePingAfter {
				return nil
			}
			_, err := c.Do("PING")
			return err
		},
	}
}

// StartEmbeddedRedis starts an in-process Redis-compatible server on a
// loopback port for development, with its TTL clock running so keys expire.
func StartEmbeddedRedis() (url string, stop func(), err error) {
	m := miniredis.NewMiniRedis()
	m.ClockTTL(true)
	if err := m.StartAddr("127.0.0.1:0"); err != nil {
		return "", nil, fmt.Errorf("start embedded redis: %w", err)
	}
	return "redis://" + m.Addr() + "/0", m.Close, nil
}

// PingRedis checks that Redis answers within ctx.
func PingRedis(ctx context.Context, pool *redis.Pool) error {
	conn, err := pool.GetContext(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	_, err = redis.DoContext(conn, ctx, "PING")
	return err
}

// RedisGate bounds the wait for a pooled Redis connection. Every borrower
// takes a permit first, so the pool itself never blocks, and a caller waits
// at most the gate's timeout before answering 503.
type RedisGate struct {
	permits chan struct{}
	wait    time.Duration
}

// ErrRedisBusy is returned when no Redis connection frees up in time.
var ErrRedisBusy = errors.New("no redis connection free within the wait")

// NewRedisGate returns a gate of size permits (the pool's MaxActive).
func NewRedisGate(size int, wait time.Duration) *RedisGate {
	return &RedisGate{permits: make(chan struct{}, size), wait: wait}
}

// Acquire takes a permit, waiting at most the gate's timeout or until ctx ends.
func (g *RedisGate) Acquire(ctx context.Context) (release func(), err error) {
	select {
	case g.permits <- struct{}{}:
		return g.release, nil
	default:
	}
	timer := time.NewTimer(g.wait)
	defer timer.Stop()
	select {
	case g.permits <- struct{}{}:
		return g.release, nil
	case <-timer.C:
		return nil, ErrRedisBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (g *RedisGate) release() { <-g.permits }
