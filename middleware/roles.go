package middleware

import (
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sessionauth/api/models"
)

// RequireRole answers 401 without a session and 403 forbidden when the
// caller's role is not one of roles. Put it after RequireAuth.
func RequireRole(roles ...models.Role) gin.HandlerFunc {
	return func(c *gin.Context) {
		rec := CurrentSession(c)
		switch {
		case rec == nil:
			_ = c.Error(models.ErrNotAuthenticated)
		case !slices.Contains(roles, rec.Role):
			_ = c.Error(models.ErrForbidden)
		default:
			c.Next()
			return
		}
		c.Abort()
	}
}

// RequireSecondFactor answers 403 mfa_enrollment_required when required and
// the caller has no second factor (ADMIN_MFA_REQUIRED on admin routes). The
// session's profile copy says, so it costs no database read.
func RequireSecondFactor(required bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if rec := CurrentSession(c); required && rec != nil && !rec.TOTP && rec.Passkeys == 0 {
			_ = c.Error(models.ErrMFAEnrollmentRequired)
			c.Abort()
			return
		}
		c.Next()
	}
}

// RequireRecentAuth answers 403 reauthentication_required to unsafe methods
// when the caller last proved the password more than window ago.
func RequireRecentAuth(window time.Duration, now func() time.Time) gin.HandlerFunc {
	return func(c *gin.Context) {
		rec := CurrentSession(c)
		switch c.Request.Method {
		case "GET", "HEAD", "OPTIONS":
		default:
			// AuthAt has whole seconds, taken as the earliest moment the
			// proof could have been: the window may end up to 1 s early, never late.
			if rec == nil || now().Sub(time.Unix(rec.AuthAt, 0)) > window {
				_ = c.Error(models.ErrReauthRequired)
				c.Abort()
				return
			}
		}
		c.Next()
	}
}
