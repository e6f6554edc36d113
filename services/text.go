package services

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// The contract's text rules, shared by the API and the create-user command.

// Limits of the contract's user fields, in characters.
const (
	MaxEmailLength = 254
	MaxNameLength  = 100
)

// PlainText reports whether s is valid UTF-8 without a control (Unicode Cc)
// or format (Cf) character. Such characters make no sense in an email, a
// name or a filter, can hide text (bidi overrides, zero-width characters)
// and would otherwise reach the database, which refuses some (NUL).
func PlainText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.In(r, unicode.Cc, unicode.Cf) {
			return false
		}
	}
	return true
}

// NormalizeName returns name in NFC, trimmed: the form it is stored in.
func NormalizeName(name string) string { return strings.TrimSpace(norm.NFC.String(name)) }

// NameProblem says what is wrong with a normalised name, or "" when it is
// fine: 1 to 100 characters, at least one of them visible, no control or
// format character.
func NameProblem(name string) string {
	switch n := utf8.RuneCountInString(name); {
	case n == 0:
		return "is required"
	case n > MaxNameLength:
		return "must be at most 100 characters"
	case !PlainText(name):
		return PlainTextProblem
	case !HasVisible(name):
		return "must contain at least one visible character"
	}
	return ""
}

// PlainTextProblem is the message for a field or parameter that is not PlainText.
const PlainTextProblem = "must not contain control or invisible formatting characters"

// HasVisible reports whether s has at least one visible character.
func HasVisible(s string) bool { return strings.ContainsFunc(s, visible) }

// visible reports whether r draws something: a letter, digit, punctuation
// or symbol that Unicode does not mark as ignorable (Hangul fillers, for
// one, are letters that draw nothing) and that is not the blank Braille cell.
func visible(r rune) bool {
	return unicode.In(r, unicode.L, unicode.N, unicode.P, unicode.S) &&
		!unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r) && r != '\u2800'
}

// EmailProblem says what is wrong with a normalised email (NormalizeEmail),
// or "" when it is fine: at most 254 characters, ASCII only (an
// internationalised domain in its xn-- form), one @ with text on both sides,
// no space or control character. The ASCII rule is what stops look-alike
// accounts: after NFKC, full-width forms are their ASCII letters, while a
// Cyrillic "а" stays Cyrillic and is refused rather than made a second "a".
// The API's validator checks the address syntax more closely on top.
func EmailProblem(email string) string {
	at := strings.LastIndex(email, "@")
	switch {
	case email == "":
		return "is required"
	case utf8.RuneCountInString(email) > MaxEmailLength:
		return "must be at most 254 characters"
	case !PlainText(email):
		return PlainTextProblem
	case !ASCII(email):
		return "must be written in ASCII (an internationalised domain in its xn-- form)"
	case at < 1 || at == len(email)-1 || strings.ContainsAny(email, " \t\r\n"):
		return "must be a valid email address"
	}
	return ""
}

// ASCII reports whether s holds only ASCII characters.
func ASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// ValidUserID reports whether id is a user id as the API writes it: a UUID
// in canonical form, lower case with hyphens. Other spellings that UUID
// parsers accept (upper case, braces, urn:uuid:, no hyphens) name no user,
// so they never reach the database, which would read some and refuse others.
func ValidUserID(id string) bool {
	if len(id) != 36 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch c := id[i]; {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case !('0' <= c && c <= '9' || 'a' <= c && c <= 'f'):
			return false
		}
	}
	return true
}
