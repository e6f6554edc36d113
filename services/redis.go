package services

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"

	"github.com/sessionauth/api/models"
)

// idlePingAfter is how long a pooled connection may sit idle before it is
// checked on borrow (PING, or ROLE with Sentinel); fresher ones are trusted,
// so the hot path costs no round trip.
const idlePingAfter = 30 * time.Second

// sentinelWatchInterval is how often the sentinels are asked for the primary
// in the background: the longest a planned failover goes unnoticed.
const sentinelWatchInterval = time.Second

// RedisOptions configure the product's Redis access.
type RedisOptions struct {
	URL         string        // redis:// or rediss://, with ACL user, password and database; unused with Sentinel
	Sentinel    *Sentinel     // the primary is found through Sentinel; nil: URL is the one server
	TLS         *tls.Config   // for rediss:// and rediss+sentinel://; nil: the system's roots, no client certificate
	MinReplicas int           // replicas that must acknowledge every DoWrite (WAIT); 0: none asked
	PoolSize    int           // connections at most; also the number of borrowers at once
	Timeout     time.Duration // bounds each dial, read and write, and the wait for a connection
	KeyPrefix   string        // every key of the product starts with it
}

// Redis is the product's one way to Redis: the pool, the gate that every
// borrower goes through, the per-call timeout and the key layout. Nothing
// else borrows a connection, so "every borrower waits at most Timeout for a
// connection" holds by construction, not by convention.
type Redis struct {
	pool        *redis.Pool
	permits     chan struct{}
	timeout     time.Duration
	minReplicas int
	waitMillis  int64 // WAIT's own timeout, below the read timeout so its answer is read
	keys        RedisKeys
	stopWatch   context.CancelFunc // ends the Sentinel watch; nil without Sentinel
}

// NewRedis returns the Redis access for opts. It does not connect: a Redis
// that is down at start heals when it answers. Every new connection goes to
// the primary (found through Sentinel when configured, and checked with
// ROLE); a pooled connection found dead, or talking to a primary since
// demoted, is replaced once, transparently: see redialConn.
func NewRedis(opts RedisOptions) *Redis {
	options := []redis.DialOption{
		redis.DialConnectTimeout(opts.Timeout),
		redis.DialReadTimeout(opts.Timeout),
		redis.DialWriteTimeout(opts.Timeout),
		redis.DialTLSHandshakeTimeout(opts.Timeout),
	}
	if opts.TLS != nil {
		options = append(options, redis.DialTLSConfig(opts.TLS))
	}
	d := &redisDialer{url: opts.URL, options: options}
	r := &Redis{permits: make(chan struct{}, opts.PoolSize), timeout: opts.Timeout, minReplicas: opts.MinReplicas,
		waitMillis: max(1, (opts.Timeout - opts.Timeout/5).Milliseconds()), keys: RedisKeys{prefix: opts.KeyPrefix}}
	if opts.Sentinel != nil {
		d.sentinel = newSentinelDiscovery(*opts.Sentinel, opts.Timeout, options)
		// The watch lives as long as the pool: Close ends it.
		var ctx context.Context
		ctx, r.stopWatch = context.WithCancel(context.Background())
		go d.sentinel.watch(ctx, sentinelWatchInterval)
	}
	r.pool = &redis.Pool{
		MaxIdle:      opts.PoolSize,
		MaxActive:    opts.PoolSize,
		Wait:         true,
		IdleTimeout:  4 * time.Minute,
		DialContext:  func(ctx context.Context) (redis.Conn, error) { return d.dial(ctx) },
		TestOnBorrow: func(c redis.Conn, lastUsed time.Time) error { return c.(*redialConn).check(lastUsed) },
	}
	return r
}

// Keys returns the key layout.
func (r *Redis) Keys() RedisKeys { return r.keys }

// Pool is the pool for gin-contrib/sessions' store, which borrows on its own;
// callers of the store take a permit first (Acquire).
func (r *Redis) Pool() *redis.Pool { return r.pool }

// Close ends the Sentinel watch, if any, and closes the pool.
func (r *Redis) Close() error {
	if r.stopWatch != nil {
		r.stopWatch()
	}
	return r.pool.Close()
}

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
// must survive a failover as far as replication allows. With MinReplicas
// above zero, after fn succeeds it sends WAIT on the connection fn wrote on
// and answers service_unavailable when fewer replicas acknowledged within
// the Redis timeout, or when that connection was replaced during fn or the
// WAIT (WAIT counts only its own connection's writes: on a redialled one it
// confirms nothing). The write itself may have happened: every write here
// is safe to send again, which a 503 invites. Redis sets the offset WAIT
// waits for to the primary's replication offset after every command of the
// connection, write or not, so a retry that finds its work already done
// still waits for the first attempt's write to reach the replicas.
func (r *Redis) DoWrite(ctx context.Context, fn func(ctx context.Context, conn redis.Conn) error) error {
	if r.minReplicas <= 0 {
		return r.Do(ctx, fn)
	}
	watch := new(redialWatch)
	outer := withRedialWatch(ctx, watch)
	return r.Do(outer, func(ctx context.Context, conn redis.Conn) error {
		pinned := pinnedConn{Conn: conn, ctx: ctx, watch: watch}
		if err := fn(ctx, pinned); err != nil {
			return err
		}
		// The WAIT is one call of its own, bounded by the Redis timeout
		// whatever fn took.
		wctx, cancel := context.WithTimeout(outer, r.timeout)
		defer cancel()
		return r.waitReplicas(wctx, pinned, watch)
	})
}

// Errors of a write whose replication could not be confirmed.
var (
	errWriteRedialled = errors.New("the connection of a write was replaced before WAIT: nothing to confirm")
	errReplicasTooFew = errors.New("too few replicas acknowledged the write")
	errWaitRedialled  = errors.New("the connection of a write was replaced during WAIT: nothing confirmed")
)

// waitReplicas sends WAIT on conn, the connection that wrote.
func (r *Redis) waitReplicas(ctx context.Context, conn pinnedConn, watch *redialWatch) error {
	if watch.seen() {
		return errWriteRedialled
	}
	acked, err := redis.Int(conn.DoContext(ctx, "WAIT", r.minReplicas, r.waitMillis))
	switch {
	case err != nil:
		return err
	case watch.seen():
		return errWaitRedialled
	case acked < r.minReplicas:
		return fmt.Errorf("%w: %d of %d within %d ms", errReplicasTooFew, acked, r.minReplicas, r.waitMillis)
	}
	return nil
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
