package services

import (
	"context"
	"errors"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// fakeNode is a loopback server speaking just enough RESP to play a sentinel
// or a data node: answer maps a command (upper-cased words) to a raw reply.
type fakeNode struct {
	addr     string
	accepted atomic.Int32
	mu       sync.Mutex
	answer   func(args []string) string
}

func newFakeNode(t *testing.T, answer func(args []string) string) *fakeNode {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	n := &fakeNode{addr: ln.Addr().String(), answer: answer}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			n.accepted.Add(1)
			go n.serve(conn)
		}
	}()
	return n
}

func (n *fakeNode) setAnswer(answer func(args []string) string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.answer = answer
}

func (n *fakeNode) serve(conn net.Conn) {
	defer conn.Close()
	requests := redis.NewConn(conn, time.Second, time.Second) // a request is an array of bulk strings
	for {
		req, err := requests.Receive()
		if err != nil {
			return
		}
		words, _ := redis.Strings(req, nil)
		for i := range words {
			words[i] = strings.ToUpper(words[i])
		}
		n.mu.Lock()
		reply := n.answer(words)
		n.mu.Unlock()
		if _, err := conn.Write([]byte(reply)); err != nil {
			return
		}
	}
}

func bulk(s string) string { return "$" + strconv.Itoa(len(s)) + "\r\n" + s + "\r\n" }

// sentinelAnswer names addr as the primary.
func sentinelAnswer(addr string) func([]string) string {
	host, port, _ := net.SplitHostPort(addr)
	return func(args []string) string {
		if len(args) == 3 && args[0] == "SENTINEL" && args[1] == "GET-MASTER-ADDR-BY-NAME" {
			return "*2\r\n" + bulk(host) + bulk(port)
		}
		return "-ERR unexpected\r\n"
	}
}

// nodeAnswer answers ROLE with role and PING with PONG.
func nodeAnswer(role string) func([]string) string {
	return func(args []string) string {
		switch args[0] {
		case "ROLE":
			return "*1\r\n" + bulk(role)
		case "PING":
			return "+PONG\r\n"
		}
		return "-ERR unexpected\r\n"
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// TestSentinelDiscovery: a sentinel that is down is skipped and the one that
// answered is asked first next time; the primary named is checked with ROLE,
// and one that answers as a replica is refused, as is a master no sentinel
// knows.
func TestSentinelDiscovery(t *testing.T) {
	ctx := context.Background()
	primary := newFakeNode(t, nodeAnswer("master"))
	sentinel := newFakeNode(t, sentinelAnswer(primary.addr))
	opts := []redis.DialOption{redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(time.Second)}
	d := newSentinelDiscovery(Sentinel{Addrs: []string{closedAddr(t), sentinel.addr}, Master: "m"}, time.Second, opts)
	conn, gen, err := d.dialPrimary(ctx)
	if err != nil {
		t.Fatalf("got %v, want the primary through the second sentinel", err)
	}
	_ = conn.Close()
	if d.sentinels[0] != sentinel.addr || gen != d.generation() {
		t.Errorf("got sentinels %v, generation %d of %d: want the one that answered first", d.sentinels, gen, d.generation())
	}
	primary.setAnswer(nodeAnswer("slave"))
	if _, _, err := d.dialPrimary(ctx); !errors.Is(err, errNotPrimary) {
		t.Errorf("got %v from a node answering as a replica, want errNotPrimary", err)
	}
	sentinel.setAnswer(func([]string) string { return "*-1\r\n" })
	if _, _, err := d.dialPrimary(ctx); !errors.Is(err, errUnknownMaster) {
		t.Errorf("got %v from sentinels that do not know the master, want errUnknownMaster", err)
	}
}

// TestSentinelWatchRetiresAnOldPrimary: when the sentinels name another
// primary, the pooled connection to the old one is retired within about the
// watch interval, although the old one still answers as a primary (a planned
// failover, before the sentinels reconfigure it).
func TestSentinelWatchRetiresAnOldPrimary(t *testing.T) {
	oldPrimary := newFakeNode(t, nodeAnswer("master"))
	newPrimary := newFakeNode(t, nodeAnswer("master"))
	sentinel := newFakeNode(t, sentinelAnswer(oldPrimary.addr))
	r := NewRedis(RedisOptions{Sentinel: &Sentinel{Addrs: []string{sentinel.addr}, Master: "m"}, PoolSize: 2,
		Timeout: time.Second, KeyPrefix: "unit:"})
	defer r.Close()
	ping := func() {
		t.Helper()
		if err := r.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ping()
	sentinel.setAnswer(sentinelAnswer(newPrimary.addr))
	for deadline := time.Now().Add(sentinelWatchInterval + 2*time.Second); newPrimary.accepted.Load() == 0; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the pooled connection still goes to the old primary %v after the sentinels named another", sentinelWatchInterval+2*time.Second)
		}
		ping()
	}
	if n := oldPrimary.accepted.Load(); n != 1 {
		t.Errorf("got %d connections to the old primary, want the first only", n)
	}
}
