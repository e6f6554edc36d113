package config

import (
	"maps"
	"net/http"
	"os"
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
		{"cookie name", c.Cookie.Name, "__Host-sessionId"},
		{"sessions per user", c.Session.MaxPerUser, 50},
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
		{"audit retention", c.Audit.Retention, 2160 * time.Hour},
		{"audit prune interval", c.Audit.PruneInterval, 5 * time.Minute},
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
	for _, want := range []string{"DATABASE_URL", "REDIS_URL", "example value", "COOKIE_SECURE", "MFA_ENCRYPTION_KEY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("got %q, want a line about %s", err, want)
		}
	}
	if len(lines) != 5 {
		t.Errorf("got %d lines, want one per problem (5): %q", len(lines), err)
	}
	c, err := Load(getenv(map[string]string{"APP_ENV": "production", "DATABASE_URL": "postgres://db/x",
		"REDIS_URL": "rediss://user:pw@redis:6380/2", "SESSION_SECRET": strings.Repeat("s", 32),
		"MFA_ENCRYPTION_KEY": strings.Repeat("m", 32)}))
	if err != nil {
		t.Fatalf("got %v, want a valid production config", err)
	}
	if c.Database.AutoMigrate {
		t.Error("got AUTO_MIGRATE true in production, want false by default")
	}
	if _, err := Load(getenv(map[string]string{"APP_ENV": "production", "DATABASE_URL": "postgres://db/x",
		"REDIS_URL": "redis://r:6379/0", "SESSION_SECRET": "too-short", "MFA_ENCRYPTION_KEY": strings.Repeat("m", 32)})); err == nil || !strings.Contains(err.Error(), "32 bytes") {
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
		"__Host- with a domain":    {"SESSION_COOKIE_NAME": "__Host-sid", "COOKIE_DOMAIN": "example.com"},
		"__Host- not Secure":       {"SESSION_COOKIE_NAME": "__Host-sid", "COOKIE_SECURE": "false"},
		"__Secure- not Secure":     {"SESSION_COOKIE_NAME": "__Secure-sid", "COOKIE_SECURE": "false"},
		"MAX_SESSIONS_PER_USER":    {"MAX_SESSIONS_PER_USER": "0"},
		"MFA_ENCRYPTION_KEY short": {"MFA_ENCRYPTION_KEY": "short"},
		"EMAIL_VERIFICATION_REQUIRED without mail": {"APP_ENV": "production", "DATABASE_URL": "postgres://db/x",
			"REDIS_URL": "redis://r:6379/0", "SESSION_SECRET": strings.Repeat("s", 32), "METRICS_ADDR": "127.0.0.1:9090",
			"MFA_ENCRYPTION_KEY":          strings.Repeat("m", 32),
			"EMAIL_VERIFICATION_REQUIRED": "true"},
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

func TestCookieNameDefaultsToHostPrefixOnlyWhereItHolds(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{nil, "__Host-sessionId"},
		{map[string]string{"COOKIE_SECURE": "false"}, "sessionId"},
		{map[string]string{"COOKIE_DOMAIN": "example.com"}, "sessionId"},
		{map[string]string{"SESSION_COOKIE_NAME": "sid"}, "sid"},
	}
	for _, tc := range cases {
		c, err := Load(getenv(tc.env))
		if err != nil {
			t.Fatalf("%v: %v", tc.env, err)
		}
		if c.Cookie.Name != tc.want {
			t.Errorf("%v: got cookie name %q, want %q", tc.env, c.Cookie.Name, tc.want)
		}
	}
}

func TestRedisSentinelURL(t *testing.T) {
	c, err := Load(getenv(map[string]string{
		"REDIS_URL":               "rediss+sentinel://app:p%40ss@10.0.0.1:26379, sentinel-b ,[::1]:26380/my%20primary/3",
		"REDIS_SENTINEL_PASSWORD": "sentinel-secret", "REDIS_MIN_REPLICAS": "1",
	}))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Redis.Sentinel
	want := RedisSentinel{Addrs: []string{"10.0.0.1:26379", "sentinel-b:26379", "[::1]:26380"}, Master: "my primary",
		SentinelPassword: "sentinel-secret", TLS: true, Username: "app", Password: "p@ss", DB: 3}
	if got == nil || strings.Join(got.Addrs, " ") != strings.Join(want.Addrs, " ") || got.Master != want.Master ||
		got.SentinelPassword != want.SentinelPassword || got.TLS != want.TLS || got.Username != want.Username ||
		got.Password != want.Password || got.DB != want.DB {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if c.Redis.MinReplicas != 1 {
		t.Errorf("got REDIS_MIN_REPLICAS %d, want 1", c.Redis.MinReplicas)
	}
	c, err = Load(getenv(map[string]string{"REDIS_URL": "redis+sentinel://secret@h1:26379/m"}))
	if err != nil {
		t.Fatal(err)
	}
	if s := c.Redis.Sentinel; s.TLS || s.Username != "" || s.Password != "secret" || s.DB != 0 || s.Master != "m" {
		t.Errorf("got %+v, want a plain sentinel URL with the password alone (as redis-cli reads it)", s)
	}
	c, err = Load(getenv(map[string]string{"REDIS_URL": "redis://r:6379/0"}))
	if err != nil || c.Redis.Sentinel != nil || c.Redis.MinReplicas != 0 {
		t.Errorf("got %+v, %v, want one server and no replicas asked", c.Redis, err)
	}
}

func TestRedisTopologyRefusals(t *testing.T) {
	dir := t.TempDir()
	pem := dir + "/ca.pem"
	if err := os.WriteFile(pem, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		env  map[string]string
		want string
	}{
		"no master":           {map[string]string{"REDIS_URL": "redis+sentinel://h1:26379"}, "master name is missing"},
		"empty sentinel":      {map[string]string{"REDIS_URL": "redis+sentinel://h1:26379,,h2/m"}, "empty"},
		"bad port":            {map[string]string{"REDIS_URL": "redis+sentinel://h1:99999/m"}, "not a sentinel address"},
		"bad db":              {map[string]string{"REDIS_URL": "redis+sentinel://h1/m/x"}, "database must be a number"},
		"too deep":            {map[string]string{"REDIS_URL": "redis+sentinel://h1/m/1/2"}, "database must be a number"},
		"query":               {map[string]string{"REDIS_URL": "redis+sentinel://h1/m?db=1"}, "not supported"},
		"sentinel pw alone":   {map[string]string{"REDIS_URL": "redis://r:6379", "REDIS_SENTINEL_PASSWORD": "x"}, "REDIS_SENTINEL_PASSWORD"},
		"negative replicas":   {map[string]string{"REDIS_URL": "redis://r:6379", "REDIS_MIN_REPLICAS": "-1"}, "REDIS_MIN_REPLICAS"},
		"replicas embedded":   {map[string]string{"REDIS_MIN_REPLICAS": "1"}, "REDIS_MIN_REPLICAS needs a REDIS_URL"},
		"tls without rediss":  {map[string]string{"REDIS_URL": "redis://r:6379", "REDIS_TLS_CA_FILE": pem}, "need a rediss://"},
		"tls on sentinel":     {map[string]string{"REDIS_URL": "redis+sentinel://h/m", "REDIS_TLS_CA_FILE": pem}, "need a rediss://"},
		"cert without key":    {map[string]string{"REDIS_URL": "rediss://r:6380", "REDIS_TLS_CERT_FILE": pem}, "go together"},
		"unreadable CA":       {map[string]string{"REDIS_URL": "rediss://r:6380", "REDIS_TLS_CA_FILE": dir + "/none.pem"}, "cannot read"},
		"unreadable key file": {map[string]string{"REDIS_URL": "rediss://r:6380", "REDIS_TLS_CERT_FILE": pem, "REDIS_TLS_KEY_FILE": dir + "/k"}, "REDIS_TLS_KEY_FILE"},
	}
	for name, tc := range cases {
		_, err := Load(getenv(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error about %q", name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("%s: the error repeats a password: %v", name, err)
		}
	}
	if _, err := Load(getenv(map[string]string{"REDIS_URL": "rediss+sentinel://:secret@h/m", "REDIS_TLS_CA_FILE": pem,
		"REDIS_TLS_CERT_FILE": pem, "REDIS_TLS_KEY_FILE": pem})); err != nil {
		t.Errorf("got %v, want TLS files accepted with rediss+sentinel://", err)
	}
	if _, err := Load(getenv(map[string]string{"REDIS_URL": "redis+sentinel://:secret@h1:1,h2:x/m"})); err == nil ||
		strings.Contains(err.Error(), "secret") {
		t.Errorf("got %v, want a refusal that does not repeat the password", err)
	}
}
func TestWarnsThatProductionServesNoMetricsWithoutAnAddress(t *testing.T) {
	prod := map[string]string{"APP_ENV": "production", "DATABASE_URL": "postgres://db/app", "REDIS_URL": "redis://redis:6379/0",
		"SESSION_SECRET": strings.Repeat("s", 32), "MFA_ENCRYPTION_KEY": strings.Repeat("m", 32)}
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
		metricsWarnings := 0
		for _, line := range w {
			if strings.Contains(line, "METRICS_ADDR") {
				metricsWarnings++
			}
		}
		if warned := metricsWarnings == 1; warned != tc.warn || metricsWarnings > 1 {
			t.Errorf("%v: got warnings %q, want a METRICS_ADDR warning: %v", tc.extra, w, tc.warn)
		}
	}
}
