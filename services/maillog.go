package services

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
)

// RecipientHash is how logs name the mail address to: a short HMAC under key
// of the lower-cased address, so an operator holding the key can find one
// user's mails while the log alone reveals no address.
func RecipientHash(key []byte, to string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(strings.ToLower(strings.TrimSpace(to))))
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// redact removes msg's recipient and link from err's text: SMTP servers
// quote the address they refuse, and no log line may carry a token.
func redact(err error, msg *Message) error {
	if err == nil || msg == nil {
		return err
	}
	text := err.Error()
	for _, secret := range []string{msg.Link, msg.To} {
		if secret != "" {
			text = replaceFold(text, secret, "[redacted]")
		}
	}
	if text == err.Error() {
		return err
	}
	if errors.As(err, new(permanentError)) {
		return permanentError{errors.New(text)}
	}
	return errors.New(text)
}

// replaceFold replaces every case-insensitive occurrence of old in s.
func replaceFold(s, old, replacement string) string {
	lower, lowerOld := strings.ToLower(s), strings.ToLower(old)
	if len(lower) != len(s) || len(lowerOld) != len(old) { // non-ASCII case folding changed lengths
		return strings.ReplaceAll(s, old, replacement)
	}
	var b strings.Builder
	for {
		i := strings.Index(lower, lowerOld)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(replacement)
		s, lower = s[i+len(old):], lower[i+len(old):]
	}
}
