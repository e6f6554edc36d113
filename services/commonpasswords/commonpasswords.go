// Package commonpasswords reports whether a password is one of the most
// common passwords, so that it can be refused at registration or password
// change (OWASP ASVS 6.2.4).
//
// The embedded list.txt holds the 10,000 most common passwords of the
// SecLists "10 million password list" (lower-cased and deduplicated); see
// SOURCE.md for its origin, licence and how it was derived.
package commonpasswords

import (
	_ "embed"
	"strings"
)

//go:embed list.txt
var listData string

// List is a set of common passwords, compared case-insensitively.
// A List is safe for concurrent use once built, as it is never modified.
type List struct {
	entries map[string]struct{}
}

// New builds a List from the embedded password list. It parses the list on
// every call, so callers should build it once and share it.
func New() *List {
	lines := strings.Split(listData, "\n")
	entries := make(map[string]struct{}, len(lines))
	for _, line := range lines {
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			continue
		}
		entries[strings.ToLower(line)] = struct{}{}
	}
	return &List{entries: entries}
}

// Contains reports whether password, lower-cased, is in the list.
func (l *List) Contains(password string) bool {
	_, ok := l.entries[strings.ToLower(password)]
	return ok
}

// Len returns the number of distinct entries in the list.
func (l *List) Len() int {
	return len(l.entries)
}
