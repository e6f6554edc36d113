package api

import (
	"log/slog"
	"net/http"
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
