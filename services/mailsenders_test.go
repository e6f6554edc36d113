package services

import (
	"bufio"
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// fakeSMTP serves a scripted SMTP dialogue on loopback that answers RCPT TO
// with rcptReply; it returns the port.
func fakeSMTP(t *testing.T, rcptReply string) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go smtpDialogue(conn, rcptReply)
		}
	}()
	return ln.Addr().(*net.TCPAddr).Port
}

func smtpDialogue(conn net.Conn, rcptReply string) {
	defer conn.Close()
	r := bufio.NewReader(conn)
	reply := func(s string) { _, _ = conn.Write([]byte(s + "\r\n")) }
	reply("220 fake ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		switch cmd := strings.ToUpper(strings.Fields(line + " x")[0]); cmd {
		case "EHLO", "HELO":
			reply("250 fake")
		case "RCPT":
			reply(rcptReply)
		case "DATA":
			reply("354 go on")
			for l, err := r.ReadString('\n'); err == nil && l != ".\r\n"; l, err = r.ReadString('\n') {
			}
			reply("250 queued")
		case "QUIT":
			reply("221 bye")
			return
		default:
			reply("250 ok")
		}
	}
}

func testSMTPSender(t *testing.T, port int, timeout time.Duration) *SMTPSender {
	t.Helper()
	s, err := NewSMTPSender(SMTPOptions{Host: "127.0.0.1", Port: port, TLS: SMTPNoTLS, From: "no-reply@example.com", Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSMTPSenderTellsPermanentFromTemporaryRefusals(t *testing.T) {
	msg := &Message{To: "a@example.com", Subject: "s", Text: "t", HTML: "<p>t</p>"}
	cases := []struct {
		reply     string
		permanent bool
	}{
		{"250 ok", false},
		{"550 5.1.1 <a@example.com>: no such user", true},
		{"452 4.2.2 mailbox full", false},
	}
	for _, tc := range cases {
		err := testSMTPSender(t, fakeSMTP(t, tc.reply), time.Second).Send(t.Context(), msg)
		if tc.reply[0] == '2' {
			if err != nil {
				t.Errorf("%s: got %v, want sent", tc.reply, err)
			}
			continue
		}
		if err == nil || errors.As(err, new(permanentError)) != tc.permanent {
			t.Errorf("%s: got %v (permanent %v), want permanent %v", tc.reply, err, errors.As(err, new(permanentError)), tc.permanent)
		}
	}
}

// blackHole accepts connections and never says a word, like a mail server
// that hangs; it returns the port.
func blackHole(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, conn)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().(*net.TCPAddr).Port
}

// closedPort returns a loopback port that nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	return port
}

func TestSMTPSenderIsBoundedByItsTimeoutAndItsContext(t *testing.T) {
	msg := &Message{To: "a@example.com", Subject: "s", Text: "t"}
	hole := blackHole(t)
	cases := []struct {
		name    string
		port    int
		timeout time.Duration
		ctx     time.Duration // 0: no deadline
	}{
		{"silent server, own timeout", hole, 300 * time.Millisecond, 0},
		{"silent server, context deadline first", hole, time.Hour, 300 * time.Millisecond},
		{"nothing listening", closedPort(t), time.Hour, 0},
	}
	for _, tc := range cases {
		ctx := t.Context()
		if tc.ctx > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, tc.ctx)
			defer cancel()
		}
		start := time.Now()
		err := testSMTPSender(t, tc.port, tc.timeout).Send(ctx, msg)
		if took := time.Since(start); err == nil || took > 2*time.Second {
			t.Errorf("%s: got %v after %v, want an error within about 300ms", tc.name, err, took)
		}
	}
}

func TestEnqueueIsInstantWhenTheMailServerIsDead(t *testing.T) {
	for name, port := range map[string]int{"silent": blackHole(t), "closed": closedPort(t)} {
		sender := testSMTPSender(t, port, 200*time.Millisecond)
		m, _, _ := newTestMailer(t, sender, MailerOptions{QueueSize: 16})
		start := time.Now()
		for range 16 {
			if !m.Enqueue(MailPasswordReset, message("a@example.com")) {
				t.Errorf("%s: got a job dropped, want 16 queued", name)
			}
		}
		if took := time.Since(start); took > 50*time.Millisecond {
			t.Errorf("%s: 16 Enqueue calls took %v, want well under 50ms", name, took)
		}
		if took := closeWithin(t, m, 300*time.Millisecond); took > 2*time.Second {
			t.Errorf("%s: Close took %v, want about its 300ms deadline", name, took)
		}
	}
}

func TestLogSenderWritesOneLine(t *testing.T) {
	var logs lockedBuffer
	s := NewLogSender(slog.New(slog.NewJSONHandler(&logs, nil)))
	err := s.Send(t.Context(), &Message{To: "dev@example.com", Subject: "Reset your password", Text: "body text",
		Link: "http://localhost:5173/reset-password#token=abc"})
	if err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("got %q, want one line", out)
	}
	for _, want := range []string{`"to":"dev@example.com"`, `"subject":"Reset your password"`, `"link":"http://localhost:5173/reset-password#token=abc"`} {
		if !strings.Contains(out, want) {
			t.Errorf("got %s, want %s", out, want)
		}
	}
	if strings.Contains(out, "body text") {
		t.Errorf("got %s, want the line without the body", out)
	}
}

func TestNewSMTPSenderRefusesBadOptions(t *testing.T) {
	for name, opts := range map[string]SMTPOptions{
		"no TLS mode": {Host: "mail.example.com", Port: 587, From: "a@example.com"},
		"bad port":    {Host: "mail.example.com", Port: 0, TLS: SMTPStartTLS, From: "a@example.com"},
		"bad sender":  {Host: "mail.example.com", Port: 587, TLS: SMTPStartTLS, From: "nobody"},
	} {
		if _, err := NewSMTPSender(opts); err == nil {
			t.Errorf("%s: got a sender, want an error", name)
		}
	}
}
