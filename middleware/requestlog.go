package middleware

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
)

const (
	requestIDKey  = "request_id"
	requestIDHdr  = "X-Request-Id"
	maxRequestID  = 64
	currentUserID = "log_user_id"
)

// RequestID takes a sane X-Request-Id from the request or makes one, and
// echoes it in the response.
func RequestID() gin.HandlerFunc {
	// A random per-process prefix and a counter: unique across instances
	// without a random read per request.
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	prefix := hex.EncodeToString(b) + "-"
	var counter atomic.Uint64
	return func(c *gin.Context) {
		id := c.GetHeader(requestIDHdr)
		if !saneRequestID(id) {
			id = prefix + strconv.FormatUint(counter.Add(1), 36)
		}
		c.Set(requestIDKey, id)
		c.Header(requestIDHdr, id)
		c.Next()
	}
}

// saneRequestID accepts 1 to 64 characters of [A-Za-z0-9._-], so a client
// cannot inject anything into logs or headers.
func saneRequestID(id string) bool {
	if id == "" || len(id) > maxRequestID {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// RequestIDOf returns the request's id.
func RequestIDOf(c *gin.Context) string { return c.GetString(requestIDKey) }

// routeOf is the matched route pattern (never the raw path, which would make
// a log value or metric series per id), or "unmatched".
func routeOf(c *gin.Context) string {
	if route := c.FullPath(); route != "" {
		return route
	}
	return "unmatched"
}

// RequestLog writes one structured line per request: method, route, status,
// duration, user id and request id. Never a cookie, a body or a session id.
func RequestLog(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		status := c.Writer.Status()
		level := slog.LevelInfo
		if status >= 500 {
			level = slog.LevelError
		}
		log.LogAttrs(c.Request.Context(), level, "request",
			slog.String("method", c.Request.Method),
			slog.String("route", routeOf(c)),
			slog.Int("status", status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("user_id", c.GetString(currentUserID)),
			slog.String("ip", c.ClientIP()),
			slog.String("request_id", RequestIDOf(c)),
		)
	}
}

// SecurityHeaders sets the headers every response carries.
func SecurityHeaders() gin.HandlerFunc {
	return func(c *gin.Context) {
		h := c.Writer.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		c.Next()
	}
}
