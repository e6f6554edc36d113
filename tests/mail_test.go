package tests

import (
	"context"
	"net"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sessionauth/api/services"
)

// The mail endpoints (forgot, verification, email change, notices) come
// later; these tests drive the mail machinery they will use through the
// application that api.New builds: App.Mailer and App.MailTemplates.

const testFrontendURL = "http://spa.example:5173"

// mailMetrics scrapes the application's metrics without going through HTTP,
// so it also works after Close.
func (s *testServer) mailMetrics(t *testing.T) metricSet {
	t.Helper()
	rec := httptest.NewRecorder()
	s.App.Metrics.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return parseMetrics(t, rec.Body.String())
}

func TestMailArrivesThroughSMTPWithBothBodiesAndTheLink(t *testing.T) {
	t.Parallel()
	mp := needMailpit(t)
	s := newServer(t, env{"MAIL_URL": mp.MailURL, "MAIL_FROM": "Accounts <accounts@example.com>", "FRONTEND_URL": testFrontendURL})
	to, token := uniqueEmail("reset"), randomHex(32)
	if !s.App.Mailer.Enqueue(services.MailPasswordReset, func(ctx context.Context) (*services.Message, error) {
		return s.App.MailTemplates.PasswordReset(to, token, 30*time.Minute)
	}) {
		t.Fatal("got the job dropped, want it queued")
	}
	mails := mp.waitForMail(t, to, 1, 10*time.Second)
	if len(mails) != 1 {
		t.Fatalf("got %d mails to %s in Mailpit, want 1", len(mails), to)
	}
	got := mails[0]
	if got.From.Address != "accounts@example.com" || got.From.Name != "Accounts" || got.Subject != "Reset your password" ||
		len(got.To) != 1 || got.To[0].Address != to {
		t.Errorf("got from %+v, to %+v, subject %q", got.From, got.To, got.Subject)
	}
	// The link as a person would take it from the plain-text mail.
	link := regexp.MustCompile(`http\S+`).FindString(got.Text)
	if want := testFrontendURL + "/reset-password#token=" + token; link != want {
		t.Errorf("got link %q in the text body, want %q:\n%s", link, want, got.Text)
	}
	if !strings.Contains(got.HTML, `href="`+link+`"`) {
		t.Errorf("the HTML body lacks the link:\n%s", got.HTML)
	}
	if h := mp.headers(t, got.ID); len(h["Auto-Submitted"]) != 1 || h["Auto-Submitted"][0] != "auto-generated" {
		t.Errorf("got Auto-Submitted %q, want auto-generated (no out-of-office replies)", h["Auto-Submitted"])
	}
	if n := s.mailMetrics(t).value("sessionauth_mail_sent_total"); n != 1 {
		t.Errorf("got sessionauth_mail_sent_total %v, want 1", n)
	}
	logs := s.Logs.String()
	if strings.Contains(logs, token) || strings.Contains(logs, to) {
		t.Errorf("the log holds the token or the address in clear:\n%s", logs)
	}
	if !strings.Contains(logs, `"msg":"mail sent","kind":"password_reset","to":"`) {
		t.Errorf("got logs without the sent line naming the recipient by hash:\n%s", logs)
	}
}

func TestMailEscapesUserDataInTheHTMLBody(t *testing.T) {
	t.Parallel()
	mp := needMailpit(t)
	s := newServer(t, env{"MAIL_URL": mp.MailURL, "FRONTEND_URL": testFrontendURL})
	to := uniqueEmail("passkey")
	const name = `<img src=x onerror=alert(1)>Laptop`
	s.App.Mailer.Enqueue(services.MailNoticePasskeyAdded, func(ctx context.Context) (*services.Message, error) {
		return s.App.MailTemplates.PasskeyAdded(to, name)
	})
	mails := mp.waitForMail(t, to, 1, 10*time.Second)
	if len(mails) != 1 {
		t.Fatalf("got %d mails, want 1", len(mails))
	}
	if strings.Contains(mails[0].HTML, "<img") || !strings.Contains(mails[0].HTML, "&lt;img src=x onerror=alert(1)&gt;Laptop") {
		t.Errorf("got HTML with the name unescaped or missing:\n%s", mails[0].HTML)
	}
	if !strings.Contains(mails[0].Text, name) || !strings.Contains(mails[0].Text, testFrontendURL) {
		t.Errorf("got text without the name as typed or the way back:\n%s", mails[0].Text)
	}
}

func TestMailIsNeverSentInClearWhenSTARTTLSIsRequired(t *testing.T) {
	t.Parallel()
	mp := needMailpit(t)
	// smtp:// without tls=none requires STARTTLS, which Mailpit does not offer.
	s := newServer(t, env{"MAIL_URL": "smtp://" + mp.SMTP, "SHUTDOWN_TIMEOUT": "1s"})
	to := uniqueEmail("cleartext")
	s.App.Mailer.Enqueue(services.MailPasswordReset, func(ctx context.Context) (*services.Message, error) {
		return s.App.MailTemplates.PasswordReset(to, randomHex(32), time.Hour)
	})
	for deadline := time.Now().Add(10 * time.Second); !regexp.MustCompile(`"mail attempt failed; will retry".*STARTTLS`).MatchString(s.Logs.String()); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("got no failed attempt naming STARTTLS in the log:\n%s", s.Logs)
		}
	}
	if mails := mp.waitForMail(t, to, 1, 300*time.Millisecond); len(mails) != 0 {
		t.Fatalf("got %d mails delivered without TLS, want none", len(mails))
	}
	s.App.Close()
	if n := s.mailMetrics(t).value("sessionauth_mail_dropped_total", "reason", "shutdown"); n != 1 {
		t.Errorf("got %v mails dropped at shutdown, want the one still retrying", n)
	}
}

// deadMailServers are a port where a listener accepts and never answers
// and a port where nothing listens.
func deadMailServers(t *testing.T) map[string]int {
	t.Helper()
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 16)
	go func() {
		for {
			conn, err := silent.Accept()
			if err != nil {
				return
			}
			accepted <- conn
		}
	}()
	t.Cleanup(func() {
		_ = silent.Close()
		for len(accepted) > 0 {
			_ = (<-accepted).Close()
		}
	})
	return map[string]int{"silent": silent.Addr().(*net.TCPAddr).Port, "nothing listening": freePort(t)}
}

func TestDeadMailServerSlowsNeitherEnqueueNorShutdown(t *testing.T) {
	t.Parallel()
	for name, port := range deadMailServers(t) {
		t.Run(name, func(t *testing.T) {
			s := newServer(t, env{"MAIL_URL": "smtp://127.0.0.1:" + strconv.Itoa(port) + "?tls=none", "SHUTDOWN_TIMEOUT": "1s"})
			start := time.Now()
			for range 50 {
				if !s.App.Mailer.Enqueue(services.MailPasswordReset, func(ctx context.Context) (*services.Message, error) {
					return s.App.MailTemplates.PasswordReset(uniqueEmail("dead"), randomHex(32), time.Hour)
				}) {
					t.Fatal("got a job dropped, want 50 queued")
				}
			}
			if took := time.Since(start); took > 100*time.Millisecond {
				t.Errorf("50 Enqueue calls took %v against a dead mail server, want well under 100ms", took)
			}
			s.newClient(t).do("GET", "/healthz", nil).want(t, 200)
			start = time.Now()
			s.App.Close()
			if took := time.Since(start); took > 3*time.Second {
				t.Errorf("Close took %v, want about SHUTDOWN_TIMEOUT (1s)", took)
			}
			if n := s.mailMetrics(t).value("sessionauth_mail_dropped_total", "reason", "shutdown"); n != 50 {
				t.Errorf("got %v mails dropped at shutdown, want all 50 logged and counted", n)
			}
		})
	}
}

func TestDevelopmentWritesEachMailToTheLog(t *testing.T) {
	t.Parallel()
	s := newServer(t, env{}) // no MAIL_URL, development
	if !s.Config.Mail.Enabled() || s.Config.FrontendURL != "http://localhost:5173" {
		t.Fatalf("got mail enabled %v and FRONTEND_URL %q, want the log and the dev SPA", s.Config.Mail.Enabled(), s.Config.FrontendURL)
	}
	to, token := uniqueEmail("dev"), randomHex(32)
	s.App.Mailer.Enqueue(services.MailPasswordReset, func(ctx context.Context) (*services.Message, error) {
		return s.App.MailTemplates.PasswordReset(to, token, 30*time.Minute)
	})
	link := "http://localhost:5173/reset-password#token=" + token
	var lines []string
	for deadline := time.Now().Add(5 * time.Second); len(lines) == 0 && time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		lines = nil
		for _, line := range strings.Split(s.Logs.String(), "\n") {
			if strings.Contains(line, token) {
				lines = append(lines, line)
			}
		}
	}
	if len(lines) != 1 {
		t.Fatalf("got %d log lines with the token, want 1:\n%s", len(lines), s.Logs)
	}
	for _, want := range []string{`"to":"` + to + `"`, `"subject":"Reset your password"`, `"link":"` + link + `"`} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("got %s, want %s", lines[0], want)
		}
	}
}

func TestProductionWithoutMailURLSendsNothingAndWarns(t *testing.T) {
	t.Parallel()
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Skip("production needs DATABASE_URL: runs against the real services (TEST_DATABASE_URL)")
	}
	s := newServer(t, env{"APP_ENV": "production", "COOKIE_SECURE": "true"})
	if s.Config.Mail.Enabled() || s.App.Mailer != nil {
		t.Fatalf("got mail enabled %v and a mailer %v, want mail off", s.Config.Mail.Enabled(), s.App.Mailer)
	}
	if !strings.Contains(s.Logs.String(), "MAIL_URL unset") {
		t.Errorf("got no warning about MAIL_URL at start:\n%s", s.Logs)
	}
	if s.App.Mailer.Enqueue(services.MailPasswordReset, func(context.Context) (*services.Message, error) {
		t.Error("a job ran with mail off")
		return nil, nil
	}) {
		t.Error("got a job queued with mail off")
	}
}
