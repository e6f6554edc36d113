package services

import (
	"errors"
	htmltemplate "html/template"
	"net/url"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"
)

// MailKind names what a mail is for, in logs.
type MailKind string

// The mails of the product.
const (
	MailPasswordReset             MailKind = "password_reset"              // the reset link
	MailEmailVerification         MailKind = "email_verification"          // the verification link
	MailEmailChange               MailKind = "email_change"                // the confirmation link, to the new address
	MailNoticePasswordChanged     MailKind = "notice_password_changed"     // after POST /password
	MailNoticePasswordReset       MailKind = "notice_password_reset"       // after a reset link was used
	MailNoticeEmailChangeRequest  MailKind = "notice_email_change_request" // to the old address
	MailNoticeSecondFactorAdded   MailKind = "notice_second_factor_added"
	MailNoticeSecondFactorRemoved MailKind = "notice_second_factor_removed"
	MailNoticePasskeyAdded        MailKind = "notice_passkey_added"
	MailNoticePasskeyRemoved      MailKind = "notice_passkey_removed"
)

// MailTemplates builds every mail of the product, plain text plus HTML.
// Links point at the SPA with the token in the fragment, so the token
// reaches no server log and no Referer. The mails name no user (a name is
// whatever someone typed at registration, and registration mails any
// address); the data they do show (a passkey name, an address) is escaped.
type MailTemplates struct {
	frontend string
	product  string
}

// NewMailTemplates returns the builders for links to frontendURL (an origin,
// validated by config) and mails signed by product ("Session Auth" if empty).
func NewMailTemplates(frontendURL, product string) *MailTemplates {
	if product == "" {
		product = "Session Auth"
	}
	return &MailTemplates{frontend: strings.TrimSuffix(frontendURL, "/"), product: product}
}

// PasswordReset is the mail with the link that opens the SPA's reset page.
// It fails on an empty token.
func (t *MailTemplates) PasswordReset(to, token string, ttl time.Duration) (*Message, error) {
	return t.render(to, mailContent{
		Subject: "Reset your password",
		Before:  []string{"Someone, probably you, asked to reset the password of your " + t.product + " account."},
		Action:  &mailAction{Label: "Choose a new password", path: "/reset-password", token: token},
		After: []string{"The link works once, within " + humanDuration(ttl) + ".",
			"If you did not ask for it, ignore this mail: your password stays as it is."},
	})
}

// EmailVerification is the mail with the link that proves the address
// belongs to the account. It fails on an empty token.
func (t *MailTemplates) EmailVerification(to, token string, ttl time.Duration) (*Message, error) {
	return t.render(to, mailContent{
		Subject: "Confirm your email address",
		Before:  []string{"Please confirm that this address belongs to your " + t.product + " account."},
		Action:  &mailAction{Label: "Confirm my address", path: "/verify-email", token: token},
		After: []string{"The link works once, within " + humanDuration(ttl) + ".",
			"If you did not create an account, ignore this mail."},
	})
}

// EmailChange is the confirmation sent to the new address of an email
// change; the change happens when its link is used. It fails on an empty token.
func (t *MailTemplates) EmailChange(to, token string, ttl time.Duration) (*Message, error) {
	return t.render(to, mailContent{
		Subject: "Confirm your new email address",
		Before:  []string{"Someone asked to use this address for a " + t.product + " account. It becomes the account's address when you confirm it."},
		Action:  &mailAction{Label: "Confirm my new address", path: "/verify-email", token: token},
		After: []string{"The link works once, within " + humanDuration(ttl) + ".",
			"If you did not ask for it, ignore this mail: nothing changes."},
	})
}

// PasswordChanged is the notice after a password change.
func (t *MailTemplates) PasswordChanged(to string) (*Message, error) {
	return t.notice(to, "Your password was changed", "The password of your "+t.product+" account was just changed.")
}

// PasswordWasReset is the notice after a reset link was used.
func (t *MailTemplates) PasswordWasReset(to string) (*Message, error) {
	return t.notice(to, "Your password was reset",
		"The password of your "+t.product+" account was just reset with a link sent to this address, and every device was signed out.")
}

// EmailChangeRequested is the notice to the old address that a change to
// newAddress was asked for.
func (t *MailTemplates) EmailChangeRequested(to, newAddress string) (*Message, error) {
	return t.notice(to, "A change of your email address was requested",
		"Someone asked to change the email address of your "+t.product+" account to "+clean(newAddress)+
			". It changes only when the link sent to that address is used; changing your password cancels the request.")
}

// SecondFactorAdded is the notice after two-step verification (an
// authenticator app) was turned on.
func (t *MailTemplates) SecondFactorAdded(to string) (*Message, error) {
	return t.notice(to, "Two-step verification was turned on",
		"An authenticator app was set up for two-step verification on your "+t.product+" account.")
}

// SecondFactorRemoved is the notice after two-step verification was turned off.
func (t *MailTemplates) SecondFactorRemoved(to string) (*Message, error) {
	return t.notice(to, "Two-step verification was turned off",
		"Two-step verification with an authenticator app was turned off for your "+t.product+" account.")
}

// PasskeyAdded is the notice after the passkey called name was added.
func (t *MailTemplates) PasskeyAdded(to, name string) (*Message, error) {
	return t.notice(to, "A passkey was added to your account",
		"The passkey “"+clean(name)+"” was added to your "+t.product+" account: it can now sign in without a password.")
}

// PasskeyRemoved is the notice after the passkey called name was removed.
func (t *MailTemplates) PasskeyRemoved(to, name string) (*Message, error) {
	return t.notice(to, "A passkey was removed from your account",
		"The passkey “"+clean(name)+"” was removed from your "+t.product+" account.")
}

// notice is a security notice: what happened, and what to do if it was not
// the account's owner.
func (t *MailTemplates) notice(to, subject, what string) (*Message, error) {
	return t.render(to, mailContent{
		Subject: subject,
		Before:  []string{what},
		After: []string{"If this was you, there is nothing to do.",
			"If it was not, open " + t.frontend + " now and choose “Forgot password” to set a new password."},
	})
}

// mailContent is one mail: paragraphs, an optional action link, paragraphs.
type mailContent struct {
	Subject string
	Before  []string
	Action  *mailAction
	After   []string
	Product string
}

type mailAction struct {
	Label       string
	URL         string
	path, token string
}

var (
	mailText = texttemplate.Must(texttemplate.New("text").Parse(`Hello,
{{range .Before}}
{{.}}
{{end}}{{with .Action}}
{{.Label}}:
{{.URL}}
{{end}}{{range .After}}
{{.}}
{{end}}
-- {{.Product}}
`))
	mailHTML = htmltemplate.Must(htmltemplate.New("html").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>{{.Subject}}</title></head>
<body style="font-family:Helvetica,Arial,sans-serif;line-height:1.5;color:#222;max-width:560px;margin:0 auto;padding:24px">
<p>Hello,</p>
{{range .Before}}<p>{{.}}</p>
{{end}}{{with .Action}}<p><a href="{{.URL}}" style="display:inline-block;padding:10px 18px;background:#2553d0;color:#fff;text-decoration:none;border-radius:4px">{{.Label}}</a></p>
<p style="font-size:13px;color:#555">Or open this link: <span style="word-break:break-all">{{.URL}}</span></p>
{{end}}{{range .After}}<p>{{.}}</p>
{{end}}<p style="color:#555">&mdash; {{.Product}}</p>
</body></html>
`))
)

func (t *MailTemplates) render(to string, c mailContent) (*Message, error) {
	c.Product = t.product
	m := &Message{To: to, Subject: c.Subject}
	if c.Action != nil {
		if c.Action.token == "" {
			return nil, errors.New("mail: empty token")
		}
		c.Action.URL = t.frontend + c.Action.path + "#token=" + url.QueryEscape(c.Action.token)
		m.Link = c.Action.URL
	}
	var text, html strings.Builder
	if err := mailText.Execute(&text, c); err != nil {
		return nil, err
	}
	if err := mailHTML.Execute(&html, c); err != nil {
		return nil, err
	}
	m.Text, m.HTML = text.String(), html.String()
	return m, nil
}

// clean makes user data fit for one line of a mail: control and
// bidirectional-override characters go (they could fake the text around
// them) and it is cut to 100 characters.
func clean(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			continue
		}
		if n++; n > 100 {
			b.WriteString("…")
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// humanDuration says d in words, rounded down: "30 minutes", "90 minutes",
// "24 hours", "3 days".
func humanDuration(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return strconv.FormatInt(n, 10) + " " + unit + "s"
	}
	switch {
	case d < time.Minute:
		return plural(int64(d/time.Second), "second")
	case d < time.Hour || d%time.Hour != 0 && d < 2*time.Hour:
		return plural(int64(d/time.Minute), "minute")
	case d <= 48*time.Hour:
		return plural(int64(d/time.Hour), "hour")
	default:
		return plural(int64(d/(24*time.Hour)), "day")
	}
}
