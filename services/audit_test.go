package services

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/sessionauth/api/models"
)

func TestAuditCursorRoundTripsAndRefusesOthers(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 30, 45, 123456000, time.UTC)
	c := AuditCursor{At: at, ID: uuid.NewString()}
	got, err := ParseAuditCursor(c.String())
	if err != nil || !got.At.Equal(at) || got.ID != c.ID {
		t.Fatalf("got %+v, %v, want %+v back", got, err, c)
	}
	for _, bad := range []string{"", "x", "AAAA", c.String() + "A", c.String()[:31], c.String() + "=",
		strings.Repeat("_", 32), strings.Replace(c.String(), c.String()[:1], "+", 1)} {
		if _, err := ParseAuditCursor(bad); err == nil {
			t.Errorf("ParseAuditCursor(%q): got a cursor, want ErrBadCursor", bad)
		}
	}
}

func TestStorableTextCutsTo256BytesOfValidUTF8(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"curl/8.0", "curl/8.0"},
		{strings.Repeat("é", 200), strings.Repeat("é", 128)}, // 2 bytes each: 256
		{strings.Repeat("a", 255) + "é", strings.Repeat("a", 255)},
		{"ok\xff\xfeok", "ok\uFFFDok"},
		{"nul\x00byte", "nulbyte"},
	} {
		got := storableText(tc.in, 256)
		if got != tc.want || len(got) > 256 || !utf8.ValidString(got) {
			t.Errorf("storableText(%.20q): got %.20q (%d bytes), want %.20q", tc.in, got, len(got), tc.want)
		}
	}
}

// TestAuditRecordStoresOddUserAgents stores a user agent that PostgreSQL's
// text would refuse as it came (not UTF-8) and one over 256 bytes.
func TestAuditRecordStoresOddUserAgents(t *testing.T) {
	db, rdb := newTestStores(t)
	audit := NewAudit(AuditOptions{DB: db, Timeout: time.Second, Redis: rdb})
	for _, ua := range []string{"bad\xffbytes", strings.Repeat("ü", 300)} {
		if err := audit.Record(context.Background(), models.AuditEvent{Event: models.EventLogout, UserAgent: ua}); err != nil {
			t.Fatal(err)
		}
	}
	page, err := audit.List(context.Background(), AuditQuery{Limit: 10})
	if err != nil || len(page.Events) != 2 || page.Next != nil {
		t.Fatalf("got %+v, %v, want two events on one page", page, err)
	}
	for _, e := range page.Events {
		if len(e.UserAgent) > 256 || !utf8.ValidString(e.UserAgent) || e.Details == nil {
			t.Errorf("got user agent %q (%d bytes), details %v", e.UserAgent, len(e.UserAgent), e.Details)
		}
	}
}
