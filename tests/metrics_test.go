package tests

import (
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricSet is one scrape of /metrics, parsed.
type metricSet map[string]*dto.MetricFamily

// scrape reads the metrics that c's server exposes.
func scrape(t *testing.T, c *client) metricSet {
	t.Helper()
	res := c.do("GET", "/metrics", nil).want(t, 200)
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Fatalf("got Content-Type %q, want the Prometheus text format", ct)
	}
	return parseMetrics(t, res.Raw)
}

func parseMetrics(t *testing.T, text string) metricSet {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parse metrics: %v\n%s", err, text)
	}
	return families
}

// value returns the counter's value, or the histogram's sample count, of
// the series of name with exactly these labels; 0 when there is none.
func (m metricSet) value(name string, labels ...string) float64 {
	family, ok := m[name]
	if !ok {
		return 0
	}
	for _, metric := range family.GetMetric() {
		if len(metric.GetLabel())*2 != len(labels) {
			continue
		}
		match := true
		for _, pair := range metric.GetLabel() {
			found := false
			for i := 0; i+1 < len(labels); i += 2 {
				found = found || (labels[i] == pair.GetName() && labels[i+1] == pair.GetValue())
			}
			match = match && found
		}
		if !match {
			continue
		}
		if h := metric.GetHistogram(); h != nil {
			return float64(h.GetSampleCount())
		}
		return metric.GetCounter().GetValue()
	}
	return 0
}

// wantMetric fails unless the series has the value.
func (m metricSet) wantMetric(t *testing.T, want float64, name string, labels ...string) {
	t.Helper()
	if got := m.value(name, labels...); got != want {
		t.Errorf("got %s%v = %v, want %v", name, labels, got, want)
	}
}

// TestMetricsCountRequestsLoginsSessionsAndOutages drives a story through
// one instance and reads its /metrics: requests and latencies by route
// pattern and status, login outcomes, sessions created and revoked, and the
// 503s of Redis and the database by dependency.
func TestMetricsCountRequestsLoginsSessionsAndOutages(t *testing.T) {
	t.Parallel()
	s, proxy := newProxiedServer(t, env{"LOGIN_MAX_FAILURES": "2", "REDIS_TIMEOUT": "300ms"})
	c := s.newClient(t)
	email := uniqueEmail("metrics")
	c.register(email) // a session created
	other := s.newClient(t)
	other.login(email, testPassword).want(t, 200) // a success, a session created
	c.login(email, testPassword).want(t, 200)     // a success; rotation: one created, one revoked
	c.do("GET", "/me", nil).want(t, 200)
	s.newClient(t).login(email, "not the password").want(t, 401) // a failure
	s.newClient(t).login(email, "not the password").want(t, 401) // a failure
	s.newClient(t).login(email, testPassword).want(t, 429)       // throttled
	c.do("GET", "/no/such/path/12345", nil).want(t, 404, "not_found")
	c.do("POST", "/logout-all", nil).want(t, 200) // two revoked

	proxy.cut()
	other.do("GET", "/me", nil).want(t, 503, "service_unavailable") // its cookie still asks Redis
	proxy.mend()
	closeDB(s.DB) // every query now fails: a database error
	s.newClient(t).login(uniqueEmail("nobody"), testPassword).want(t, 503, "service_unavailable")

	m := scrape(t, c)
	m.wantMetric(t, 1, "sessionauth_http_requests_total", "method", "POST", "route", "/register", "status", "201")
	m.wantMetric(t, 2, "sessionauth_http_requests_total", "method", "POST", "route", "/login", "status", "200")
	m.wantMetric(t, 2, "sessionauth_http_requests_total", "method", "POST", "route", "/login", "status", "401")
	m.wantMetric(t, 1, "sessionauth_http_requests_total", "method", "POST", "route", "/login", "status", "429")
	m.wantMetric(t, 1, "sessionauth_http_requests_total", "method", "GET", "route", "unmatched", "status", "404")
	m.wantMetric(t, 1, "sessionauth_http_requests_total", "method", "GET", "route", "/me", "status", "503")
	m.wantMetric(t, 1, "sessionauth_http_request_duration_seconds", "method", "GET", "route", "/me", "status", "200")
	m.wantMetric(t, 2, "sessionauth_logins_total", "result", "success")
	m.wantMetric(t, 2, "sessionauth_logins_total", "result", "failure")
	m.wantMetric(t, 1, "sessionauth_logins_total", "result", "throttled")
	m.wantMetric(t, 3, "sessionauth_sessions_created_total")
	m.wantMetric(t, 3, "sessionauth_sessions_revoked_total")
	m.wantMetric(t, 1, "sessionauth_dependency_errors_total", "dependency", "redis")
	m.wantMetric(t, 1, "sessionauth_dependency_errors_total", "dependency", "database")
	if _, ok := m["go_goroutines"]; !ok {
		t.Errorf("got no go_goroutines, want the Go runtime collector")
	}
	for name, family := range m {
		for _, metric := range family.GetMetric() {
			for _, label := range metric.GetLabel() {
				if strings.Contains(label.GetValue(), "12345") {
					t.Errorf("%s has a raw path in a label (%s), want the route pattern", name, label.GetValue())
				}
			}
		}
	}
}

// TestMetricsOffOrOnTheirOwnListener: with METRICS_ENABLED=false nothing is
// served; with METRICS_ADDR the public router has no /metrics (main serves
// them on that address); each instance counts in its own registry.
func TestMetricsOffOrOnTheirOwnListener(t *testing.T) {
	t.Parallel()
	off := newServer(t, env{"METRICS_ENABLED": "false"})
	if off.App.Metrics != nil {
		t.Fatal("got metrics with METRICS_ENABLED=false")
	}
	off.newClient(t).do("GET", "/metrics", nil).want(t, 404, "not_found")

	deps := newDeps(t, env{"METRICS_ADDR": "127.0.0.1:0"})
	private, neighbour := deps.start(t), deps.start(t)
	private.newClient(t).do("GET", "/metrics", nil).want(t, 404, "not_found")
	if private.App.Metrics == nil {
		t.Fatal("got no metrics with METRICS_ADDR set")
	}
	listener := httptest.NewServer(private.App.Metrics) // what main serves on METRICS_ADDR
	t.Cleanup(listener.Close)
	res, err := listener.Client().Get(listener.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	m := parseMetrics(t, mustReadAll(t, res.Body))
	m.wantMetric(t, 1, "sessionauth_http_requests_total", "method", "GET", "route", "unmatched", "status", "404")

	listener2 := httptest.NewServer(neighbour.App.Metrics)
	t.Cleanup(listener2.Close)
	res2, err := listener2.Client().Get(listener2.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res2.Body.Close()
	parseMetrics(t, mustReadAll(t, res2.Body)).wantMetric(t, 0, "sessionauth_http_requests_total",
		"method", "GET", "route", "unmatched", "status", "404")
}

// TestProductionServesMetricsOnlyOnTheirOwnAddress is the finding of a
// production server showing anyone its traffic, logins and outages at
// /metrics: in production they are served only on METRICS_ADDR, and without
// it not at all, with a warning at start.
func TestProductionServesMetricsOnlyOnTheirOwnAddress(t *testing.T) {
	t.Parallel()
	production := env{"APP_ENV": "production", "COOKIE_SECURE": "true"}
	if os.Getenv("TEST_DATABASE_URL") == "" {
		// Production needs PostgreSQL; one that is down still starts the server.
		production["DATABASE_URL"] = "postgres://postgres@127.0.0.1:1/none?sslmode=disable&connect_timeout=1"
	}
	s := newServer(t, production)
	s.newClient(t).do("GET", "/metrics", nil).want(t, 404, "not_found")
	s.newClient(t).do("GET", "/healthz", nil).want(t, 200)
	if s.App.Metrics != nil {
		t.Fatal("got a metrics handler in production without METRICS_ADDR, want none")
	}
	if !strings.Contains(s.Logs.String(), "METRICS_ADDR is unset") {
		t.Fatalf("got logs %s, want a warning about METRICS_ADDR", s.Logs.String())
	}

	production["METRICS_ADDR"] = "127.0.0.1:0"
	private := newServer(t, production)
	private.newClient(t).do("GET", "/metrics", nil).want(t, 404, "not_found")
	if private.App.Metrics == nil || strings.Contains(private.Logs.String(), "METRICS_ADDR is unset") {
		t.Fatal("got no metrics handler (or a warning) with METRICS_ADDR set in production")
	}
}
