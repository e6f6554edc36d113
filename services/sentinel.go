package services

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Sentinel is a primary found through Redis Sentinel (redis+sentinel://).
// The discovery follows Redis' Sentinel client spec: ask the sentinels, in
// turn, for the primary's address (SENTINEL get-master-addr-by-name), check
// with ROLE that every new connection reaches a primary, and ask again after
// a failover (a closed connection, a READONLY answer or a replica's ROLE).
// The data nodes' ACL user needs +role.
type Sentinel struct {
	Addrs            []string // host:port of every sentinel
	Master           string   // the name the sentinels monitor
	SentinelPassword string   // AUTH to the sentinels; empty: none
	TLS              bool     // sentinels and data nodes over TLS (rediss+sentinel://)
	Username         string   // the data nodes' ACL user, password and database
	Password         string
	DB               int
}

// Errors of a discovery; they reach the log, never a client.
var (
	errUnknownMaster = errors.New("the sentinel does not monitor this master")
	errNotPrimary    = errors.New("the address the sentinels named is not a primary")
)

// sentinelDiscovery finds the primary and numbers its generations: the
// generation goes up whenever the primary found changes or a connection
// finds its primary demoted, and a pooled connection of an older generation
// is retired on its next borrow.
type sentinelDiscovery struct {
	cfg          Sentinel
	timeout      time.Duration // bounds one question to the sentinels in watch
	sentinelOpts []redis.DialOption
	nodeOpts     []redis.DialOption
	gen          atomic.Uint64
	mu           sync.Mutex
	sentinels    []string // the one that answered last first, as the spec asks
	primary      string   // the address of the current generation; empty: none yet, or forgotten
}

func newSentinelDiscovery(cfg Sentinel, timeout time.Duration, common []redis.DialOption) *sentinelDiscovery {
	sentinelOpts := append(slices.Clone(common), redis.DialUseTLS(cfg.TLS))
	if cfg.SentinelPassword != "" {
		sentinelOpts = append(sentinelOpts, redis.DialPassword(cfg.SentinelPassword))
	}
	nodeOpts := append(slices.Clone(common), redis.DialUseTLS(cfg.TLS), redis.DialDatabase(cfg.DB))
	if cfg.Password != "" {
		nodeOpts = append(nodeOpts, redis.DialUsername(cfg.Username), redis.DialPassword(cfg.Password))
	}
	return &sentinelDiscovery{cfg: cfg, timeout: timeout, sentinelOpts: sentinelOpts, nodeOpts: nodeOpts,
		sentinels: slices.Clone(cfg.Addrs)}
}

// dialPrimary asks the sentinels for the primary, connects to it and checks
// its ROLE. It fails, and the caller answers 503, while no sentinel names a
// primary that answers as one: during a failover, until the sentinels agree.
func (s *sentinelDiscovery) dialPrimary(ctx context.Context) (redis.Conn, uint64, error) {
	addr, err := s.ask(ctx)
	if err != nil {
		return nil, 0, err
	}
	conn, err := redis.DialContext(ctx, "tcp", addr, s.nodeOpts...)
	if err != nil {
		return nil, 0, fmt.Errorf("dial the primary %s: %w", addr, err)
	}
	if err := checkPrimary(ctx, conn); err != nil {
		_ = conn.Close()
		return nil, 0, fmt.Errorf("%s: %w", addr, err)
	}
	return conn, s.confirm(addr), nil
}

// ask returns the primary's address from the first sentinel that names it.
func (s *sentinelDiscovery) ask(ctx context.Context) (string, error) {
	s.mu.Lock()
	sentinels := slices.Clone(s.sentinels)
	s.mu.Unlock()
	var errs []error
	for _, sentinel := range sentinels {
		addr, err := s.askOne(ctx, sentinel)
		if err == nil {
			s.prefer(sentinel)
			return addr, nil
		}
		errs = append(errs, fmt.Errorf("sentinel %s: %w", sentinel, err))
		if ctx.Err() != nil {
			break
		}
	}
	return "", fmt.Errorf("no sentinel named the primary of %q: %w", s.cfg.Master, errors.Join(errs...))
}

func (s *sentinelDiscovery) askOne(ctx context.Context, sentinel string) (string, error) {
	conn, err := redis.DialContext(ctx, "tcp", sentinel, s.sentinelOpts...)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	reply, err := redis.Strings(redis.DoContext(conn, ctx, "SENTINEL", "get-master-addr-by-name", s.cfg.Master))
	switch {
	case errors.Is(err, redis.ErrNil):
		return "", errUnknownMaster
	case err != nil:
		return "", err
	case len(reply) != 2 || reply[0] == "":
		return "", fmt.Errorf("unexpected answer %q", reply)
	}
	return net.JoinHostPort(reply[0], reply[1]), nil
}

// prefer moves the sentinel that answered to the front of the list.
func (s *sentinelDiscovery) prefer(sentinel string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i := slices.Index(s.sentinels, sentinel); i > 0 {
		s.sentinels = slices.Insert(slices.Delete(s.sentinels, i, i+1), 0, sentinel)
	}
}

// confirm records addr as the primary and returns its generation, a new one
// when the primary changed.
func (s *sentinelDiscovery) confirm(addr string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if addr != s.primary {
		s.primary = addr
		return s.gen.Add(1)
	}
	return s.gen.Load()
}

// generation is the current primary's generation.
func (s *sentinelDiscovery) generation() uint64 { return s.gen.Load() }

// forget starts a new generation when a connection of generation gen found
// its primary demoted (once per generation, however many connections do).
func (s *sentinelDiscovery) forget(gen uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen.CompareAndSwap(gen, gen+1) {
		s.primary = ""
	}
}

// watch asks the sentinels every interval which node is the primary, until
// ctx ends. In a planned failover the old primary stays up, and keeps
// answering as one, until the sentinels reconfigure it seconds later: without
// asking, pooled connections would keep reading from it and writing to it
// (writes that its demotion then discards) until a new connection happened
// to be dialled. When the sentinels name another node, every pooled
// connection is retired on its next borrow.
func (s *sentinelDiscovery) watch(ctx context.Context, interval time.Duration) {
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
		askCtx, cancel := context.WithTimeout(ctx, s.timeout)
		addr, err := s.ask(askCtx)
		cancel()
		if err != nil {
			continue // a dial will fail and say why; nothing to retire on no answer
		}
		s.mu.Lock()
		if s.primary != "" && addr != s.primary {
			s.primary = ""
			s.gen.Add(1)
		}
		s.mu.Unlock()
	}
}

// checkPrimary fails unless conn's server reports the primary's role.
func checkPrimary(ctx context.Context, conn redis.Conn) error {
	reply, err := redis.Values(redis.DoContext(conn, ctx, "ROLE"))
	if err != nil {
		return fmt.Errorf("ROLE: %w", err)
	}
	if len(reply) == 0 {
		return fmt.Errorf("%w: empty ROLE answer", errNotPrimary)
	}
	if role, _ := redis.String(reply[0], nil); role != "master" {
		return fmt.Errorf("%w (its role: %s)", errNotPrimary, role)
	}
	return nil
}
