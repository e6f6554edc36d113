package middleware

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sessionauth/api/models"
)

func TestErrorsMapsCodedErrorsToTheContract(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	cases := []struct {
		err        error
		status     int
		code       string
		retryAfter string
	}{
		{models.ErrInvalidJSON, 400, "invalid_json", ""},
		{models.Validation(map[string]string{"email": "is required"}), 400, "validation_failed", ""},
		{models.ErrNotAuthenticated, 401, "not_authenticated", ""},
		{models.ErrCrossOrigin, 403, "cross_origin_rejected", ""},
		{models.ErrReauthRequired, 403, "reauthentication_required", ""},
		{fmt.Errorf("wrapped: %w", models.ErrLastAdmin), 409, "last_admin", ""},
		{models.TooManyRequests(1500 * time.Millisecond), 429, "too_many_requests", "2"},
		{models.Unavailable("redis", errors.New("dial tcp: refused")), 503, "service_unavailable", "2"},
		{errors.New("pq: secret SQL detail"), 500, "internal_error", ""},
	}
	for _, tc := range cases {
		r := gin.New()
		r.Use(Errors(slog.New(slog.DiscardHandler)))
		r.GET("/", func(c *gin.Context) { _ = c.Error(tc.err) })
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		var body map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != tc.status || body["error"] != tc.code || body["message"] == "" {
			t.Errorf("%v: got %d %v, want %d %s", tc.err, rec.Code, body, tc.status, tc.code)
		}
		if got := rec.Header().Get("Retry-After"); got != tc.retryAfter {
			t.Errorf("%v: got Retry-After %q, want %q", tc.err, got, tc.retryAfter)
		}
		if tc.status == 500 && (strings.Contains(rec.Body.String(), "SQL") || strings.Contains(rec.Body.String(), "pq")) {
			t.Errorf("internal detail leaked: %s", rec.Body.String())
		}
	}
}

// TestEveryCodeHasTheContractsStatus checks the error table against the
// contract, code by code: a code left out of the table would answer 500.
func TestEveryCodeHasTheContractsStatus(t *testing.T) {
	contract := map[string]int{
		"invalid_json": 400, "validation_failed": 400, "invalid_current_password": 400,
		"not_authenticated": 401, "invalid_credentials": 401,
		"forbidden": 403, "cross_origin_rejected": 403, "reauthentication_required": 403, "registration_disabled": 403,
		"not_found": 404, "method_not_allowed": 405, "email_taken": 409, "last_admin": 409,
		"payload_too_large": 413, "unsupported_media_type": 415, "too_many_requests": 429,
		"service_unavailable": 503, "internal_error": 500,
		"invalid_token": 400, "invalid_code": 400, "mfa_required": 401, "mfa_enrollment_required": 403,
		"email_not_verified": 403, "mfa_already_enabled": 409,
	}
	seen := map[string]bool{}
	for _, e := range models.Codes() {
		seen[e.Code] = true
		want, ok := contract[e.Code]
		if !ok {
			t.Errorf("%s: a code the contract's table lacks", e.Code)
			continue
		}
		if got := StatusOf(e); got != want {
			t.Errorf("%s: got status %d, want %d", e.Code, got, want)
		}
		if e.Message == "" {
			t.Errorf("%s: no message", e.Code)
		}
	}
	for code := range contract {
		if !seen[code] {
			t.Errorf("%s: in the contract's table but not in models.Codes", code)
		}
	}
}

func TestRequireRole(t *testing.T) {
	gin.SetMode(gin.ReleaseMode)
	cases := []struct {
		session *models.Session
		status  int
	}{
		{nil, http.StatusUnauthorized},
		{&models.Session{Role: models.RoleUser}, http.StatusForbidden},
		{&models.Session{Role: models.RoleAdmin}, http.StatusOK},
	}
	for _, tc := range cases {
		r := gin.New()
		r.Use(Errors(slog.New(slog.DiscardHandler)), func(c *gin.Context) {
			if tc.session != nil {
				c.Set(currentKey, tc.session)
			}
		}, RequireRole(models.RoleAdmin))
		r.GET("/", func(c *gin.Context) { c.Status(http.StatusOK) })
		rec := httptest.NewRecorder()
		r.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
		if rec.Code != tc.status {
			t.Errorf("session %+v: got %d, want %d", tc.session, rec.Code, tc.status)
		}
	}
}
