package config

import (
	"strings"
	"testing"
)

// production is a valid production environment that the mail cases add to.
func production(extra map[string]string) map[string]string {
	env := map[string]string{"APP_ENV": "production", "DATABASE_URL": "postgres://db/x",
		"REDIS_URL": "redis://r:6379/0", "SESSION_SECRET": strings.Repeat("s", 32), "MFA_ENCRYPTION_KEY": strings.Repeat("m", 32),
		"METRICS_ADDR": "127.0.0.1:9090"}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

func TestMailURLForms(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want Mail
	}{
		{"unset in development: the log", nil, Mail{Mode: MailLog, From: DefaultMailFrom}},
		{"unset in production: off", production(nil), Mail{Mode: MailOff, From: DefaultMailFrom}},
		{"smtp: STARTTLS on 587", map[string]string{"MAIL_URL": "smtp://mail.internal"},
			Mail{Mode: MailSMTP, Host: "mail.internal", Port: 587, TLS: MailStartTLS, From: DefaultMailFrom}},
		{"smtp with user, escaped password and port", map[string]string{"MAIL_URL": "smtp://ops%40example.com:p%40ss%2Fw:rd@mail.internal:2525", "MAIL_FROM": "Accounts <accounts@example.com>"},
			Mail{Mode: MailSMTP, Host: "mail.internal", Port: 2525, TLS: MailStartTLS, Username: "ops@example.com", Password: "p@ss/w:rd", From: "Accounts <accounts@example.com>"}},
		{"smtps: implicit TLS on 465", map[string]string{"MAIL_URL": "smtps://u:p@smtp.example.com/"},
			Mail{Mode: MailSMTP, Host: "smtp.example.com", Port: 465, TLS: MailImplicit, Username: "u", Password: "p", From: DefaultMailFrom}},
		{"loopback sink without TLS", map[string]string{"MAIL_URL": "smtp://127.0.0.1:1025?tls=none"},
			Mail{Mode: MailSMTP, Host: "127.0.0.1", Port: 1025, TLS: MailNoTLS, From: DefaultMailFrom}},
		{"IPv6 loopback sink", map[string]string{"MAIL_URL": "smtp://[::1]:1025?tls=none"},
			Mail{Mode: MailSMTP, Host: "::1", Port: 1025, TLS: MailNoTLS, From: DefaultMailFrom}},
		{"localhost sink", map[string]string{"MAIL_URL": "smtp://localhost:1025?tls=none"},
			Mail{Mode: MailSMTP, Host: "localhost", Port: 1025, TLS: MailNoTLS, From: DefaultMailFrom}},
		{"production with STARTTLS", production(map[string]string{"MAIL_URL": "smtp://u:p@mail.internal:587", "FRONTEND_URL": "https://app.example.com", "MAIL_FROM": "no-reply@example.com"}),
			Mail{Mode: MailSMTP, Host: "mail.internal", Port: 587, TLS: MailStartTLS, Username: "u", Password: "p", From: "no-reply@example.com"}},
	}
	for _, tc := range cases {
		c, err := Load(getenv(tc.env))
		if err != nil {
			t.Errorf("%s: got %v", tc.name, err)
			continue
		}
		if c.Mail != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.name, c.Mail, tc.want)
		}
		if c.Mail.Enabled() != (tc.want.Mode != MailOff) {
			t.Errorf("%s: got Enabled() %v in mode %s", tc.name, c.Mail.Enabled(), c.Mail.Mode)
		}
	}
}

func TestMailURLRefusals(t *testing.T) {
	const secret = "hunter2-mail-password"
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"other scheme", map[string]string{"MAIL_URL": "http://mail.internal:25"}, "MAIL_URL must look like"},
		{"no host", map[string]string{"MAIL_URL": "smtp://:25"}, "MAIL_URL must look like"},
		{"no scheme", map[string]string{"MAIL_URL": "mail.internal:25"}, "MAIL_URL must look like"},
		{"a path", map[string]string{"MAIL_URL": "smtp://mail.internal:25/inbox"}, "MAIL_URL must look like"},
		{"bad port", map[string]string{"MAIL_URL": "smtp://mail.internal:99999"}, "port"},
		{"password without user", map[string]string{"MAIL_URL": "smtp://:" + secret + "@mail.internal:587"}, "user name"},
		{"cleartext to another host", map[string]string{"MAIL_URL": "smtp://u:" + secret + "@mail.internal:25?tls=none"}, "loopback"},
		{"cleartext to a private address", map[string]string{"MAIL_URL": "smtp://10.0.0.5:25?tls=none"}, "loopback"},
		{"cleartext to a name that merely starts like localhost", map[string]string{"MAIL_URL": "smtp://localhost.example.com:25?tls=none"}, "loopback"},
		{"cleartext with smtps", map[string]string{"MAIL_URL": "smtps://127.0.0.1:1025?tls=none"}, "smtps"},
		{"cleartext in production", production(map[string]string{"MAIL_URL": "smtp://127.0.0.1:1025?tls=none", "FRONTEND_URL": "https://app.example.com"}), "production"},
		{"opportunistic TLS", map[string]string{"MAIL_URL": "smtp://mail.internal:25?tls=maybe"}, "tls may only be none"},
		{"unknown parameter", map[string]string{"MAIL_URL": "smtp://mail.internal:25?insecure=1"}, "only query parameter"},
		{"MAIL_FROM not an address", map[string]string{"MAIL_FROM": "nobody"}, "MAIL_FROM"},
		{"MAIL_FROM with a header injection", map[string]string{"MAIL_FROM": "a@example.com\r\nBcc: b@example.com"}, "MAIL_FROM"},
		{"FRONTEND_URL with a path", map[string]string{"FRONTEND_URL": "https://app.example.com/app"}, "FRONTEND_URL"},
		{"FRONTEND_URL not http", map[string]string{"FRONTEND_URL": "javascript:alert(1)"}, "FRONTEND_URL"},
		{"FRONTEND_URL with a fragment", map[string]string{"FRONTEND_URL": "https://app.example.com#x"}, "FRONTEND_URL"},
		{"FRONTEND_URL with credentials", map[string]string{"FRONTEND_URL": "https://u:p@app.example.com"}, "FRONTEND_URL"},
		{"production MAIL_URL without FRONTEND_URL", production(map[string]string{"MAIL_URL": "smtp://mail.internal:587"}), "FRONTEND_URL is required"},
	}
	for _, tc := range cases {
		_, err := Load(getenv(tc.env))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error about %q", tc.name, err, tc.want)
			continue
		}
		if strings.Contains(err.Error(), secret) {
			t.Errorf("%s: the error quotes the mail password: %v", tc.name, err)
		}
	}
}

func TestFrontendURL(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"development default", nil, "http://localhost:5173"},
		{"trailing slash dropped", map[string]string{"FRONTEND_URL": "https://app.example.com/"}, "https://app.example.com"},
		{"production without mail: unset", production(nil), ""},
		{"production with mail", production(map[string]string{"MAIL_URL": "smtps://mail.internal", "FRONTEND_URL": "https://app.example.com:8443"}), "https://app.example.com:8443"},
	}
	for _, tc := range cases {
		c, err := Load(getenv(tc.env))
		if err != nil {
			t.Errorf("%s: got %v", tc.name, err)
			continue
		}
		if c.FrontendURL != tc.want {
			t.Errorf("%s: got %q, want %q", tc.name, c.FrontendURL, tc.want)
		}
	}
}

func TestMailWarnings(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"development without MAIL_URL logs mails: no warning", nil, nil},
		{"production without MAIL_URL", production(nil), []string{"MAIL_URL unset"}},
		{"production with the default sender and http links", production(map[string]string{"MAIL_URL": "smtp://mail.internal", "FRONTEND_URL": "http://app.example.com"}),
			[]string{"MAIL_FROM", "FRONTEND_URL is not https"}},
		{"production set up well", production(map[string]string{"MAIL_URL": "smtp://mail.internal", "FRONTEND_URL": "https://app.example.com", "MAIL_FROM": "a@example.com"}), nil},
	}
	for _, tc := range cases {
		c, err := Load(getenv(tc.env))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := c.mailWarnings() // the other warnings have tests of their own
		if len(got) != len(tc.want) {
			t.Errorf("%s: got warnings %q, want %d", tc.name, got, len(tc.want))
			continue
		}
		for i, want := range tc.want {
			if !strings.Contains(got[i], want) {
				t.Errorf("%s: got %q, want it to mention %q", tc.name, got[i], want)
			}
		}
	}
}
