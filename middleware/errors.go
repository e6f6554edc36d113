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

// errorStatus is the contract's error table: the HTTP status of each code,
// keyed by the coded errors themselves, so a misspelt code does not compile.
// A code missing here answers 500 (the test checks every one is present).
var errorStatus = map[string]int{
	models.ErrInvalidJSON.Code:            http.StatusBadRequest,
	models.ErrValidation.Code:             http.StatusBadRequest,
	models.ErrInvalidCurrentPassword.Code: http.StatusBadRequest,
	models.ErrNotAuthenticated.Code:       http.StatusUnauthorized,
	models.ErrInvalidCredentials.Code:     http.StatusUnauthorized,
	models.ErrForbidden.Code:              http.StatusForbidden,
	models.ErrCrossOrigin.Code:            http.StatusForbidden,
	models.ErrReauthRequired.Code:         http.StatusForbidden,
	models.ErrRegistrationDisabled.Code:   http.StatusForbidden,
	models.ErrNotFound.Code:               http.StatusNotFound,
	models.ErrMethodNotAllowed.Code:       http.StatusMethodNotAllowed,
	models.ErrEmailTaken.Code:             http.StatusConflict,
	models.ErrLastAdmin.Code:              http.StatusConflict,
	models.ErrPayloadTooLarge.Code:        http.StatusRequestEntityTooLarge,
	models.ErrUnsupportedMediaType.Code:   http.StatusUnsupportedMediaType,
	models.ErrTooManyRequests.Code:        http.StatusTooManyRequests,
	models.ErrUnavailable.Code:            http.StatusServiceUnavailable,
	models.ErrInternal.Code:               http.StatusInternalServerError,
	models.ErrInvalidToken.Code:           http.StatusBadRequest,
	models.ErrInvalidCode.Code:            http.StatusBadRequest,
	models.ErrMFARequired.Code:            http.StatusUnauthorized,
	models.ErrMFAEnrollmentRequired.Code:  http.StatusForbidden,
	models.ErrEmailNotVerified.Code:       http.StatusForbidden,
	models.ErrMFAAlreadyEnabled.Code:      http.StatusConflict,
}

// StatusOf returns the HTTP status of a coded error; 500 for an unknown code.
func StatusOf(err *models.Error) int {
	if status, ok := errorStatus[err.Code]; ok {
		return status
	}
	return http.StatusInternalServerError
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
		status := StatusOf(coded)
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
