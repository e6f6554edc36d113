package services

import "testing"

func TestValidUserIDAcceptsOnlyTheCanonicalForm(t *testing.T) {
	const id = "6f1c1d4e-58f4-4ad7-9a43-7d0e6f0a1b2c"
	for in, want := range map[string]bool{
		id:                                         true,
		"6F1C1D4E-58F4-4AD7-9A43-7D0E6F0A1B2C":     false,
		"urn:uuid:" + id:                           false,
		"{" + id + "}":                             false,
		"6f1c1d4e58f44ad79a437d0e6f0a1b2c":         false,
		"6f1c1d4e-58f4-4ad7-9a43-7d0e6f0a1b2g":     false,
		"6f1c1d4e-58f4-4ad7-9a43_7d0e6f0a1b2c":     false,
		"6f1c1d4e-58f4-4ad7-9a43-7d0e6f0a1b2c\x00": false,
		"": false,
	} {
		if got := ValidUserID(in); got != want {
			t.Errorf("ValidUserID(%q): got %v, want %v", in, got, want)
		}
	}
}

func TestEmailAndNameRules(t *testing.T) {
	emails := []struct{ in, normalized, problem string }{
		{"  Ada@Example.COM ", "ada@example.com", ""},
		{"ａｄａ＠ｅｘａｍｐｌｅ．ｃｏｍ", "ada@example.com", ""},                     // full-width is the same address
		{"ada@xn--bcher-kva.example", "ada@xn--bcher-kva.example", ""}, // an IDN domain in its ASCII form
		{"\u0430da@example.com", "\u0430da@example.com", "must be written in ASCII (an internationalised domain in its xn-- form)"},
		{"ada@bücher.example", "ada@bücher.example", "must be written in ASCII (an internationalised domain in its xn-- form)"},
		{"ada\u202e@example.com", "ada\u202e@example.com", PlainTextProblem},
		{"ada\x00@example.com", "ada\x00@example.com", PlainTextProblem},
		{"ada@", "ada@", "must be a valid email address"},
		{"", "", "is required"},
	}
	for _, tc := range emails {
		got := NormalizeEmail(tc.in)
		if got != tc.normalized || EmailProblem(got) != tc.problem {
			t.Errorf("email %q: got %q (%q), want %q (%q)", tc.in, got, EmailProblem(got), tc.normalized, tc.problem)
		}
	}
	names := []struct{ in, normalized, problem string }{
		{"  Ada Lovelace ", "Ada Lovelace", ""},
		{"Rene\u0301", "René", ""}, // NFC
		{"李小龍", "李小龍", ""},
		{"😀", "😀", ""},
		{"\u200b", "\u200b", PlainTextProblem}, // zero-width space (Cf)
		{"\u3164\u3164", "\u3164\u3164", "must contain at least one visible character"}, // Hangul fillers
		{"\u2800", "\u2800", "must contain at least one visible character"},             // blank Braille cell
		{"\u00a0\u3000", "", "is required"},                                             // spaces only
		{"x\x00", "x\x00", PlainTextProblem},
	}
	for _, tc := range names {
		got := NormalizeName(tc.in)
		if got != tc.normalized || NameProblem(got) != tc.problem {
			t.Errorf("name %q: got %q (%q), want %q (%q)", tc.in, got, NameProblem(got), tc.normalized, tc.problem)
		}
	}
}
