package services

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/gomodule/redigo/redis"

	"github.com/sessionauth/api/models"
)

// newMiniRedis returns an in-process Redis (WAIT answers 0 replicas there)
// and the product's access to it asking minReplicas of every write.
func newMiniRedis(t *testing.T, minReplicas int) (*miniredis.Miniredis, *Redis) {
	t.Helper()
	m := miniredis.RunT(t)
	r := NewRedis(RedisOptions{URL: "redis://" + m.Addr() + "/0", PoolSize: 2, Timeout: 500 * time.Millisecond,
		MinReplicas: minReplicas, KeyPrefix: "unit:"})
	t.Cleanup(func() { _ = r.Close() })
	return m, r
}

func set(key string) func(ctx context.Context, conn redis.Conn) error {
	return func(ctx context.Context, conn redis.Conn) error {
		_, err := redis.DoContext(conn, ctx, "SET", key, "1")
		return err
	}
}

// TestDoWriteWaitsForReplicas: with replicas asked, a write that no replica
// acknowledged is service_unavailable with Retry-After (it did happen on the
// primary, so sending it again is what the 503 invites); without, it is not.
func TestDoWriteWaitsForReplicas(t *testing.T) {
	ctx := context.Background()
	m, r := newMiniRedis(t, 1)
	err := r.DoWrite(ctx, set("k"))
	var coded *models.Error
	if !errors.As(err, &coded) || coded.Code != "service_unavailable" || coded.RetryAfter < time.Second || !errors.Is(err, errReplicasTooFew) {
		t.Fatalf("got %v, want service_unavailable for too few replicas", err)
	}
	if !m.Exists("k") {
		t.Error("got no key, want the write done on the primary")
	}
	_, plain := newMiniRedis(t, 0)
	if err := plain.DoWrite(ctx, set("k")); err != nil {
		t.Errorf("got %v with no replicas asked, want success", err)
	}
	if r.waitMillis >= r.timeout.Milliseconds() || r.waitMillis < 1 {
		t.Errorf("got WAIT timeout %d ms for a %v read timeout, want below it", r.waitMillis, r.timeout)
	}
}

// TestDoWriteRefusesAWaitOnARedialledConnection: when the pooled connection
// died and the write ran again on a new one, a WAIT there would confirm
// nothing, so the answer is 503 without asking.
func TestDoWriteRefusesAWaitOnARedialledConnection(t *testing.T) {
	ctx := context.Background()
	m, r := newMiniRedis(t, 1)
	if err := r.Do(ctx, set("warm")); err != nil { // one pooled connection that has been used
		t.Fatal(err)
	}
	m.Close()
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	var sawPinned bool
	err := r.DoWrite(ctx, func(ctx context.Context, conn redis.Conn) error {
		_, sawPinned = conn.(pinnedConn)
		_, err := conn.Do("SET", "k", "1") // no context: the pinned connection still watches it
		return err
	})
	if !errors.Is(err, errWriteRedialled) {
		t.Fatalf("got %v, want the redialled write refused", err)
	}
	if !sawPinned || !m.Exists("k") {
		t.Errorf("got pinned %v, key %v: want the write redone on the new connection", sawPinned, m.Exists("k"))
	}
	if err := r.Do(ctx, set("after")); err != nil {
		t.Errorf("got %v after the redial, want the pool healthy", err)
	}
}

func TestIsReadOnly(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{redis.Error("READONLY You can't write against a read only replica."), true},
		{redis.Error("READONLY You can't write against a read only replica. script: 2dc6a28, on @user_script:1."), true},
		{redis.Error("ERR unknown command"), false},
		{errors.New("READONLY but not a Redis reply"), false},
		{nil, false},
	}
	for _, tc := range cases {
		if got := isReadOnly(tc.err); got != tc.want {
			t.Errorf("isReadOnly(%v): got %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestSentinelGenerations: a new primary starts a generation, the same one
// keeps it, and a demotion seen by several connections of one generation
// starts exactly one new generation.
func TestSentinelGenerations(t *testing.T) {
	s := newSentinelDiscovery(Sentinel{Addrs: []string{"a:1", "b:2", "c:3"}, Master: "m"}, time.Second, nil)
	g1 := s.confirm("10.0.0.1:6379")
	if g := s.confirm("10.0.0.1:6379"); g != g1 {
		t.Errorf("got generation %d for the same primary, want %d", g, g1)
	}
	g2 := s.confirm("10.0.0.2:6379")
	if g2 == g1 || s.generation() != g2 {
		t.Fatalf("got %d after a new primary (was %d), want a new generation", g2, g1)
	}
	s.forget(g2)
	s.forget(g2)
	s.forget(g1) // a straggler of an older generation changes nothing
	if g := s.generation(); g != g2+1 {
		t.Errorf("got generation %d after demotions, want %d", g, g2+1)
	}
	if g := s.confirm("10.0.0.2:6379"); g != g2+2 {
		t.Errorf("got generation %d for the primary found again, want %d", g, g2+2)
	}
	s.prefer("c:3")
	if s.sentinels[0] != "c:3" || len(s.sentinels) != 3 {
		t.Errorf("got sentinels %v, want the one that answered first", s.sentinels)
	}
}
