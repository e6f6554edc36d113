package config

import (
	"net"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
)

// MailMode is how mail leaves the server.
type MailMode string

// The mail modes: SMTP when MAIL_URL is set; in development without it each
// mail is one log line; in production without it the mail routes answer 404.
const (
	MailSMTP MailMode = "smtp"
	MailLog  MailMode = "log"
	MailOff  MailMode = "off"
)

// MailTLS is how the SMTP connection is protected (services.SMTPTLS).
type MailTLS string

// The TLS modes: STARTTLS required (smtp://), implicit TLS (smtps://), or
// none, allowed only for a loopback test sink (smtp://127.0.0.1:1025?tls=none).
const (
	MailStartTLS MailTLS = "starttls"
	MailImplicit MailTLS = "implicit"
	MailNoTLS    MailTLS = "none"
)

// DefaultMailFrom is MAIL_FROM when unset.
const DefaultMailFrom = "no-reply@localhost"

// Mail is outgoing mail: the mode and, for SMTP, the server from MAIL_URL
// and the sender address. Password comes from MAIL_URL and is never logged.
type Mail struct {
	Mode     MailMode
	Host     string
	Port     int
	TLS      MailTLS
	Username string
	Password string
	From     string
}

// Enabled reports whether mail goes out (by SMTP, or to the log in
// development); when false the mail routes answer 404.
func (m Mail) Enabled() bool { return m.Mode == MailSMTP || m.Mode == MailLog }

// mail parses MAIL_URL, MAIL_FROM and FRONTEND_URL.
func (p *parser) mail(production bool) (Mail, string) {
	m := Mail{Mode: MailLog, From: p.str("MAIL_FROM", DefaultMailFrom)}
	if production {
		m.Mode = MailOff
	}
	if _, err := mail.ParseAddress(m.From); err != nil {
		p.fail("MAIL_FROM must be an address such as no-reply@example.com or \"Name <no-reply@example.com>\", got %q", m.From)
	}
	if raw := p.str("MAIL_URL", ""); raw != "" {
		m.Mode = MailSMTP
		p.mailURL(raw, production, &m)
	}
	frontend := p.origin("FRONTEND_URL")
	if frontend == "" && !production {
		frontend = "http://localhost:5173"
	}
	if frontend == "" && production && m.Mode == MailSMTP {
		p.fail("FRONTEND_URL is required in production when MAIL_URL is set (mails link to the SPA)")
	}
	return m, frontend
}

// mailURL fills m from MAIL_URL; its problems never quote the URL, which may
// hold a password.
func (p *parser) mailURL(raw string, production bool, m *Mail) {
	const shape = "MAIL_URL must look like smtp://[user:pass@]host:port (STARTTLS required) or smtps://[user:pass@]host:port (implicit TLS)"
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Hostname() == "" || u.Opaque != "" || (u.Path != "" && u.Path != "/") || u.Fragment != "" {
		p.fail(shape)
		return
	}
	switch u.Scheme {
	case "smtp":
		m.TLS, m.Port = MailStartTLS, 587
	case "smtps":
		m.TLS, m.Port = MailImplicit, 465
	default:
		p.fail(shape)
		return
	}
	m.Host = u.Hostname()
	if port := u.Port(); port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			p.fail("MAIL_URL: the port must be 1 to 65535")
		}
		m.Port = n
	}
	if u.User != nil {
		m.Username = u.User.Username()
		m.Password, _ = u.User.Password()
		if m.Username == "" {
			p.fail("MAIL_URL: a password needs a user name (smtp://user:pass@host:port)")
		}
	}
	query := u.Query()
	tls := query.Get("tls")
	delete(query, "tls")
	if len(query) > 0 {
		p.fail("MAIL_URL: the only query parameter is tls=none (for a loopback test server)")
	}
	switch tls {
	case "":
	case "none":
		p.mailNoTLS(m, production)
	default:
		p.fail("MAIL_URL: tls may only be none (smtp:// already requires STARTTLS, smtps:// is implicit TLS)")
	}
}

// mailNoTLS allows a cleartext connection only to a test sink on this
// machine: anywhere else the password and every reset link would cross the
// network readable.
func (p *parser) mailNoTLS(m *Mail, production bool) {
	switch {
	case production:
		p.fail("MAIL_URL: tls=none is refused in production")
	case m.TLS != MailStartTLS:
		p.fail("MAIL_URL: tls=none goes with smtp://, not smtps://")
	case !isLoopback(m.Host):
		p.fail("MAIL_URL: tls=none is allowed only for a loopback host (127.0.0.1, ::1, localhost)")
	default:
		m.TLS = MailNoTLS
	}
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// origin parses one origin (scheme://host[:port]) without a trailing slash;
// "" when unset.
func (p *parser) origin(key string) string {
	v := p.str(key, "")
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.User != nil {
		p.fail("%s: %q is not an origin (scheme://host[:port])", key, v)
		return ""
	}
	return strings.TrimSuffix(v, "/")
}

// mailWarnings are the start-up warnings about mail.
func (c Config) mailWarnings() []string {
	var out []string
	if c.Mail.Mode == MailOff {
		out = append(out, "MAIL_URL unset: no mail is sent, so password reset, email verification and email change are off (their routes answer 404)")
	}
	if c.Production && c.Mail.Mode == MailSMTP && c.Mail.From == DefaultMailFrom {
		out = append(out, "MAIL_FROM is "+DefaultMailFrom+": most mail servers refuse or junk mail from it; set an address of your domain")
	}
	if c.Production && strings.HasPrefix(c.FrontendURL, "http://") {
		out = append(out, "FRONTEND_URL is not https: the links in mails (reset, verification) open over an unprotected connection")
	}
	return out
}
