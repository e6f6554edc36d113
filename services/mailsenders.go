package services

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/wneessen/go-mail"
)

// SMTPTLS is how an SMTP connection is protected.
type SMTPTLS string

// The SMTP TLS modes: STARTTLS required (never a fallback to cleartext),
// implicit TLS, or none (a loopback test server; config allows nothing else).
const (
	SMTPStartTLS    SMTPTLS = "starttls"
	SMTPImplicitTLS SMTPTLS = "implicit"
	SMTPNoTLS       SMTPTLS = "none"
)

// SMTPOptions are the mail server and the sender of an SMTPSender.
type SMTPOptions struct {
	Host     string
	Port     int
	TLS      SMTPTLS
	Username string // with Password: SMTP AUTH, the strongest mechanism both sides know
	Password string
	From     string
	// Timeout bounds one send: the dial and each command (default 10s).
	Timeout time.Duration
}

// SMTPSender sends each message over a new SMTP connection.
type SMTPSender struct {
	opts SMTPOptions
}

// NewSMTPSender returns the sender for opts; it fails on options the mail
// library refuses, and does not connect.
func NewSMTPSender(opts SMTPOptions) (*SMTPSender, error) {
	opts.Timeout = cmpOr(opts.Timeout, 10*time.Second)
	s := &SMTPSender{opts: opts}
	if _, err := s.client(opts.Timeout); err != nil {
		return nil, fmt.Errorf("mail: %w", err)
	}
	if err := mail.NewMsg().From(opts.From); err != nil {
		return nil, fmt.Errorf("mail: MAIL_FROM: %w", err)
	}
	return s, nil
}

func (s *SMTPSender) client(timeout time.Duration) (*mail.Client, error) {
	opts := []mail.Option{mail.WithPort(s.opts.Port), mail.WithTimeout(timeout),
		mail.WithTLSConfig(&tls.Config{ServerName: s.opts.Host, MinVersion: tls.VersionTLS12})}
	switch s.opts.TLS {
	case SMTPStartTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.TLSMandatory))
	case SMTPImplicitTLS:
		opts = append(opts, mail.WithSSL())
	case SMTPNoTLS:
		opts = append(opts, mail.WithTLSPolicy(mail.NoTLS))
	default:
		return nil, fmt.Errorf("unknown TLS mode %q", s.opts.TLS)
	}
	if s.opts.Username != "" {
		// Auto-discovery never picks PLAIN or LOGIN over a cleartext connection.
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(s.opts.Username), mail.WithPassword(s.opts.Password))
	}
	return mail.NewClient(s.opts.Host, opts...)
}

// Send delivers m within ctx: it returns when ctx ends even if the server
// has not answered (the abandoned connection ends by its own timeout). A
// message the server refuses for good (5xx) fails with a Permanent error.
func (s *SMTPSender) Send(ctx context.Context, m *Message) error {
	timeout := s.opts.Timeout
	if deadline, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(deadline))
	}
	if timeout <= 0 {
		return context.DeadlineExceeded
	}
	client, err := s.client(timeout)
	if err != nil {
		return err
	}
	msg, err := s.message(m)
	if err != nil {
		return Permanent(err)
	}
	done := make(chan error, 1)
	go func() { done <- client.DialAndSendWithContext(ctx, msg) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	var sendErr *mail.SendError
	if errors.As(err, &sendErr) && sendErr.ErrorCode() >= 500 {
		return Permanent(err)
	}
	return err
}

func (s *SMTPSender) message(m *Message) (*mail.Msg, error) {
	msg := mail.NewMsg()
	if err := msg.From(s.opts.From); err != nil {
		return nil, err
	}
	if err := msg.To(m.To); err != nil {
		return nil, err
	}
	msg.Subject(m.Subject)
	// Tells auto-responders (out of office) not to answer.
	msg.SetGenHeader(mail.Header("Auto-Submitted"), "auto-generated")
	msg.SetBodyString(mail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(mail.TypeTextHTML, m.HTML)
	}
	return msg, nil
}

// LogSender is the development sender (MAIL_URL unset): each mail is one log
// line with its recipient in clear, subject and link, so a developer can
// follow a reset link from the terminal. Production never uses it.
type LogSender struct {
	log *slog.Logger
}

// NewLogSender returns the development sender writing to log.
func NewLogSender(log *slog.Logger) *LogSender { return &LogSender{log: log} }

// Send writes m's recipient, subject and link to the log; it never fails.
func (s *LogSender) Send(ctx context.Context, m *Message) error {
	s.log.InfoContext(ctx, "mail (development: logged, not sent)", "to", m.To, "subject", m.Subject, "link", m.Link)
	return nil
}

// permanentError marks a failure that another attempt cannot fix (the
// server refused the message or the recipient for good).
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

// Permanent marks err as not worth retrying.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}
