package config

import (
	"slices"
	"strings"
	"testing"
)

func TestWebAuthnDefaultsAndSettings(t *testing.T) {
	cases := []struct {
		name        string
		env         map[string]string
		wantID      string
		wantOrigins []string
		wantName    string
	}{
		{"development: the dev server on localhost", nil, "localhost", []string{"http://localhost:5173"}, "Session Auth"},
		{"FRONTEND_URL and CORS origins, without duplicates",
			map[string]string{"FRONTEND_URL": "https://example.com", "CORS_ALLOWED_ORIGINS": "https://admin.example.com,https://example.com",
				"MFA_ISSUER": "Acme"},
			"example.com", []string{"https://example.com", "https://admin.example.com"}, "Acme"},
		{"a CORS origin browsers would refuse is left out",
			map[string]string{"FRONTEND_URL": "https://app.example.com", "CORS_ALLOWED_ORIGINS": "https://admin.example.com"},
			"app.example.com", []string{"https://app.example.com"}, "Session Auth"},
		{"a parent domain as RP ID serves both",
			map[string]string{"FRONTEND_URL": "https://app.example.com", "CORS_ALLOWED_ORIGINS": "https://admin.example.com", "WEBAUTHN_RP_ID": "example.com"},
			"example.com", []string{"https://app.example.com", "https://admin.example.com"}, "Session Auth"},
		{"production with only CORS origins elsewhere: off, not refused",
			production(map[string]string{"CORS_ALLOWED_ORIGINS": "https://app.example.com"}), "localhost", nil, "Session Auth"},
		{"explicit settings win",
			map[string]string{"FRONTEND_URL": "https://app.example.com", "WEBAUTHN_RP_ID": "Example.COM",
				"WEBAUTHN_RP_ORIGINS": "https://login.example.com", "WEBAUTHN_RP_NAME": "Example"},
			"example.com", []string{"https://login.example.com"}, "Example"},
		{"production without any origin: off", production(nil), "localhost", nil, "Session Auth"},
		{"development on an IP: off rather than broken", map[string]string{"FRONTEND_URL": "http://127.0.0.1:5173"}, "127.0.0.1", nil, "Session Auth"},
	}
	for _, tc := range cases {
		c, err := Load(getenv(tc.env))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		w := c.WebAuthn
		if w.RPID != tc.wantID || !slices.Equal(w.Origins, tc.wantOrigins) || w.RPName != tc.wantName {
			t.Errorf("%s: got %q %q %q, want %q %q %q", tc.name, w.RPID, w.Origins, w.RPName, tc.wantID, tc.wantOrigins, tc.wantName)
		}
		if w.Enabled() != (len(tc.wantOrigins) > 0) {
			t.Errorf("%s: got enabled %v", tc.name, w.Enabled())
		}
	}
}

func TestWebAuthnRefusals(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want string // in the error; "" for none
	}{
		{"production: localhost", production(map[string]string{"CORS_ALLOWED_ORIGINS": "http://localhost:5173"}), `"localhost" in production`},
		{"production: an IP", production(map[string]string{"FRONTEND_URL": "https://192.0.2.10"}), "IP address"},
		{"production: an RP ID without any origin", production(map[string]string{"WEBAUTHN_RP_ID": "example.com"}), "no origin"},
		{"production: an origin set outside the RP ID", production(map[string]string{"FRONTEND_URL": "https://app.example.com",
			"WEBAUTHN_RP_ORIGINS": "https://app.example.com,https://evil.example.net"}), "evil.example.net is not on app.example.com"},
		{"production: an RP ID no origin is on", production(map[string]string{"CORS_ALLOWED_ORIGINS": "https://app.example.com",
			"WEBAUTHN_RP_ID": "example.org"}), "no origin"},
		{"production: a parent domain as RP ID", production(map[string]string{"FRONTEND_URL": "https://app.example.com",
			"CORS_ALLOWED_ORIGINS": "https://admin.example.com", "WEBAUTHN_RP_ID": "example.com"}), ""},
		{"an explicit IP anywhere", map[string]string{"WEBAUTHN_RP_ID": "::1"}, "IP address"},
		{"not a domain", map[string]string{"WEBAUTHN_RP_ID": "https://example.com"}, "must be a domain"},
		{"a port", map[string]string{"WEBAUTHN_RP_ID": "example.com:443"}, "must be a domain"},
		{"an origin with a path", map[string]string{"WEBAUTHN_RP_ORIGINS": "https://example.com/app"}, "is not an origin"},
	}
	for _, tc := range cases {
		_, err := Load(getenv(tc.env))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: got %v, want no error", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want an error about %q", tc.name, err, tc.want)
		}
	}
}

func TestWebAuthnWarnings(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want string // "" for none
	}{
		{"development defaults", nil, ""},
		{"production without any origin", production(nil), "passkeys are off"},
		{"development on an IP", map[string]string{"FRONTEND_URL": "http://127.0.0.1:5173"}, "IP address"},
		{"development with a CORS origin browsers would refuse", map[string]string{"CORS_ALLOWED_ORIGINS": "https://app.example.com"},
			"not offered on https://app.example.com"},
		{"development with an origin set that browsers would refuse", map[string]string{"WEBAUTHN_RP_ORIGINS": "https://app.example.com"},
			"https://app.example.com is not on localhost"},
	}
	for _, tc := range cases {
		c, err := Load(getenv(tc.env))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		got := c.webauthnWarnings()
		if tc.want == "" && len(got) > 0 || tc.want != "" && (len(got) != 1 || !strings.Contains(got[0], tc.want)) {
			t.Errorf("%s: got %q, want %q", tc.name, got, tc.want)
		}
	}
}
