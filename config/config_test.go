package config

import (
	"maps"
	"net/http"
	"strings"
	"testing"
	"time"
)

func getenv(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestDefaults(t *testing.T) {
	c, err := Load(getenv(nil))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"HTTP_ADDR", c.HTTP.Addr, ":8080"},
		{"cookie name", c.Cookie.Name, "sessionId"},
		{"prefix", c.Session.KeyPrefix, "sess:"},
		{"absolute", c.Session.Lifetimes.Absolute, 168 * time.Hour},
		{"idle", c.Session.Lifetimes.Idle, 24 * time.Hour},
		{"touch", c.Session.TouchInterval, time.Minute},
		{"secure", c.Cookie.Secure, true},
		{"samesite", c.Cookie.SameSite, http.SameSiteStrictMode},
		{"registration", c.RegistrationEnabled, true},
		{"login failures", c.Throttle.LoginMaxFailures, 5},
		{"window", c.Throttle.LoginWindow, 15 * time.Minute},
		{"ip failures", c.Throttle.LoginIPMaxFailures, 100},
		{"register", c.Throttle.RegisterIPMax, 20},
		{"reauth", c.ReauthWindow, 15 * time.Minute},
		{"argon memory", c.Argon2.MemoryKiB, uint32(19456)},
		{"argon iterations", c.Argon2.Iterations, uint32(2)},
		{"argon parallelism", c.Argon2.Parallelism, uint8(1)},
		{"auto migrate in development", c.Database.AutoMigrate, true},
		{"redis timeout", c.Redis.Timeout, 2 * time.Second},
		{"database timeout", c.Database.Timeout, 2 * time.Second},
		{"shutdown", c.HTTP.ShutdownTimeout, 15 * time.Second},
	}
	for _, tc := range checks {
		if tc.got != tc.want {
			t.Errorf("%s: got %v, want %v", tc.name, tc.got, tc.want)
		}
	}
	if c.Hashing.Concurrency < 1 {
		t.Errorf("got HASH_CONCURRENCY %d, want at least 1", c.Hashing.Concurrency)
	}
}

func TestProductionRefusesWeakSettingsAllAtOnce(t *testing.T) {
	_, err := Load(getenv(map[string]string{"APP_ENV": "production", "SESSION_SECRET": ExampleSecret, "COOKIE_SECURE": "false"}))
	if err == nil {
		t.Fatal("got no error, want refusal")
	}
	lines := strings.Split(err.Error(), "\n")
	for _, want := range []string{"DATABASE_URL", "REDIS_URL", "example value", "COOKIE_SECURE"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want a line about %s", err, want)
		}
	}
	if len(lines) != 4 {
		t.Errorf("got %d lines, want one per problem (4): %q", len(lines), err)
	}
	c, err := Load(getenv(map[string]string{"APP_ENV": "production", "DATABASE_URL": "postgres://db/x",
		"REDIS_URL": "rediss://user:pw@redis:6380/2", "SESSION_SECRET": strings.Repeat("s", 32)}))
	if err != nil {
		t.Fatalf("got %v, want a valid production config", err)
	}
	if c.Database.AutoMigrate {
		t.Error("got AUTO_MIGRATE true in production, want false by default")
	}
	if _, err := Load(getenv(map[string]string{"APP_ENV": "production", "DATABASE_URL": "postgres://db/x",
		"REDIS_URL": "redis://r:6379/0", "SESSION_SECRET": "too-short"})); err == nil || !strings.Contains(err.Error(), "32 bytes") {
		t.Errorf("got %v, want the short secret refused", err)
	}
}

func TestInvalidValues(t *testing.T) {
	cases := map[string]map[string]string{
		"APP_ENV":                  {"APP_ENV": "staging"},
		"SESSION_IDLE_TIMEOUT":     {"SESSION_IDLE_TIMEOUT": "soon"},
		"LOGIN_MAX_FAILURES":       {"LOGIN_MAX_FAILURES": "0"},
		"COOKIE_SAMESITE":          {"COOKIE_SAMESITE": "sometimes"},
		"COOKIE_SECURE":            {"COOKIE_SECURE": "maybe"},
		"CORS_ALLOWED_ORIGINS":     {"CORS_ALLOWED_ORIGINS": "https://ok.example,https://bad.example/path"},
		"REDIS_URL":                {"REDIS_URL": "http://redis:6379"},
		"SESSION_TOUCH_INTERVAL":   {"SESSION_IDLE_TIMEOUT": "1m", "SESSION_TOUCH_INTERVAL": "30s"},
		"COOKIE_SAMESITE=None":     {"COOKIE_SAMESITE": "None", "COOKIE_SECURE": "false"},
		"SESSION_SECRET_PREVIOUS":  {"SESSION_SECRET_PREVIOUS": "short"},
		"ARGON2_PARALLELISM/-size": {"ARGON2_MEMORY_KIB": "8", "ARGON2_PARALLELISM": "4"},
	}
	for name, env := range cases {
		if _, err := Load(getenv(env)); err == nil {
			t.Errorf("%s: got no error for %v", name, env)
		}
	}
	c, err := Load(getenv(map[string]string{"CORS_ALLOWED_ORIGINS": " https://a.example , http://localhost:5173/ ", "TRUSTED_PROXIES": "10.0.0.0/8"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Browser.CORSAllowedOrigins) != 2 || c.Browser.CORSAllowedOrigins[1] != "http://localhost:5173" || c.Browser.TrustedProxies[0] != "10.0.0.0/8" {
		t.Errorf("got %v %v", c.Browser.CORSAllowedOrigins, c.Browser.TrustedProxies)
	}
}

func TestWarnsAboutTheExampleSecretInDevelopment(t *testing.T) {
	c, err := Load(getenv(map[string]string{"SESSION_SECRET": ExampleSecret}))
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 1 || !strings.Contains(w[0], ".env.example") {
		t.Errorf("got warnings %q, want one about the example secret", w)
	}
	c, err = Load(getenv(map[string]string{"SESSION_SECRET": strings.Repeat("s", 32)}))
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Warnings(); len(w) != 0 {
		t.Errorf("got warnings %q, want none", w)
	}
}

func TestWarnsThatProductionServesNoMetricsWithoutAnAddress(t *testing.T) {
	prod := map[string]string{"APP_ENV": "production", "DATABASE_URL": "postgres://db/app", "REDIS_URL": "redis://redis:6379/0",
		"SESSION_SECRET": strings.Repeat("s", 32)}
	for _, tc := range []struct {
		extra map[string]string
		warn  bool
	}{
		{nil, true},
		{map[string]string{"METRICS_ADDR": "127.0.0.1:9090"}, false},
		{map[string]string{"METRICS_ENABLED": "false"}, false},
		{map[string]string{"APP_ENV": "development"}, false},
	} {
		settings := maps.Clone(prod)
		maps.Copy(settings, tc.extra)
		c, err := Load(getenv(settings))
		if err != nil {
			t.Fatal(err)
		}
		w := c.Warnings()
		if warned := len(w) == 1 && strings.Contains(w[0], "METRICS_ADDR"); warned != tc.warn || len(w) > 1 {
			t.Errorf("%v: got warnings %q, want a METRICS_ADDR warning: %v", tc.extra, w, tc.warn)
		}
	}
}
