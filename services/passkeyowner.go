package services

import (
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/google/uuid"

	"github.com/sessionauth/api/models"
)

// passkeyOwner is a user with their passkeys, as go-webauthn sees a user.
// The user handle is the 16 bytes of the user's UUID: no email or name.
type passkeyOwner struct {
	user models.User
	keys []models.Passkey
}

// WebAuthnID is the user handle.
func (o passkeyOwner) WebAuthnID() []byte {
	id, _ := uuid.Parse(o.user.ID) // user ids are UUIDs
	return id[:]
}

// WebAuthnName is the account name authenticators show.
func (o passkeyOwner) WebAuthnName() string { return o.user.Email }

// WebAuthnDisplayName is the person's name authenticators show.
func (o passkeyOwner) WebAuthnDisplayName() string { return o.user.Name }

// WebAuthnCredentials are the user's passkeys, with their stored counter
// and flags, which the library compares with an assertion's.
func (o passkeyOwner) WebAuthnCredentials() []webauthn.Credential {
	creds := make([]webauthn.Credential, len(o.keys))
	for i, pk := range o.keys {
		flags := protocol.FlagUserPresent
		if pk.UserVerified {
			flags |= protocol.FlagUserVerified
		}
		if pk.BackupEligible {
			flags |= protocol.FlagBackupEligible
		}
		if pk.BackupState {
			flags |= protocol.FlagBackupState
		}
		var transports []protocol.AuthenticatorTransport
		for _, t := range strings.Split(pk.Transports, ",") {
			if t != "" {
				transports = append(transports, protocol.AuthenticatorTransport(t))
			}
		}
		creds[i] = webauthn.Credential{ID: pk.CredentialID, PublicKey: pk.PublicKey, AttestationFormat: pk.Attestation,
			Transport: transports, Flags: webauthn.NewCredentialFlags(flags),
			Authenticator: webauthn.Authenticator{AAGUID: pk.AAGUID, SignCount: pk.SignCount}}
	}
	return creds
}

// passkey returns the user's passkey with that credential id.
func (o passkeyOwner) passkey(credentialID []byte) (models.Passkey, bool) {
	for _, pk := range o.keys {
		if string(pk.CredentialID) == string(credentialID) {
			return pk, true
		}
	}
	return models.Passkey{}, false
}

// newPasskey is the record of a credential just created. Its attestation
// format is one the library verified, so a short registered name.
func newPasskey(cred *webauthn.Credential, name string, now time.Time) models.Passkey {
	if name == "" {
		name = "Passkey"
	}
	var transports []string
	length := 0
	for _, t := range cred.Transport {
		// Names the browser sent, kept only to hint it at the next ceremony:
		// short known-looking words, within the column.
		if s := string(t); len(s) <= 32 && strings.Trim(s, "abcdefghijklmnopqrstuvwxyz-") == "" && length+len(s)+1 <= 200 {
			transports = append(transports, s)
			length += len(s) + 1
		}
	}
	return models.Passkey{ID: uuid.NewString(), CredentialID: cred.ID, PublicKey: cred.PublicKey,
		Attestation: cred.AttestationFormat, AAGUID: cred.Authenticator.AAGUID,
		SignCount: cred.Authenticator.SignCount, Transports: strings.Join(transports, ","),
		UserVerified: cred.Flags.UserVerified, BackupEligible: cred.Flags.BackupEligible, BackupState: cred.Flags.BackupState,
		Name: name, CreatedAt: now.UTC().Truncate(time.Microsecond)}
}
