package main

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"
)

// TestServeDrainsMailAfterTheRequestsWithinTheShutdownTimeout: a request in
// flight at shutdown may still queue mail, so the mail drain comes after the
// HTTP shutdown and shares its deadline rather than adding one of its own.
func TestServeDrainsMailAfterTheRequestsWithinTheShutdownTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	inFlight, requestDone := make(chan struct{}), make(chan time.Time, 1)
	srv := &http.Server{Addr: addr, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(inFlight)
		time.Sleep(300 * time.Millisecond)
		requestDone <- time.Now()
	})}
	type drainCall struct {
		at       time.Time
		deadline time.Time
	}
	drained := make(chan drainCall, 1)
	drainMail := func(ctx context.Context) {
		deadline, _ := ctx.Deadline()
		drained <- drainCall{time.Now(), deadline}
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	const timeout = 5 * time.Second
	served := make(chan error, 1)
	go func() { served <- serve(ctx, srv, time.Millisecond, timeout, drainMail, slog.New(slog.DiscardHandler)) }()
	go func() {
		for {
			if resp, err := http.Get("http://" + addr); err == nil {
				resp.Body.Close()
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	<-inFlight
	stopped := time.Now()
	cancel()
	if err := <-served; err != nil {
		t.Fatalf("serve: %v", err)
	}
	call, done := <-drained, <-requestDone
	if call.at.Before(done) {
		t.Errorf("the mail drain began %v before the request in flight ended", done.Sub(call.at))
	}
	if call.deadline.IsZero() || call.deadline.After(stopped.Add(timeout+100*time.Millisecond)) {
		t.Errorf("got drain deadline %v after the stop, want the shutdown's own (%v)", call.deadline.Sub(stopped), timeout)
	}
}
