package api

import (
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"
)

// ServerTimeouts bound every phase of a connection, so a slow client
// (headers or body trickled byte by byte) is cut while others are served.
type ServerTimeouts struct {
	ReadHeader time.Duration
	Read       time.Duration
	Write      time.Duration
	Idle       time.Duration
}

// maxHeaderBytes is the contract's 64 KiB header limit.
const maxHeaderBytes = 64 << 10

// NewHTTPServer returns the http.Server for handler with every timeout set.
func NewHTTPServer(addr string, handler http.Handler, t ServerTimeouts, log *slog.Logger) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// DrainingHandler answers with "Connection: close" once draining is set: a
// keep-alive client finishes its current request and reconnects (to another
// instance behind the load balancer) instead of sending one more request on a
// connection that the shutdown is about to close as idle.
func DrainingHandler(h http.Handler, draining *atomic.Bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if draining.Load() {
			w.Header().Set("Connection", "close")
		}
		h.ServeHTTP(w, r)
	})
}
