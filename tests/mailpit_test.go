package tests

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"
)

// mailpit is a real SMTP server whose HTTP API shows what arrived: the one
// CI started (TEST_MAIL_URL, TEST_MAILPIT_API), else one this test process
// starts from the binary when it finds it (MAILPIT_BIN, the CI cache, PATH).
type mailpit struct {
	MailURL string // MAIL_URL for the application: smtp://127.0.0.1:<port>?tls=none
	SMTP    string // host:port
	API     string // http://127.0.0.1:<port>
}

var (
	mailpitOnce sync.Once
	mailpitRun  *mailpit
	mailpitCmd  *exec.Cmd
	mailpitDir  string
	mailpitErr  error
)

// needMailpit returns the Mailpit of this test run, or skips the test when
// there is none (CI always has one: it fails a run in which a test skipped).
func needMailpit(t *testing.T) *mailpit {
	t.Helper()
	mailpitOnce.Do(func() { mailpitRun, mailpitErr = findMailpit(t) })
	if mailpitErr != nil {
		t.Fatalf("mailpit: %v", mailpitErr)
	}
	if mailpitRun == nil {
		t.Skip("no Mailpit: set TEST_MAIL_URL and TEST_MAILPIT_API, or MAILPIT_BIN (`.ci/run` builds it into ~/.cache/sessionauth-ci)")
	}
	return mailpitRun
}

func findMailpit(t testing.TB) (*mailpit, error) {
	if mailURL, api := os.Getenv("TEST_MAIL_URL"), os.Getenv("TEST_MAILPIT_API"); mailURL != "" || api != "" {
		u, err := url.Parse(mailURL)
		if err != nil || u.Host == "" || api == "" {
			return nil, fmt.Errorf("TEST_MAIL_URL and TEST_MAILPIT_API must both be set, got %q and %q", mailURL, api)
		}
		return &mailpit{MailURL: mailURL, SMTP: u.Host, API: api}, nil
	}
	bin := mailpitBinary()
	if bin == "" {
		return nil, nil
	}
	smtpPort, httpPort := freePort(t), freePort(t)
	for httpPort == smtpPort {
		httpPort = freePort(t)
	}
	var err error
	if mailpitDir, err = os.MkdirTemp("", "mailpit-"); err != nil {
		return nil, err
	}
	mailpitCmd = exec.Command(bin, "--smtp", "127.0.0.1:"+strconv.Itoa(smtpPort), "--listen", "127.0.0.1:"+strconv.Itoa(httpPort),
		"--database", filepath.Join(mailpitDir, "mailpit.db"), "--disable-version-check", "--quiet", "--max", "10000")
	if err := mailpitCmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	m := &mailpit{MailURL: fmt.Sprintf("smtp://127.0.0.1:%d?tls=none", smtpPort), SMTP: fmt.Sprintf("127.0.0.1:%d", smtpPort),
		API: fmt.Sprintf("http://127.0.0.1:%d", httpPort)}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if resp, err := http.Get(m.API + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return m, nil
			}
		}
	}
	stopMailpit()
	return nil, fmt.Errorf("%s did not answer within 10s", bin)
}

// stopMailpit ends the Mailpit this process started, if any (TestMain).
func stopMailpit() {
	if mailpitCmd != nil && mailpitCmd.Process != nil {
		_ = mailpitCmd.Process.Kill()
		_ = mailpitCmd.Wait()
	}
	if mailpitDir != "" {
		_ = os.RemoveAll(mailpitDir)
	}
}

func mailpitBinary() string {
	candidates := []string{os.Getenv("MAILPIT_BIN")}
	if home, err := os.UserHomeDir(); err == nil {
		candidates = append(candidates, filepath.Join(home, ".cache", "sessionauth-ci", "mailpit-v1.33.1", "mailpit"))
	}
	if path, err := exec.LookPath("mailpit"); err == nil {
		candidates = append(candidates, path)
	}
	for _, c := range candidates {
		if info, err := os.Stat(c); c != "" && err == nil && !info.IsDir() {
			return c
		}
	}
	return ""
}

// mailpitMessage is what Mailpit's API shows of one message.
type mailpitMessage struct {
	ID      string
	From    mailpitAddress
	To      []mailpitAddress
	Subject string
	Text    string
	HTML    string
}

type mailpitAddress struct {
	Name    string
	Address string
}

// waitForMail waits up to timeout for the mails to the address to, which no
// other test uses, and returns them in full, newest first; none if none came.
func (m *mailpit) waitForMail(t *testing.T, to string, want int, timeout time.Duration) []mailpitMessage {
	t.Helper()
	var list struct {
		Messages []struct{ ID string }
	}
	query := m.API + "/api/v1/search?query=" + url.QueryEscape(`to:"`+to+`"`)
	for deadline := time.Now().Add(timeout); ; time.Sleep(50 * time.Millisecond) {
		m.getJSON(t, query, &list)
		if len(list.Messages) >= want || time.Now().After(deadline) {
			break
		}
	}
	out := make([]mailpitMessage, len(list.Messages))
	for i, summary := range list.Messages {
		m.getJSON(t, m.API+"/api/v1/message/"+url.PathEscape(summary.ID), &out[i])
	}
	return out
}

// headers returns the headers of the message with id.
func (m *mailpit) headers(t *testing.T, id string) map[string][]string {
	t.Helper()
	var h map[string][]string
	m.getJSON(t, m.API+"/api/v1/message/"+url.PathEscape(id)+"/headers", &h)
	return h
}

func (m *mailpit) getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("mailpit: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("mailpit GET %s: status %d", u, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("mailpit GET %s: %v", u, err)
	}
}
