package services

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeSender records every attempt and answers with answer(n) for the n-th
// (1-based); block, when set, holds each attempt until it is closed or ctx ends.
type fakeSender struct {
	mu       sync.Mutex
	attempts []time.Time
	sent     []*Message
	answer   func(n int) error
	block    chan struct{}
	started  chan struct{} // told of each attempt, if set
}

func (f *fakeSender) Send(ctx context.Context, m *Message) error {
	f.mu.Lock()
	f.attempts = append(f.attempts, time.Now())
	n := len(f.attempts)
	f.mu.Unlock()
	if f.started != nil {
		f.started <- struct{}{}
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if f.answer != nil {
		if err := f.answer(n); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.sent = append(f.sent, m)
	f.mu.Unlock()
	return nil
}

func (f *fakeSender) counts() (attempts, sent int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.attempts), len(f.sent)
}

type fakeMailCounter struct {
	mu      sync.Mutex
	sent    int
	dropped map[string]int
}

func (c *fakeMailCounter) MailSent() { c.mu.Lock(); c.sent++; c.mu.Unlock() }
func (c *fakeMailCounter) MailDropped(reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.dropped == nil {
		c.dropped = map[string]int{}
	}
	c.dropped[reason]++
}

func (c *fakeMailCounter) get() (int, map[string]int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.dropped {
		out[k] = v
	}
	return c.sent, out
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// newTestMailer returns a started mailer on sender with fast back-off, its
// counter and its log; cleanup closes it.
func newTestMailer(t *testing.T, sender MailSender, opts MailerOptions) (*Mailer, *fakeMailCounter, *lockedBuffer) {
	t.Helper()
	counter, logs := &fakeMailCounter{}, &lockedBuffer{}
	opts.Sender, opts.Counter = sender, counter
	opts.Log = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.RecipientKey = []byte("test key")
	opts.Backoff = cmpOr(opts.Backoff, 10*time.Millisecond)
	m := NewMailer(opts)
	m.Start(t.Context())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.Context()), 2*time.Second)
		defer cancel()
		m.Close(ctx)
	})
	return m, counter, logs
}

func message(to string) MailBuild {
	return func(context.Context) (*Message, error) {
		return &Message{To: to, Subject: "s", Text: "t", Link: "http://spa.example/reset-password#token=secret-token"}, nil
	}
}

func closeWithin(t *testing.T, m *Mailer, d time.Duration) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	defer cancel()
	start := time.Now()
	m.Close(ctx)
	return time.Since(start)
}

func TestMailerFullQueueDropsAndCounts(t *testing.T) {
	sender := &fakeSender{block: make(chan struct{}), started: make(chan struct{}, 10)}
	m, counter, logs := newTestMailer(t, sender, MailerOptions{Workers: 1, QueueSize: 2})
	if !m.Enqueue(MailPasswordReset, message("a@example.com")) {
		t.Fatal("first job: got dropped, want queued")
	}
	<-sender.started // the worker holds the first job; the queue is empty again
	for i := range 2 {
		if !m.Enqueue(MailPasswordReset, message("b@example.com")) {
			t.Fatalf("job %d: got dropped, want queued", i+2)
		}
	}
	if m.Enqueue(MailPasswordReset, message("c@example.com")) {
		t.Fatal("job beyond the queue: got queued, want dropped")
	}
	if _, dropped := counter.get(); dropped[MailDropQueueFull] != 1 {
		t.Errorf("got dropped %v, want queue_full 1", dropped)
	}
	if !strings.Contains(logs.String(), `"reason":"queue_full"`) {
		t.Errorf("got logs %s, want a line for the dropped job", logs)
	}
	close(sender.block)
	closeWithin(t, m, 2*time.Second)
	if sent, _ := counter.get(); sent != 3 {
		t.Errorf("got %d sent, want the 3 queued jobs", sent)
	}
}

func TestMailerRetriesWithBackoff(t *testing.T) {
	sender := &fakeSender{answer: func(n int) error {
		if n < 3 {
			return errors.New("421 try again later")
		}
		return nil
	}}
	builds := 0
	m, counter, logs := newTestMailer(t, sender, MailerOptions{Backoff: 40 * time.Millisecond})
	m.Enqueue(MailPasswordReset, func(ctx context.Context) (*Message, error) {
		builds++ // one worker runs a job: no race
		return message("a@example.com")(ctx)
	})
	closeWithin(t, m, 5*time.Second)
	attempts, sent := sender.counts()
	if attempts != 3 || sent != 1 {
		t.Fatalf("got %d attempts and %d sent, want 3 and 1", attempts, sent)
	}
	if builds != 1 {
		t.Errorf("got %d builds, want 1: a retry resends the built message (a rebuild would mint another token)", builds)
	}
	first, second := sender.attempts[1].Sub(sender.attempts[0]), sender.attempts[2].Sub(sender.attempts[1])
	if first < 30*time.Millisecond || second < 60*time.Millisecond {
		t.Errorf("got waits %v then %v, want at least 3/4 of 40ms then of 80ms", first, second)
	}
	if c, _ := counter.get(); c != 1 {
		t.Errorf("got %d counted sent, want 1", c)
	}
	if n := strings.Count(logs.String(), "will retry"); n != 2 {
		t.Errorf("got %d retry lines, want 2: %s", n, logs)
	}
}

func TestMailerGivesUpAfterItsAttemptsAndLogsNoAddressOrToken(t *testing.T) {
	const to = "Bob@Example.com"
	sender := &fakeSender{answer: func(int) error {
		return errors.New("451 4.3.0 <bob@example.com>: temporary failure for http://spa.example/reset-password#token=secret-token")
	}}
	m, counter, logs := newTestMailer(t, sender, MailerOptions{Attempts: 3})
	m.Enqueue(MailPasswordReset, message(to))
	closeWithin(t, m, 5*time.Second)
	if attempts, _ := sender.counts(); attempts != 3 {
		t.Errorf("got %d attempts, want 3", attempts)
	}
	if _, dropped := counter.get(); dropped[MailDropFailed] != 1 {
		t.Errorf("got dropped %v, want failed 1", dropped)
	}
	out := logs.String()
	for _, secret := range []string{"bob@example.com", "Bob@Example.com", "secret-token"} {
		if strings.Contains(out, secret) {
			t.Errorf("the log holds %q: %s", secret, out)
		}
	}
	if !strings.Contains(out, RecipientHash([]byte("test key"), "bob@example.com")) {
		t.Errorf("got logs %s, want the recipient named by its hash", out)
	}
}

func TestMailerDoesNotRetryAPermanentRefusal(t *testing.T) {
	sender := &fakeSender{answer: func(int) error { return Permanent(errors.New("550 no such user")) }}
	m, counter, _ := newTestMailer(t, sender, MailerOptions{})
	m.Enqueue(MailPasswordReset, message("a@example.com"))
	closeWithin(t, m, 5*time.Second)
	if attempts, _ := sender.counts(); attempts != 1 {
		t.Errorf("got %d attempts, want 1", attempts)
	}
	if _, dropped := counter.get(); dropped[MailDropFailed] != 1 {
		t.Errorf("got dropped %v, want failed 1", dropped)
	}
}

func TestMailerBuilds(t *testing.T) {
	sender := &fakeSender{}
	m, counter, logs := newTestMailer(t, sender, MailerOptions{Workers: 1, Attempts: 3})
	m.Enqueue(MailPasswordReset, func(context.Context) (*Message, error) { return nil, nil })
	failures := 0
	m.Enqueue(MailPasswordReset, func(ctx context.Context) (*Message, error) {
		if failures++; failures < 3 {
			return nil, errors.New("database down")
		}
		return message("a@example.com")(ctx)
	})
	m.Enqueue(MailPasswordReset, func(context.Context) (*Message, error) { panic("bug") })
	closeWithin(t, m, 5*time.Second)
	if _, sent := sender.counts(); sent != 1 {
		t.Errorf("got %d sent, want 1: nothing for the nil message, the failing build retried, none for the panic", sent)
	}
	if sent, dropped := counter.get(); sent != 1 || dropped[MailDropFailed] != 1 {
		t.Errorf("got sent %d, dropped %v; want 1 and failed 1", sent, dropped)
	}
	if !strings.Contains(logs.String(), "panic: bug") {
		t.Errorf("got logs %s, want the panic logged", logs)
	}
}

func TestMailerDrainsOnClose(t *testing.T) {
	sender := &fakeSender{answer: func(int) error { time.Sleep(20 * time.Millisecond); return nil }}
	m, counter, _ := newTestMailer(t, sender, MailerOptions{Workers: 1})
	for range 5 {
		m.Enqueue(MailPasswordReset, message("a@example.com"))
	}
	closeWithin(t, m, 5*time.Second)
	if sent, dropped := counter.get(); sent != 5 || len(dropped) != 0 {
		t.Errorf("got sent %d, dropped %v; want all 5 sent before Close returned", sent, dropped)
	}
	if m.Enqueue(MailPasswordReset, message("a@example.com")) {
		t.Error("Enqueue after Close: got queued, want dropped")
	}
	if _, dropped := counter.get(); dropped[MailDropShutdown] != 1 {
		t.Errorf("got dropped %v, want the late job counted as shutdown", dropped)
	}
}

func TestMailerCloseKeepsItsDeadline(t *testing.T) {
	sender := &fakeSender{block: make(chan struct{})} // never answers
	m, counter, _ := newTestMailer(t, sender, MailerOptions{Workers: 1})
	for range 4 {
		m.Enqueue(MailPasswordReset, message("a@example.com"))
	}
	took := closeWithin(t, m, 150*time.Millisecond)
	if took < 150*time.Millisecond || took > time.Second {
		t.Errorf("Close took %v, want about its 150ms deadline", took)
	}
	if _, dropped := counter.get(); dropped[MailDropShutdown] != 4 {
		t.Errorf("got dropped %v, want the one in flight and the 3 queued counted as shutdown", dropped)
	}
	took = closeWithin(t, m, time.Second)
	if took > 500*time.Millisecond { // far from its 1s deadline: it waited for nothing
		t.Errorf("a second Close took %v, want at once", took)
	}
}

func TestMailerShutdownCutsABackoffShort(t *testing.T) {
	sender := &fakeSender{answer: func(int) error { return errors.New("421 busy") }}
	m, counter, _ := newTestMailer(t, sender, MailerOptions{Backoff: time.Hour})
	m.Enqueue(MailPasswordReset, message("a@example.com"))
	for attempts, _ := sender.counts(); attempts == 0; attempts, _ = sender.counts() {
		time.Sleep(time.Millisecond)
	}
	if took := closeWithin(t, m, 100*time.Millisecond); took > time.Second {
		t.Errorf("Close took %v, want its 100ms deadline despite the hour of back-off", took)
	}
	if _, dropped := counter.get(); dropped[MailDropShutdown] != 1 {
		t.Errorf("got dropped %v, want shutdown 1", dropped)
	}
}

func TestEnqueueNeverWaitsForASlowSender(t *testing.T) {
	sender := &fakeSender{block: make(chan struct{})}
	m, counter, _ := newTestMailer(t, sender, MailerOptions{QueueSize: 64})
	start := time.Now()
	queued := 0
	for range 1000 {
		if m.Enqueue(MailPasswordReset, message("a@example.com")) {
			queued++
		}
	}
	if took := time.Since(start); took > 100*time.Millisecond {
		t.Errorf("1000 Enqueue calls took %v with a sender that never answers, want well under 100ms", took)
	}
	// The workers may have taken up to 2 jobs off the queue already.
	if queued < 64 || queued > 66 {
		t.Errorf("got %d queued, want the queue's 64 plus what the workers took", queued)
	}
	if _, dropped := counter.get(); dropped[MailDropQueueFull] != 1000-queued {
		t.Errorf("got dropped %v, want %d queue_full", dropped, 1000-queued)
	}
	close(sender.block)
}

func TestNilMailerDropsQuietly(t *testing.T) {
	var m *Mailer
	if m.Enqueue(MailPasswordReset, message("a@example.com")) {
		t.Error("nil Mailer: got queued, want dropped")
	}
	m.Close(t.Context())
}

func TestBackoffDoublesUpToItsCeiling(t *testing.T) {
	m := NewMailer(MailerOptions{Sender: &fakeSender{}, Backoff: time.Second, MaxBackoff: 10 * time.Second})
	for _, tc := range []struct {
		attempt  int
		min, max time.Duration
	}{{1, 750 * time.Millisecond, time.Second}, {2, 1500 * time.Millisecond, 2 * time.Second},
		{4, 6 * time.Second, 8 * time.Second}, {5, 7500 * time.Millisecond, 10 * time.Second}, {60, 7500 * time.Millisecond, 10 * time.Second}} {
		if got := m.backoff(tc.attempt); got < tc.min || got > tc.max {
			t.Errorf("attempt %d: got %v, want %v to %v", tc.attempt, got, tc.min, tc.max)
		}
	}
}
