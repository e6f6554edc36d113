package services

import (
	"strings"
	"testing"
	"time"
)

const testFrontend = "https://app.example.com:8443"

func TestLinkMailsCarryTheTokenInTheFragment(t *testing.T) {
	tpl := NewMailTemplates(testFrontend+"/", "")
	const token = "Zm9vYmFy-_0123456789abcdefghijklmnopqrstuvwxyzAB"
	cases := []struct {
		name  string
		build func() (*Message, error)
		link  string
		words []string
	}{
		{"reset", func() (*Message, error) { return tpl.PasswordReset("a@example.com", token, 30*time.Minute) },
			testFrontend + "/reset-password#token=" + token, []string{"30 minutes", "ignore this mail"}},
		{"verification", func() (*Message, error) { return tpl.EmailVerification("a@example.com", token, 24*time.Hour) },
			testFrontend + "/verify-email#token=" + token, []string{"24 hours"}},
		{"email change", func() (*Message, error) { return tpl.EmailChange("new@example.com", token, 24*time.Hour) },
			testFrontend + "/verify-email#token=" + token, []string{"24 hours", "new address"}},
	}
	for _, tc := range cases {
		m, err := tc.build()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if m.Link != tc.link {
			t.Errorf("%s: got link %q, want %q", tc.name, m.Link, tc.link)
		}
		if !strings.Contains(m.Text, "\n"+tc.link+"\n") {
			t.Errorf("%s: the text body lacks the link on a line of its own:\n%s", tc.name, m.Text)
		}
		if !strings.Contains(m.HTML, `href="`+tc.link+`"`) {
			t.Errorf("%s: the HTML body lacks the link:\n%s", tc.name, m.HTML)
		}
		for _, w := range tc.words {
			if !strings.Contains(m.Text, w) || !strings.Contains(m.HTML, w) {
				t.Errorf("%s: a body lacks %q", tc.name, w)
			}
		}
		if strings.Contains(m.Link, "?") {
			t.Errorf("%s: got %q, want the token in the fragment, never the query", tc.name, m.Link)
		}
	}
	if _, err := tpl.PasswordReset("a@example.com", "", time.Minute); err == nil {
		t.Error("empty token: got a mail, want an error")
	}
}

func TestTokenIsEscapedInTheLink(t *testing.T) {
	m, err := NewMailTemplates(testFrontend, "").PasswordReset("a@example.com", "a+b/c=&x", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if want := testFrontend + "/reset-password#token=a%2Bb%2Fc%3D%26x"; m.Link != want {
		t.Errorf("got %q, want %q", m.Link, want)
	}
}

func TestNoticesEscapeUserData(t *testing.T) {
	tpl := NewMailTemplates(testFrontend, "Acme")
	const hostile = `<script>alert(1)</script><a href="https://evil.example">x</a>`
	cases := map[string]func() (*Message, error){
		"passkey added":   func() (*Message, error) { return tpl.PasskeyAdded("a@example.com", hostile) },
		"passkey removed": func() (*Message, error) { return tpl.PasskeyRemoved("a@example.com", hostile) },
		"email change":    func() (*Message, error) { return tpl.EmailChangeRequested("a@example.com", hostile) },
	}
	for name, build := range cases {
		m, err := build()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if strings.Contains(m.HTML, "<script") || strings.Contains(m.HTML, `href="https://evil`) {
			t.Errorf("%s: user data reached the HTML unescaped:\n%s", name, m.HTML)
		}
		if !strings.Contains(m.HTML, "&lt;script&gt;") {
			t.Errorf("%s: got HTML without the escaped data:\n%s", name, m.HTML)
		}
		if !strings.Contains(m.Text, hostile) {
			t.Errorf("%s: got text without the data as typed:\n%s", name, m.Text)
		}
		if strings.Contains(m.Subject, "<") || m.Link != "" {
			t.Errorf("%s: got subject %q and link %q, want a fixed subject and no link", name, m.Subject, m.Link)
		}
	}
}

func TestEveryNoticeSaysWhatToDo(t *testing.T) {
	tpl := NewMailTemplates(testFrontend, "Acme")
	builds := map[string]func() (*Message, error){
		"password changed":       func() (*Message, error) { return tpl.PasswordChanged("a@example.com") },
		"password reset":         func() (*Message, error) { return tpl.PasswordWasReset("a@example.com") },
		"email change requested": func() (*Message, error) { return tpl.EmailChangeRequested("a@example.com", "new@example.com") },
		"second factor added":    func() (*Message, error) { return tpl.SecondFactorAdded("a@example.com") },
		"second factor removed":  func() (*Message, error) { return tpl.SecondFactorRemoved("a@example.com") },
		"passkey added":          func() (*Message, error) { return tpl.PasskeyAdded("a@example.com", "Laptop") },
		"passkey removed":        func() (*Message, error) { return tpl.PasskeyRemoved("a@example.com", "Laptop") },
	}
	subjects := map[string]bool{}
	for name, build := range builds {
		m, err := build()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m.To != "a@example.com" || m.Subject == "" || subjects[m.Subject] {
			t.Errorf("%s: got to %q subject %q, want the address and a subject of its own", name, m.To, m.Subject)
		}
		subjects[m.Subject] = true
		for _, body := range []string{m.Text, m.HTML} {
			if !strings.Contains(body, "Forgot password") || !strings.Contains(body, testFrontend) || !strings.Contains(body, "Acme") {
				t.Errorf("%s: a body lacks the way back (Forgot password at %s) or the product name:\n%s", name, testFrontend, body)
			}
		}
	}
	m, _ := tpl.EmailChangeRequested("old@example.com", "new@example.com")
	if !strings.Contains(m.Text, "new@example.com") {
		t.Errorf("got %q, want the notice to name the new address", m.Text)
	}
}

func TestCleanDropsControlAndDirectionCharacters(t *testing.T) {
	cases := map[string]string{
		"Laptop":                 "Laptop",
		"evil\u202Egnp.exe":      "evilgnp.exe",
		"two\r\nlines\x00":       "twolines",
		strings.Repeat("é", 120): strings.Repeat("é", 100) + "…",
	}
	for in, want := range cases {
		if got := clean(in); got != want {
			t.Errorf("clean(%q): got %q, want %q", in, got, want)
		}
	}
}

func TestHumanDuration(t *testing.T) {
	cases := map[time.Duration]string{
		30 * time.Second: "30 seconds", time.Minute: "1 minute", 30 * time.Minute: "30 minutes",
		90 * time.Minute: "90 minutes", time.Hour: "1 hour", 24 * time.Hour: "24 hours", 72 * time.Hour: "3 days",
	}
	for d, want := range cases {
		if got := humanDuration(d); got != want {
			t.Errorf("%v: got %q, want %q", d, got, want)
		}
	}
}
