// Package middleware holds the small, composable Gin middleware of the API:
// the one error mapper, request ids and logs, browser safety and sessions.
package middleware

import (
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/sessionauth/api/models"
)

// errorBody is the contract's one error shape.
type errorBody struct {
	Error   string            `json:"error"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields,omitempty"`
}

// StatusOf maps a contract error code to its HTTP status.
func StatusOf(code string) int {
	switch code {
	case "invalid_json", "validation_failed", "invalid_current_password":
		return http.StatusBadRequest
	case "not_authenticated", "invalid_credentials":
		return http.StatusUnauthorized
	case "forbidden", "cross_origin_rejected", "reauthentication_required", "registration_disabled":
		return http.StatusForbidden
	case "not_found":
		return http.StatusNotFound
	case "method_not_allowed":
		return http.StatusMethodNotAllowed
	case "email_taken", "last_admin":
		return http.StatusConflict
	case "payload_too_large":
		return http.StatusRequestEntityTooLarge
	case "unsupported_media_type":
		return http.StatusUnsupportedMediaType
	case "too_many_requests":
		return http.StatusTooManyRequests
	case "service_unavailable":
		return http.StatusServiceUnavailable
	default:
		return http.StatusInternalServerError
	}
}

// Errors is the only error-to-HTTP mapper: handlers and middleware report
// with c.Error and return; after the chain it answers the last error in the
// contract's shape. Uncoded errors are bugs: 500 internal_error, logged in full.
func Errors(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		c.Next()
		if len(c.Errors) == 0 || c.Writer.Written() {
			return
		}
		err := c.Errors.Last().Err
		var coded *models.Error
		if !errors.As(err, &coded) {
			log.ErrorContext(c.Request.Context(), "internal error", "request_id", RequestIDOf(c), "err", err)
			coded = models.ErrInternal
		} else if coded.Dependency != "" {
			log.WarnContext(c.Request.Context(), "dependency unavailable", "request_id", RequestIDOf(c),
				"dependency", coded.Dependency, "err", err)
		}
		status := StatusOf(coded.Code)
		if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
			c.Header("Retry-After", strconv.Itoa(int(max(1, math.Ceil(coded.RetryAfter.Seconds())))))
		}
		c.JSON(status, errorBody{Error: coded.Code, Message: coded.Message, Fields: coded.Fields})
	}
}

// Recover turns a panic into 500 internal_error for Errors to answer; the
// panic is logged, never sent.
func Recover(log *slog.Logger) gin.HandlerFunc {
	return func(c *gin.Context) {
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				log.ErrorContext(c.Request.Context(), "panic", "request_id", RequestIDOf(c), "panic", p)
				_ = c.Error(errors.New("panic recovered"))
				c.Abort()
			}
		}()
		c.Next()
	}
}

// NotFound answers unknown routes with not_found.
func NotFound() gin.HandlerFunc {
	return func(c *gin.Context) { _ = c.Error(models.ErrNotFound) }
}

// MethodNotAllowed answers a known path with a wrong method; Gin sets Allow.
func MethodNotAllowed() gin.HandlerFunc {
	return func(c *gin.Context) { _ = c.Error(models.ErrMethodNotAllowed) }
}
