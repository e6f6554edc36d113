package middleware

import (
	"net/http"
	"slices"
	"time"

	"github.com/gin-contrib/cors"
	"github.com/gin-gonic/gin"

	"github.com/sessionauth/api/models"
)

// CORS lets the exact origins in allowed read responses with credentials.
// gin-contrib/cors answers an untrusted origin with a bare 403, so it is
// called only for allowed origins: any other origin gets no CORS headers and
// its request is otherwise handled as usual, as the contract says.
func CORS(allowed []string) gin.HandlerFunc {
	if len(allowed) == 0 {
		return func(c *gin.Context) { c.Header("Vary", "Origin") }
	}
	allow := cors.New(cors.Config{
		AllowOrigins:     allowed,
		AllowMethods:     []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete},
		AllowHeaders:     []string{"Content-Type", "X-Request-Id"},
		ExposeHeaders:    []string{"X-Request-Id", "Retry-After"},
		AllowCredentials: true,
		MaxAge:           10 * time.Minute,
	})
	return func(c *gin.Context) {
		c.Header("Vary", "Origin")
		if origin := c.GetHeader("Origin"); origin != "" && slices.Contains(allowed, origin) {
			allow(c)
		}
	}
}

// CrossOriginProtection rejects unsafe methods from browser origins other
// than the request's own and the trusted ones, using Go's
// net/http.CrossOriginProtection (Sec-Fetch-Site, then Origin against Host).
// Requests with neither header (curl, Postman, servers) pass.
func CrossOriginProtection(trusted []string) (gin.HandlerFunc, error) {
	protection := http.NewCrossOriginProtection()
	for _, origin := range trusted {
		if err := protection.AddTrustedOrigin(origin); err != nil {
			return nil, err
		}
	}
	return func(c *gin.Context) {
		if err := protection.Check(c.Request); err != nil {
			_ = c.Error(models.ErrCrossOrigin)
			c.Abort()
			return
		}
		c.Next()
	}, nil
}
