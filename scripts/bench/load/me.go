package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"
)

// sigClock holds the moment the SIGTERM was sent (zero before).
type sigClock struct{ ns atomic.Int64 }

func (s *sigClock) set(t time.Time) { s.ns.Store(t.UnixNano()) }
func (s *sigClock) at() time.Time {
	if n := s.ns.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// meWorker holds one keep-alive connection and sends GET /me on it back to back. It speaks
// HTTP/1.1 on a raw connection so that it knows exactly when each request was written and whether
// its answer came complete: nothing is retried behind its back, as net/http's Transport would do
// for an idempotent request on a reused connection.
type meWorker struct {
	addr    string
	request []byte
	timeout time.Duration
	g       *group
}

func (w *meWorker) run(ctx context.Context, sig *sigClock) {
	var conn net.Conn
	var br *bufio.Reader
	parse, _ := http.NewRequest(http.MethodGet, "/me", nil)
	defer func() {
		if conn != nil {
			conn.Close()
		}
	}()
	var cr *countingReader
	served := 0 // answers on the current connection
	for ctx.Err() == nil {
		if conn == nil {
			start := time.Now()
			c, err := net.DialTimeout("tcp", w.addr, w.timeout)
			if err != nil {
				w.g.add(start, time.Now(), 0, err, sig.at())
				pause(ctx, 20*time.Millisecond) // the server is gone or refusing: do not spin
				continue
			}
			cr = &countingReader{r: c}
			conn, br, served = c, bufio.NewReaderSize(cr, 4096), 0
		}
		start := time.Now()
		cr.n = int64(br.Buffered())
		status, body, closeConn, err := w.once(conn, br, parse, start)
		if err != nil {
			err = &requestError{err: err, gotBytes: cr.n > 0, reused: served > 0}
		}
		served++
		w.g.add(start, time.Now(), status, err, sig.at())
		if err == nil && status >= 200 && status <= 299 && !(json.Valid(body) && bytes.Contains(body, []byte(`"user"`))) {
			w.g.badBody++
		}
		if err != nil || closeConn {
			conn.Close()
			conn = nil
		}
	}
}

func (w *meWorker) once(conn net.Conn, br *bufio.Reader, parse *http.Request, start time.Time) (int, []byte, bool, error) {
	if err := conn.SetDeadline(start.Add(w.timeout)); err != nil {
		return 0, nil, true, err
	}
	if _, err := conn.Write(w.request); err != nil {
		return 0, nil, true, err
	}
	resp, err := http.ReadResponse(br, parse)
	if err != nil {
		return 0, nil, true, err
	}
	// ReadAll fails with io.ErrUnexpectedEOF when the body is shorter than Content-Length.
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return 0, nil, true, err
	}
	return resp.StatusCode, body, resp.Close, nil
}

// countingReader counts the bytes read from the connection since n was last set.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
