package services

import (
	"strings"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
)

func TestPlausibleChallenge(t *testing.T) {
	for _, tc := range []struct {
		challenge string
		want      bool
	}{
		{"-VEMNDMrzpKqqV-DVpm67GeCUn7-SQCy5zwN0IgqAG8", true},
		{"", false},
		{"short", false},
		{strings.Repeat("A", 129), false},
		{"abc:def:ghijklmnopqrstuvwxyz", false}, // would reach into another key
		{"abcdefghijklmnop/+==", false},         // base64, not base64url
		{"abcdefghijklmnop\n", false},
	} {
		if got := plausibleChallenge(tc.challenge); got != tc.want {
			t.Errorf("%q: got %v, want %v", tc.challenge, got, tc.want)
		}
	}
}

func TestNewPasskeyKeepsOnlyPlainTransports(t *testing.T) {
	cred := &webauthn.Credential{ID: []byte{1}, Transport: []protocol.AuthenticatorTransport{
		"internal", "hybrid", "usb,nfc", "Bad", protocol.AuthenticatorTransport(strings.Repeat("x", 33))}}
	pk := newPasskey(cred, "", time.Now())
	if pk.Transports != "internal,hybrid" || pk.Name != "Passkey" {
		t.Fatalf("got transports %q and name %q", pk.Transports, pk.Name)
	}
	many := make([]protocol.AuthenticatorTransport, 50)
	for i := range many {
		many[i] = "smart-card"
	}
	if got := newPasskey(&webauthn.Credential{Transport: many}, "Key", time.Now()).Transports; len(got) > 200 {
		t.Fatalf("got %d bytes of transports, want at most the column's 200", len(got))
	}
}
