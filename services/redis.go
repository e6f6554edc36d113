package services

import (
	"context"
	"errors"
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"

	"github.com/sessionauth/api/models"
)

// idlePingAfter is how long a pooled connection may sit idle before it is
// PINGed on borrow; fresher ones are trusted, so the hot path costs no PING.
const idlePingAfter = 30 * time.Second

// RedisOptions configure the product's Redis access.
type RedisOptions struct {
	URL       string        // redis:// or rediss://, with ACL user, password and database
	PoolSize  int           // connections at most; also the number of borrowers at once
	Timeout   time.Duration // bounds each dial, read and write, and the wait for a connection
	KeyPrefix string        // every key of the product starts with it
}

// Redis is the product's one way to Redis: the pool, the gate that every
// borrower goes through, the per-call timeout and the key layout. Nothing
// else borrows a connection, so "every borrower waits at most Timeout for a
// connection" holds by construction, not by convention.
type Redis struct {
	pool    *redis.Pool
	permits chan struct{}
	timeout time.Duration
	keys    RedisKeys
}

// NewRedis returns the Redis access for opts. It does not connect: a Redis
// that is down at start heals when it answers. A pooled connection found dead
// (Redis restarted while it sat idle) is replaced once, transparently: see
// redialConn.
func NewRedis(opts RedisOptions) *Redis {
	d := redisDialer{url: opts.URL, options: []redis.DialOption{
		redis.DialConnectTimeout(opts.Timeout),
		redis.DialReadTimeout(opts.Timeout),
		redis.DialWriteTimeout(opts.Timeout),
	}}
	pool := &redis.Pool{
		MaxIdle:     opts.PoolSize,
		MaxActive:   opts.PoolSize,
		Wait:        true,
		IdleTimeout: 4 * time.Minute,
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			conn, err := d.dialContext(ctx)
			if err != nil {
				return nil, err
			}
			return &redialConn{Conn: conn, dialer: d}, nil
		},
		TestOnBorrow: func(c redis.Conn, lastUsed time.Time) error {
			if time.Since(lastUsed) < idlePingAfter {
				return nil
			}
			_, err := c.Do("PING")
			return err
		},
	}
	return &Redis{pool: pool, permits: make(chan struct{}, opts.PoolSize), timeout: opts.Timeout, keys: RedisKeys{prefix: opts.KeyPrefix}}
}

// Keys returns the key layout.
func (r *Redis) Keys() RedisKeys { return r.keys }

// Pool is the pool for gin-contrib/sessions' store, which borrows on its own;
// callers of the store take a permit first (Acquire).
func (r *Redis) Pool() *redis.Pool { return r.pool }

// Close closes the pool.
func (r *Redis) Close() error { return r.pool.Close() }

// Do runs fn on a pooled connection, bounding the wait for it and every
// command by the Redis timeout. Any failure that is not a coded error is
// service_unavailable.
func (r *Redis) Do(ctx context.Context, fn func(ctx context.Context, conn redis.Conn) error) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	release, err := r.Acquire(ctx)
	if err != nil {
		return models.Unavailable("redis", err)
	}
	defer release()
	conn, err := r.pool.GetContext(ctx)
	if err != nil {
		return models.Unavailable("redis", err)
	}
	defer conn.Close()
	if err := fn(ctx, conn); err != nil {
		var coded *models.Error
		if errors.As(err, &coded) {
			return err
		}
		return models.Unavailable("redis", err)
	}
	return nil
}

// DoWrite is Do for a write that creates or revokes a session: such writes
// must survive a failover as far as replication allows (REDIS_MIN_REPLICAS).
func (r *Redis) DoWrite(ctx context.Context, fn func(ctx context.Context, conn redis.Conn) error) error {
	return r.Do(ctx, fn)
}

// Ping checks that Redis answers within ctx.
func (r *Redis) Ping(ctx context.Context) error {
	return r.Do(ctx, func(ctx context.Context, conn redis.Conn) error {
		_, err := redis.DoContext(conn, ctx, "PING")
		return err
	})
}

// ErrRedisBusy is returned when no Redis connection frees up in time.
var ErrRedisBusy = errors.New("no redis connection free within the wait")

// Acquire takes a permit to borrow a connection, waiting at most the Redis
// timeout or until ctx ends, so the pool itself never blocks and a caller
// answers 503 in bounded time.
func (r *Redis) Acquire(ctx context.Context) (release func(), err error) {
	select {
	case r.permits <- struct{}{}:
		return r.release, nil
	default:
	}
	timer := time.NewTimer(r.timeout)
	defer timer.Stop()
	select {
	case r.permits <- struct{}{}:
		return r.release, nil
	case <-timer.C:
		return nil, ErrRedisBusy
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (r *Redis) release() { <-r.permits }

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

// redisDialer dials one Redis connection with the pool's timeouts.
type redisDialer struct {
	url     string
	options []redis.DialOption
}

func (d redisDialer) dialContext(ctx context.Context) (redis.Conn, error) {
	return redis.DialURLContext(ctx, d.url, d.options...)
}

// dial is for redistore's context-free calls; the connect timeout bounds it.
func (d redisDialer) dial() (redis.Conn, error) { return redis.DialURL(d.url, d.options...) }

// redialConn is a pooled connection that repeats a command once on a new
// connection when the peer turns out to have closed it since its last use.
// Without it, every connection pooled before a Redis restart failed one
// request with 503 (8 pooled: 8 of 16 /me in a row in
// TestRedisRestartAnswersNo503, 12 of 16 with the pool a burst left; now none).
// A fresh connection is never retried (Redis is really gone) and a timeout
// never is (Redis is slow: a retry would double the bound). The one command
// repeated could have run if Redis died after running it and before
// answering; every write here is idempotent except a throttle count.
type redialConn struct {
	redis.Conn
	dialer redisDialer
	used   bool // a command completed on this connection
}

// Do runs the command, redialing once if the connection went stale.
func (c *redialConn) Do(cmd string, args ...any) (any, error) {
	reply, err := c.Conn.Do(cmd, args...)
	if c.stale(cmd, err) {
		if fresh, derr := c.dialer.dial(); derr == nil {
			c.replace(fresh)
			reply, err = c.Conn.Do(cmd, args...)
		}
	}
	c.settle(err)
	return reply, err
}

// DoContext runs the command within ctx, redialing once within ctx if the
// connection went stale.
func (c *redialConn) DoContext(ctx context.Context, cmd string, args ...any) (any, error) {
	reply, err := redis.DoContext(c.Conn, ctx, cmd, args...)
	if c.stale(cmd, err) {
		if fresh, derr := c.dialer.dialContext(ctx); derr == nil {
			c.replace(fresh)
			reply, err = redis.DoContext(c.Conn, ctx, cmd, args...)
		}
	}
	c.settle(err)
	return reply, err
}

// DoWithTimeout runs the command with a read timeout, redialing once if the
// connection went stale.
func (c *redialConn) DoWithTimeout(timeout time.Duration, cmd string, args ...any) (any, error) {
	reply, err := redis.DoWithTimeout(c.Conn, timeout, cmd, args...)
	if c.stale(cmd, err) {
		if fresh, derr := c.dialer.dial(); derr == nil {
			c.replace(fresh)
			reply, err = redis.DoWithTimeout(c.Conn, timeout, cmd, args...)
		}
	}
	c.settle(err)
	return reply, err
}

// ReceiveContext and ReceiveWithTimeout pass through (no pipelining here).
func (c *redialConn) ReceiveContext(ctx context.Context) (any, error) {
	return redis.ReceiveContext(c.Conn, ctx)
}

func (c *redialConn) ReceiveWithTimeout(timeout time.Duration) (any, error) {
	return redis.ReceiveWithTimeout(c.Conn, timeout)
}

// stale reports whether a command failed because a connection that worked
// before was closed by the peer meanwhile.
func (c *redialConn) stale(cmd string, err error) bool {
	return err != nil && cmd != "" && c.used && peerClosed(err)
}

func (c *redialConn) settle(err error) {
	if err == nil || c.Conn.Err() == nil {
		c.used = true
	}
}

func (c *redialConn) replace(fresh redis.Conn) {
	_ = c.Conn.Close()
	c.Conn = fresh
	c.used = false
}

// peerClosed reports an error of a connection the other side had closed,
// as opposed to a timeout or a reply of Redis.
func peerClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}
