package services

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gomodule/redigo/redis"
)

// redisDialer dials a connection to the primary with the pool's timeouts:
// the one server of a redis:// URL, or the primary the sentinels name.
type redisDialer struct {
	url      string
	options  []redis.DialOption
	sentinel *sentinelDiscovery // nil: url is the one server
}

// dial returns a new pooled connection to the primary.
func (d *redisDialer) dial(ctx context.Context) (*redialConn, error) {
	conn, gen, err := d.dialPrimary(ctx)
	if err != nil {
		return nil, err
	}
	return &redialConn{Conn: conn, dialer: d, gen: gen}, nil
}

// dialPrimary connects to the primary and returns the generation it was
// found at (always 0 without Sentinel).
func (d *redisDialer) dialPrimary(ctx context.Context) (redis.Conn, uint64, error) {
	if d.sentinel != nil {
		return d.sentinel.dialPrimary(ctx)
	}
	conn, err := redis.DialURLContext(ctx, d.url, d.options...)
	return conn, 0, err
}

// current reports whether a connection dialled at gen still talks to the
// primary as last found.
func (d *redisDialer) current(gen uint64) bool {
	return d.sentinel == nil || d.sentinel.generation() == gen
}

// demoted is told that a connection dialled at gen talks to a replica now:
// every pooled connection of that primary is retired and the next dial asks
// the sentinels again.
func (d *redisDialer) demoted(gen uint64) {
	if d.sentinel != nil {
		d.sentinel.forget(gen)
	}
}

// errOlderPrimary retires a pooled connection to a primary since replaced.
var errOlderPrimary = errors.New("connection to an older primary")

// redialConn is a pooled connection that repeats a command once on a new
// connection to the primary when the peer turns out to have closed it since
// its last use, or answers READONLY (it was demoted to a replica in a
// failover; the command did not run). Without it, every connection pooled
// before a Redis restart failed one request with 503 (8 pooled: 8 of 16 /me
// in a row in TestRedisRestartAnswersNo503, 12 of 16 with the pool a burst
// left; now none). A fresh connection closed by the peer is never retried
// (Redis is really gone) and a timeout never is (Redis is slow: a retry would
// double the bound). The one command repeated after a closed connection
// could have run if Redis died after running it and before answering; every
// write here is idempotent except a throttle count. A redial is reported to
// the redialWatch of the command's context, for DoWrite's WAIT.
type redialConn struct {
	redis.Conn
	dialer *redisDialer
	gen    uint64 // the primary's generation when dialled
	used   bool   // a command completed on this connection
	err    error  // sticky: the peer is a replica; the pool drops the connection
}

// Do runs the command, redialing once if the connection went stale.
func (c *redialConn) Do(cmd string, args ...any) (any, error) {
	return c.run(context.Background(), cmd, func(conn redis.Conn) (any, error) { return conn.Do(cmd, args...) })
}

// DoContext runs the command within ctx, redialing once within ctx if the
// connection went stale.
func (c *redialConn) DoContext(ctx context.Context, cmd string, args ...any) (any, error) {
	return c.run(ctx, cmd, func(conn redis.Conn) (any, error) { return redis.DoContext(conn, ctx, cmd, args...) })
}

// DoWithTimeout runs the command with a read timeout, redialing once if the
// connection went stale.
func (c *redialConn) DoWithTimeout(timeout time.Duration, cmd string, args ...any) (any, error) {
	return c.run(context.Background(), cmd, func(conn redis.Conn) (any, error) {
		return redis.DoWithTimeout(conn, timeout, cmd, args...)
	})
}

// ReceiveContext and ReceiveWithTimeout pass through (no pipelining here).
func (c *redialConn) ReceiveContext(ctx context.Context) (any, error) {
	return redis.ReceiveContext(c.Conn, ctx)
}

func (c *redialConn) ReceiveWithTimeout(timeout time.Duration) (any, error) {
	return redis.ReceiveWithTimeout(c.Conn, timeout)
}

// Err is the connection's error; a connection that found a replica has one,
// so the pool closes it instead of keeping it.
func (c *redialConn) Err() error {
	if c.err != nil {
		return c.err
	}
	return c.Conn.Err()
}

func (c *redialConn) run(ctx context.Context, cmd string, exec func(redis.Conn) (any, error)) (any, error) {
	reply, err := exec(c.Conn)
	readOnly := isReadOnly(err)
	if readOnly {
		c.dialer.demoted(c.gen)
	}
	if readOnly || c.stale(cmd, err) {
		if fresh, gen, derr := c.dialer.dialPrimary(ctx); derr == nil {
			c.replace(fresh, gen)
			noteRedial(ctx)
			reply, err = exec(c.Conn)
		}
	}
	if isReadOnly(err) {
		c.err = err
	}
	c.settle(err)
	return reply, err
}

// check is the pool's test on borrow: a connection to an older primary is
// retired at once; one idle for long is checked with PING, or with ROLE when
// the primary may change (Sentinel).
func (c *redialConn) check(lastUsed time.Time) error {
	if !c.dialer.current(c.gen) {
		return errOlderPrimary
	}
	if time.Since(lastUsed) < idlePingAfter {
		return nil
	}
	if c.dialer.sentinel == nil {
		_, err := c.Do("PING")
		return err
	}
	if err := checkPrimary(context.Background(), c); err != nil {
		c.dialer.demoted(c.gen)
		return err
	}
	return nil
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

func (c *redialConn) replace(fresh redis.Conn, gen uint64) {
	_ = c.Conn.Close()
	c.Conn, c.gen, c.used, c.err = fresh, gen, false, nil
}

// peerClosed reports an error of a connection the other side had closed,
// as opposed to a timeout or a reply of Redis.
func peerClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED)
}

// isReadOnly reports Redis' answer to a write sent to a replica, also from
// inside a script.
func isReadOnly(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && strings.HasPrefix(string(re), "READONLY ")
}

// redialWatch is told when a command sent within its context ran on a
// connection that replaced the one it was sent on.
type redialWatch struct{ redialled atomic.Bool }

type redialWatchKey struct{}

func withRedialWatch(ctx context.Context, w *redialWatch) context.Context {
	return context.WithValue(ctx, redialWatchKey{}, w)
}

func noteRedial(ctx context.Context) {
	if w, ok := ctx.Value(redialWatchKey{}).(*redialWatch); ok {
		w.redialled.Store(true)
	}
}

func (w *redialWatch) seen() bool { return w.redialled.Load() }

// pinnedConn is the connection DoWrite hands to its fn: every command goes
// through DoContext with the watch in its context, whatever method or
// context fn uses, so a redial anywhere in fn is seen.
type pinnedConn struct {
	redis.Conn
	ctx   context.Context
	watch *redialWatch
}

func (c pinnedConn) Do(cmd string, args ...any) (any, error) { return c.DoContext(c.ctx, cmd, args...) }

func (c pinnedConn) DoContext(ctx context.Context, cmd string, args ...any) (any, error) {
	return redis.DoContext(c.Conn, withRedialWatch(ctx, c.watch), cmd, args...)
}

func (c pinnedConn) DoWithTimeout(timeout time.Duration, cmd string, args ...any) (any, error) {
	ctx, cancel := context.WithTimeout(c.ctx, timeout)
	defer cancel()
	return c.DoContext(ctx, cmd, args...)
}

func (c pinnedConn) ReceiveContext(ctx context.Context) (any, error) {
	return redis.ReceiveContext(c.Conn, ctx)
}

func (c pinnedConn) ReceiveWithTimeout(timeout time.Duration) (any, error) {
	return redis.ReceiveWithTimeout(c.Conn, timeout)
}
