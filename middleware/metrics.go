package middleware

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sessionauth/api/models"
)

// Metrics holds the Prometheus collectors of one API instance, in a registry
// of its own (never the global default one), so two instances in one process
// count apart. A nil *Metrics is valid and records nothing (METRICS_ENABLED=false).
type Metrics struct {
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	logins      *prometheus.CounterVec
	created     prometheus.Counter
	revoked     prometheus.Counter
	unavailable *prometheus.CounterVec
	mailSent    prometheus.Counter
	mailDropped *prometheus.CounterVec
}

// NewMetrics returns the collectors, registered with the Go runtime and
// process collectors in a new registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionauth_http_requests_total",
			Help: "HTTP requests answered, by method, route pattern and status.",
		}, []string{"method", "route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sessionauth_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by method, route pattern and status.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"method", "route", "status"}),
		logins: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionauth_logins_total",
			Help: "POST /login attempts by result: success, failure (invalid_credentials) or throttled (429).",
		}, []string{"result"}),
		created: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionauth_sessions_created_total",
			Help: "Sessions created (login, registration, password change).",
		}),
		revoked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionauth_sessions_revoked_total",
			Help: "Live sessions deleted before they expired (logout, logout-all, revocation, rotation, admin changes).",
		}),
		unavailable: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionauth_dependency_errors_total",
			Help: "Requests answered 503 because a dependency (redis, database, hashing) failed or was too slow.",
		}, []string{"dependency"}),
		mailSent: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sessionauth_mail_sent_total",
			Help: "Mails the mail server accepted (or, in development, wrote to the log).",
		}),
		mailDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sessionauth_mail_dropped_total",
			Help: "Mails never sent, by reason: queue_full (the in-memory queue was full), failed (every attempt failed or the server refused it), shutdown (still queued at the shutdown deadline).",
		}, []string{"reason"}),
	}
	for _, dep := range []string{"redis", "database"} {
		m.unavailable.WithLabelValues(dep) // present at zero, so alerts see the series
	}
	for _, result := range []string{"success", "failure", "throttled"} {
		m.logins.WithLabelValues(result)
	}
	for _, reason := range []string{"queue_full", "failed", "shutdown"} { // services.MailDrop*
		m.mailDropped.WithLabelValues(reason)
	}
	m.registry.MustRegister(m.requests, m.latency, m.logins, m.created, m.revoked, m.unavailable, m.mailSent, m.mailDropped,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the registry in the Prometheus text format; nil when m is nil.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return nil
	}
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Observe is the first middleware of the router: after the chain it counts
// the request and its latency by route pattern (never the raw path, which
// would make a series per id), the outcome of a login, and a 503's
// dependency from the coded error. Nil when m is nil.
func (m *Metrics) Observe() gin.HandlerFunc {
	if m == nil {
		return nil
	}
	return func(c *gin.Context) {
		start := time.Now()
		c.Next()
		route := routeOf(c)
		status := c.Writer.Status()
		method, code := methodLabel(c.Request.Method), strconv.Itoa(status)
		m.requests.WithLabelValues(method, route, code).Inc()
		m.latency.WithLabelValues(method, route, code).Observe(time.Since(start).Seconds())
		var coded *models.Error
		if len(c.Errors) > 0 {
			errors.As(c.Errors.Last().Err, &coded)
		}
		if coded != nil && coded.Dependency != "" && status == http.StatusServiceUnavailable {
			m.unavailable.WithLabelValues(coded.Dependency).Inc()
		}
		if route == "/login" && c.Request.Method == http.MethodPost {
			m.countLogin(status, coded)
		}
	}
}

func (m *Metrics) countLogin(status int, coded *models.Error) {
	switch {
	case status == http.StatusOK:
		m.logins.WithLabelValues("success").Inc()
	case coded != nil && coded.Code == models.ErrInvalidCredentials.Code:
		m.logins.WithLabelValues("failure").Inc()
	case coded != nil && coded.Code == models.ErrTooManyRequests.Code:
		m.logins.WithLabelValues("throttled").Inc()
	}
}

// SessionsCreated counts n new sessions (services.SessionCounter).
func (m *Metrics) SessionsCreated(n int) {
	if m != nil && n > 0 {
		m.created.Add(float64(n))
	}
}

// SessionsRevoked counts n live sessions deleted (services.SessionCounter).
func (m *Metrics) SessionsRevoked(n int) {
	if m != nil && n > 0 {
		m.revoked.Add(float64(n))
	}
}

// MailSent counts one mail accepted by the mail server (services.MailCounter).
func (m *Metrics) MailSent() {
	if m != nil {
		m.mailSent.Inc()
	}
}

// MailDropped counts one mail never sent, by reason (services.MailCounter).
func (m *Metrics) MailDropped(reason string) {
	if m != nil {
		m.mailDropped.WithLabelValues(reason).Inc()
	}
}

// methodLabel keeps the method label to the methods HTTP defines, so a
// client cannot mint series with made-up methods.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "OTHER"
}
