package commonpasswords

import "testing"

func TestContains(t *testing.T) {
	l := New()
	tests := []struct {
		name     string
		password string
		want     bool
	}{
		{"password", "password", true},
		{"password upper case", "PASSWORD", true},
		{"password mixed case", "PassWord", true},
		{"123456", "123456", true},
		{"qwerty", "qwerty", true},
		{"qwerty upper case", "QWERTY", true},
		{"random 20 chars", "vQ7#pLz2!Wm9xR4@tKe8", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := l.Contains(tt.password); got != tt.want {
				t.Errorf("Contains(%q) = %v, want %v", tt.password, got, tt.want)
			}
		})
	}
}

func TestLen(t *testing.T) {
	const minEntries = 10000
	if got := New().Len(); got < minEntries {
		t.Errorf("Len() = %d, want at least %d", got, minEntries)
	}
}
