package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"log/slog"

	"github.com/sessionauth/api/config"
	"github.com/sessionauth/api/services"
)

// openMail builds the mail templates and, unless mail is off (production
// without MAIL_URL), the mailer and its workers: SMTP, or in development
// without MAIL_URL the log. The workers run on ctx until Close drains them.
func (a *App) openMail(ctx context.Context, cfg config.Config, log *slog.Logger, counter services.MailCounter, secret []byte) error {
	a.MailTemplates = services.NewMailTemplates(cfg.FrontendURL, cfg.MFA.Issuer)
	var sender services.MailSender
	switch cfg.Mail.Mode {
	case config.MailSMTP:
		smtp, err := services.NewSMTPSender(services.SMTPOptions{
			Host: cfg.Mail.Host, Port: cfg.Mail.Port, TLS: services.SMTPTLS(cfg.Mail.TLS),
			Username: cfg.Mail.Username, Password: cfg.Mail.Password, From: cfg.Mail.From,
		})
		if err != nil {
			return err
		}
		sender = smtp
		log.Info("mail through SMTP", "host", cfg.Mail.Host, "port", cfg.Mail.Port, "tls", string(cfg.Mail.TLS))
	case config.MailLog:
		sender = services.NewLogSender(log)
		log.Warn("MAIL_URL unset: each mail is written to the log with its link, not sent (development only)")
	default:
		return nil // the warning is config's; the mail routes answer 404
	}
	a.Mailer = services.NewMailer(services.MailerOptions{Sender: sender, Log: log, Counter: counter,
		RecipientKey: recipientKey(secret)})
	a.Mailer.Start(ctx)
	return nil
}

// DrainMail stops taking mail and sends what is queued until ctx ends; what
// is left then is dropped, logged and counted. main calls it with what is
// left of SHUTDOWN_TIMEOUT after the HTTP server's shutdown (so requests in
// flight could still queue mail); Close calls it too. Safe to call again.
func (a *App) DrainMail(ctx context.Context) { a.Mailer.Close(ctx) }

// recipientKey keys the hash that names mail recipients in logs, derived from
// the session secret so that every instance of a deployment names a
// recipient alike.
func recipientKey(secret []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte("mail recipient in logs"))
	return h.Sum(nil)
}
