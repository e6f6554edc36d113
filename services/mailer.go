package services

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Message is one mail, built in full before it is handed to a MailSender.
type Message struct {
	To      string
	Subject string
	Text    string // the plain-text body
	HTML    string // the HTML alternative
	// Link is the action link the bodies carry ("" for a notice); only the
	// development log shows it.
	Link string
}

// MailSender delivers one message; *SMTPSender and *LogSender are the real
// ones. An error wrapped by Permanent is not retried.
type MailSender interface {
	Send(ctx context.Context, m *Message) error
}

// MailBuild makes the message of a job in the worker, after the HTTP answer:
// whatever it reads or writes (the account lookup, the token) costs the
// request nothing. A nil message with a nil error means there is nothing to
// send (an unknown account).
type MailBuild func(ctx context.Context) (*Message, error)

// The reasons a mail is dropped (the reason label of the dropped counter).
const (
	MailDropQueueFull = "queue_full" // the queue was full when the job came
	MailDropFailed    = "failed"     // every attempt failed, or the server refused it for good
	MailDropShutdown  = "shutdown"   // still queued or retrying when the shutdown deadline came
)

// MailCounter is told of every mail sent and every mail dropped (metrics).
// Declared here so services need no metrics library.
type MailCounter interface {
	MailSent()
	MailDropped(reason string)
}

type noMailCounter struct{}

func (noMailCounter) MailSent()          {}
func (noMailCounter) MailDropped(string) {}

// MailerOptions configure a Mailer; zero values take the defaults.
type MailerOptions struct {
	Sender  MailSender // required
	Log     *slog.Logger
	Counter MailCounter // may be nil
	// RecipientKey keys the hash that names a recipient in logs, so the logs
	// do not confirm a guessed address to whoever reads them.
	RecipientKey []byte
	QueueSize    int           // jobs waiting at most (default 256); more are dropped
	Workers      int           // jobs handled at once (default 2)
	Attempts     int           // tries per job, building included (default 5)
	Backoff      time.Duration // wait after the first failure, doubled each time (default 2s)
	MaxBackoff   time.Duration // longest wait between attempts (default 1m)
}

// Mailer sends mail after the answer: Enqueue never blocks and never fails
// the caller; a bounded queue feeds a few workers that build each message,
// send it and retry with back-off. The queue is in memory: what it holds is
// lost if the process dies.
type Mailer struct {
	opts  MailerOptions
	log   *slog.Logger
	queue chan mailJob
	// sentLevel is Info, so operators can tell a user that the mail left;
	// Debug with the development LogSender, whose own line already says so.
	sentLevel slog.Level

	mu     sync.RWMutex // guards closed against a send on the closed queue
	closed bool

	workers  sync.WaitGroup
	done     chan struct{} // closed when every worker has returned
	stopOnce sync.Once
	cancel   context.CancelFunc // ends the workers' context
}

type mailJob struct {
	kind  MailKind
	build MailBuild
}

// NewMailer returns a Mailer for opts; Start runs its workers.
func NewMailer(opts MailerOptions) *Mailer {
	if opts.Counter == nil {
		opts.Counter = noMailCounter{}
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	opts.QueueSize = cmpOr(opts.QueueSize, 256)
	opts.Workers = cmpOr(opts.Workers, 2)
	opts.Attempts = cmpOr(opts.Attempts, 5)
	opts.Backoff = cmpOr(opts.Backoff, 2*time.Second)
	opts.MaxBackoff = cmpOr(opts.MaxBackoff, time.Minute)
	m := &Mailer{opts: opts, log: opts.Log, queue: make(chan mailJob, opts.QueueSize), done: make(chan struct{}), sentLevel: slog.LevelInfo}
	if _, ok := opts.Sender.(*LogSender); ok {
		m.sentLevel = slog.LevelDebug
	}
	return m
}

func cmpOr[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

// Start runs the workers until Close; ctx ending stops them too (what is
// still queued is then dropped).
func (m *Mailer) Start(ctx context.Context) {
	ctx, m.cancel = context.WithCancel(ctx)
	for range m.opts.Workers {
		m.workers.Go(func() { m.work(ctx) })
	}
	go func() {
		m.workers.Wait()
		close(m.done)
	}()
}

// Enqueue queues a job of kind and returns at once: true when queued, false
// when dropped because the queue is full or closed (logged and counted).
// build runs later in a worker. A nil Mailer (mail off) drops every job.
func (m *Mailer) Enqueue(kind MailKind, build MailBuild) bool {
	if m == nil {
		return false
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	reason := MailDropShutdown
	if !m.closed {
		select {
		case m.queue <- mailJob{kind: kind, build: build}:
			return true
		default:
			reason = MailDropQueueFull
		}
	}
	m.log.Warn("mail dropped", "kind", kind, "reason", reason)
	m.opts.Counter.MailDropped(reason)
	return false
}

// Close stops taking jobs and lets the workers finish what is queued until
// ctx ends (the shutdown deadline); then it stops them, drops what is left
// (logged and counted) and returns once they have returned. A send in
// progress at the deadline is abandoned (it ends by its own timeout).
// Close may be called more than once.
func (m *Mailer) Close(ctx context.Context) {
	if m == nil {
		return
	}
	m.stopOnce.Do(func() {
		m.mu.Lock()
		m.closed = true
		close(m.queue)
		m.mu.Unlock()
		if m.cancel == nil { // never started
			m.cancel = func() {}
			close(m.done)
		}
	})
	select {
	case <-m.done:
	case <-ctx.Done():
		m.cancel()
		<-m.done
	}
}

// work handles jobs until the queue is closed and empty; once ctx has ended
// it only drops what is left.
func (m *Mailer) work(ctx context.Context) {
	for {
		var job mailJob
		var ok bool
		select {
		case job, ok = <-m.queue:
			if !ok {
				return
			}
		case <-ctx.Done():
			m.dropQueued(ctx.Err())
			return
		}
		if ctx.Err() != nil { // select picks at random when both are ready
			m.dropped(job.kind, "", MailDropShutdown, ctx.Err())
			continue
		}
		m.deliver(ctx, job)
	}
}

// dropQueued empties the queue as drops without waiting for more jobs.
func (m *Mailer) dropQueued(err error) {
	for {
		select {
		case job, ok := <-m.queue:
			if !ok {
				return
			}
			m.dropped(job.kind, "", MailDropShutdown, err)
		default:
			return
		}
	}
}

// deliver builds the message once (again only while building fails) and
// sends it, retrying with back-off, at most Attempts tries in all.
func (m *Mailer) deliver(ctx context.Context, job mailJob) {
	var msg *Message
	for attempt := 1; ; attempt++ {
		var err error
		if msg == nil {
			msg, err = m.build(ctx, job.build)
			if err == nil && msg == nil {
				m.log.Debug("mail not needed", "kind", job.kind)
				return
			}
		}
		if err == nil {
			if err = m.opts.Sender.Send(ctx, msg); err == nil {
				m.log.Log(ctx, m.sentLevel, "mail sent", "kind", job.kind, "to", m.recipient(msg), "attempts", attempt)
				m.opts.Counter.MailSent()
				return
			}
		}
		err = redact(err, msg)
		switch {
		case ctx.Err() != nil:
			m.dropped(job.kind, m.recipient(msg), MailDropShutdown, err)
			return
		case attempt >= m.opts.Attempts || errors.As(err, new(permanentError)):
			m.dropped(job.kind, m.recipient(msg), MailDropFailed, err)
			return
		}
		wait := m.backoff(attempt)
		m.log.Warn("mail attempt failed; will retry", "kind", job.kind, "to", m.recipient(msg), "attempt", attempt,
			"retry_in", wait.String(), "err", err)
		select {
		case <-ctx.Done():
			m.dropped(job.kind, m.recipient(msg), MailDropShutdown, err)
			return
		case <-time.After(wait):
		}
	}
}

// build runs the job's build; a panic there costs that job only.
func (m *Mailer) build(ctx context.Context, build MailBuild) (msg *Message, err error) {
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, fmt.Errorf("build mail: panic: %v", r)
		}
	}()
	return build(ctx)
}

func (m *Mailer) dropped(kind MailKind, to, reason string, err error) {
	m.log.Error("mail dropped", "kind", kind, "to", to, "reason", reason, "err", err)
	m.opts.Counter.MailDropped(reason)
}

// backoff is the wait after the attempt-th failure: Backoff doubled each
// time up to MaxBackoff, less up to a quarter at random so that workers
// retrying together spread out.
func (m *Mailer) backoff(attempt int) time.Duration {
	d := m.opts.Backoff << min(attempt-1, 20)
	if d <= 0 || d > m.opts.MaxBackoff {
		d = m.opts.MaxBackoff
	}
	return d - time.Duration(rand.Int64N(int64(d/4)+1))
}

// recipient names msg's recipient in logs by a keyed hash; "" before the
// message is built.
func (m *Mailer) recipient(msg *Message) string {
	if msg == nil {
		return ""
	}
	return RecipientHash(m.opts.RecipientKey, msg.To)
}
