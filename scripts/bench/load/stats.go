package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// group collects the outcomes of one kind of request. Each /me worker has its own (no lock on the
// hot path); the login and logout groups are shared and use mu.
type group struct {
	mu       sync.Mutex
	lat      []time.Duration
	status   map[int]int
	errs     map[string]int // "<phase>:<kind>", phase "before" or "after" the SIGTERM
	answered int            // complete answers
	before   int            // complete answers to requests written before the SIGTERM (or all, without one)
	inflight int            // ... of which finished after the SIGTERM: in flight when it came
	badBody  int            // 2xx whose body was not the JSON expected
}

func newGroup() *group { return &group{status: map[int]int{}, errs: map[string]int{}} }

// phase tells whether a request written at start came before the SIGTERM (sigterm zero: none yet).
func phase(start, sigterm time.Time) string {
	if sigterm.IsZero() || start.Before(sigterm) {
		return "before"
	}
	return "after"
}

func (g *group) add(start, end time.Time, status int, err error, sigterm time.Time) {
	ph := phase(start, sigterm)
	if err != nil {
		g.errs[ph+":"+classify(err)]++
		return
	}
	g.lat = append(g.lat, end.Sub(start))
	g.status[status]++
	g.answered++
	if ph == "before" {
		g.before++
		if !sigterm.IsZero() && end.After(sigterm) {
			g.inflight++
		}
	}
}

func (g *group) merge(o *group) {
	g.lat = append(g.lat, o.lat...)
	for k, v := range o.status {
		g.status[k] += v
	}
	for k, v := range o.errs {
		g.errs[k] += v
	}
	g.answered += o.answered
	g.before += o.before
	g.inflight += o.inflight
	g.badBody += o.badBody
}

// requestError is a failed GET /me with what the worker knows of it: whether any byte of an answer
// came, and whether the connection had already served answers (keep-alive reuse).
type requestError struct {
	err              error
	gotBytes, reused bool
}

func (e *requestError) Error() string { return e.err.Error() }
func (e *requestError) Unwrap() error { return e.err }

// classify names a transport error:
//
//	refused       the connection was refused (nothing was sent);
//	truncated     part of an answer came, then the connection ended: an answer cut short;
//	unanswered_keepalive  no byte of an answer on a connection that had served others: the
//	              server closed it as idle while the request was on its way (RFC 9112 §9.3.1:
//	              a client may retry such an idempotent request on a new connection);
//	unanswered_new   no byte of an answer on a fresh connection (e.g. still in the accept queue
//	              when the listener closed);
//	timeout, other.
func classify(err error) string {
	var re *requestError
	if errors.As(err, &re) {
		var ne net.Error
		switch {
		case errors.Is(err, syscall.ECONNREFUSED):
			return "refused"
		case errors.As(err, &ne) && ne.Timeout():
			return "timeout"
		case re.gotBytes:
			return "truncated"
		case re.reused:
			return "unanswered_keepalive"
		}
		return "unanswered_new"
	}
	return classifyPlain(err)
}

// classifyPlain names errors of net/http calls made on a new connection each (logins, logouts).
func classifyPlain(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "unanswered_new"
	}
	return "other"
}

type summary struct {
	n, non2xx, n5xx    int
	p50, p99, max      time.Duration
	errsBefore, errsAf int
}

func (g *group) summarize() summary {
	s := summary{n: g.answered}
	sort.Slice(g.lat, func(i, j int) bool { return g.lat[i] < g.lat[j] })
	if len(g.lat) > 0 {
		s.p50, s.p99, s.max = pct(g.lat, 50), pct(g.lat, 99), g.lat[len(g.lat)-1]
	}
	for code, n := range g.status {
		if code < 200 || code > 299 {
			s.non2xx += n
		}
		if code >= 500 {
			s.n5xx += n
		}
	}
	for k, n := range g.errs {
		if strings.HasPrefix(k, "before:") {
			s.errsBefore += n
		} else {
			s.errsAf += n
		}
	}
	return s
}

// pct is the nearest-rank percentile of sorted d.
func pct(d []time.Duration, p float64) time.Duration {
	i := int(p/100*float64(len(d))+0.999999) - 1
	return d[max(0, min(i, len(d)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f", float64(d)/float64(time.Millisecond)) }

func (g *group) line(name string, secs float64) string {
	s := g.summarize()
	return fmt.Sprintf("%s: answers=%d req_per_s=%.1f p50_ms=%s p99_ms=%s max_ms=%s non2xx=%d 5xx=%d transport_errors=%d statuses=%s errors=%s",
		name, s.n, float64(s.n)/secs, ms(s.p50), ms(s.p99), ms(s.max), s.non2xx, s.n5xx,
		s.errsBefore+s.errsAf, fmtMap(g.status), fmtMap(g.errs))
}

func fmtMap[K comparable](m map[K]int) string {
	parts := make([]string, 0, len(m))
	for k, v := range m {
		parts = append(parts, fmt.Sprintf("%v:%d", k, v))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "{}"
	}
	return "{" + strings.Join(parts, ",") + "}"
}
