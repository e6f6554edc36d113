package api

import (
	"context"
	_ "embed"
	"net/http"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

//go:embed openapi.yaml
var openAPIDocument []byte

// readyCheckTimeout bounds each readiness check, as the contract says.
const readyCheckTimeout = time.Second

// Pinger checks one dependency (database or Redis) within ctx.
type Pinger func(ctx context.Context) error

type readyResponse struct {
	Status  string            `json:"status,omitempty"`
	Error   string            `json:"error,omitempty"`
	Message string            `json:"message,omitempty"`
	Checks  map[string]string `json:"checks"`
}

func handleHealthz() gin.HandlerFunc {
	return func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) }
}

// handleReadyz checks every dependency at once, each bounded to 1 s, and
// names the failing ones.
func handleReadyz(checks map[string]Pinger) gin.HandlerFunc {
	return func(c *gin.Context) {
		results := make(map[string]string, len(checks))
		var mu sync.Mutex
		var wg sync.WaitGroup
		for name, ping := range checks {
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(c.Request.Context(), readyCheckTimeout)
				defer cancel()
				status := "ok"
				if ping(ctx) != nil {
					status = "unavailable"
				}
				mu.Lock()
				results[name] = status
				mu.Unlock()
			})
		}
		wg.Wait()
		for _, status := range results {
			if status != "ok" {
				c.Header("Retry-After", "2")
				c.JSON(http.StatusServiceUnavailable, readyResponse{Error: "service_unavailable",
					Message: "A dependency is unavailable.", Checks: results})
				return
			}
		}
		c.JSON(http.StatusOK, readyResponse{Status: "ok", Checks: results})
	}
}

func handleOpenAPI() gin.HandlerFunc {
	return func(c *gin.Context) { c.Data(http.StatusOK, "application/yaml", openAPIDocument) }
}
