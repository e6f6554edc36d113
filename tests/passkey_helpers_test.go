package tests

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
)

// A software authenticator: what a browser and a platform authenticator
// produce for navigator.credentials.create() and .get(), in the JSON form of
// PublicKeyCredential.toJSON(). It holds ES256 keys, makes "none"
// attestations and signs assertions, and can be told to misbehave the ways
// an attacker or a broken device would.

// Authenticator data flags (WebAuthn §6.1).
const (
	flagUP = 0x01
	flagUV = 0x04
	flagBE = 0x08
	flagBS = 0x10
	flagAT = 0x40
)

var b64 = base64.RawURLEncoding

// softAuthenticator is one device: its origin (the page that calls the
// WebAuthn API) and its credentials.
type softAuthenticator struct {
	t      *testing.T
	origin string
	// flags added to every authenticator data (flagBE|flagBS for a synced passkey).
	extraFlags byte
	// counterless: the signature counter stays 0 (as synced passkeys do).
	counterless bool
	// credentialID, when set, is the id of the next credential created
	// (a credential id someone already registered).
	credentialID []byte
}

// softCredential is one credential the authenticator holds.
type softCredential struct {
	id         []byte
	key        *ecdsa.PrivateKey
	userHandle []byte
	rpID       string
	counter    uint32
}

func newSoftAuthenticator(t *testing.T) *softAuthenticator {
	return &softAuthenticator{t: t, origin: "http://localhost:5173"}
}

// creationOptions is what the tests read of the creation options.
type creationOptions struct {
	Challenge string `json:"challenge"`
	RP        struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"rp"`
	User struct {
		ID          string `json:"id"`
		Name        string `json:"name"`
		DisplayName string `json:"displayName"`
	} `json:"user"`
	ExcludeCredentials []struct {
		ID string `json:"id"`
	} `json:"excludeCredentials"`
	AuthenticatorSelection struct {
		ResidentKey      string `json:"residentKey"`
		UserVerification string `json:"userVerification"`
	} `json:"authenticatorSelection"`
}

// requestOptions is what the tests read of the request options.
type requestOptions struct {
	Challenge        string `json:"challenge"`
	RPID             string `json:"rpId"`
	UserVerification string `json:"userVerification"`
	AllowCredentials []struct {
		ID string `json:"id"`
	} `json:"allowCredentials"`
}

// create answers creation options with a new credential, as
// navigator.credentials.create() would; flags are the authenticator data
// flags (flagUP|flagUV normally).
func (a *softAuthenticator) create(opts creationOptions, flags byte) (*softCredential, map[string]any) {
	a.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		a.t.Fatal(err)
	}
	handle, err := b64.DecodeString(opts.User.ID)
	if err != nil {
		a.t.Fatalf("user.id %q is not base64url: %v", opts.User.ID, err)
	}
	cred := &softCredential{id: randomBytes(32), key: key, userHandle: handle, rpID: opts.RP.ID}
	if a.credentialID != nil {
		cred.id = a.credentialID
	}
	if !a.counterless {
		cred.counter = 1
	}
	cose, err := webauthncbor.Marshal(map[int]any{1: 2, 3: -7, -1: 1, -2: pad32(key.X.Bytes()), -3: pad32(key.Y.Bytes())})
	if err != nil {
		a.t.Fatal(err)
	}
	attested := make([]byte, 0, 18+len(cred.id)+len(cose))
	attested = append(attested, make([]byte, 16)...) // AAGUID: none
	attested = binary.BigEndian.AppendUint16(attested, uint16(len(cred.id)))
	attested = append(append(attested, cred.id...), cose...)
	authData := append(a.authData(cred, flags|flagAT), attested...)
	object, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": authData})
	if err != nil {
		a.t.Fatal(err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		a.t.Fatal(err)
	}
	return cred, map[string]any{
		"id": b64.EncodeToString(cred.id), "rawId": b64.EncodeToString(cred.id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":     b64.EncodeToString(a.clientData("webauthn.create", opts.Challenge)),
			"attestationObject":  b64.EncodeToString(object),
			"authenticatorData":  b64.EncodeToString(authData),
			"publicKey":          b64.EncodeToString(spki),
			"publicKeyAlgorithm": -7,
			"transports":         []string{"internal", "hybrid"},
		},
	}
}

// get answers request options with an assertion by cred, as
// navigator.credentials.get() would; flags are the authenticator data flags.
func (a *softAuthenticator) get(cred *softCredential, challenge string, flags byte) map[string]any {
	a.t.Helper()
	if !a.counterless {
		cred.counter++
	}
	authData := a.authData(cred, flags)
	clientData := a.clientData("webauthn.get", challenge)
	hash := sha256.Sum256(clientData)
	digest := sha256.Sum256(append(append([]byte{}, authData...), hash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, cred.key, digest[:])
	if err != nil {
		a.t.Fatal(err)
	}
	return map[string]any{
		"id": b64.EncodeToString(cred.id), "rawId": b64.EncodeToString(cred.id), "type": "public-key",
		"authenticatorAttachment": "platform", "clientExtensionResults": map[string]any{},
		"response": map[string]any{
			"clientDataJSON":    b64.EncodeToString(clientData),
			"authenticatorData": b64.EncodeToString(authData),
			"signature":         b64.EncodeToString(sig),
			"userHandle":        b64.EncodeToString(cred.userHandle),
		},
	}
}

// authData is rpIdHash || flags || signCount.
func (a *softAuthenticator) authData(cred *softCredential, flags byte) []byte {
	rpIDHash := sha256.Sum256([]byte(cred.rpID))
	out := append(rpIDHash[:], flags|a.extraFlags)
	return binary.BigEndian.AppendUint32(out, cred.counter)
}

func (a *softAuthenticator) clientData(typ, challenge string) []byte {
	body, err := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": a.origin, "crossOrigin": false})
	if err != nil {
		a.t.Fatal(err)
	}
	return body
}

func pad32(b []byte) []byte { return append(make([]byte, 32-len(b)), b...) }

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}

// passkeyBody is the contract's passkey object.
type passkeyBody struct {
	ID         string  `json:"id"`
	Name       string  `json:"name"`
	CreatedAt  string  `json:"created_at"`
	LastUsedAt *string `json:"last_used_at"`
}

// beginPasskey calls a begin route and returns its options.
func beginPasskey[T any](c *client, path string) T {
	c.t.Helper()
	return decodeBody[struct {
		Options T `json:"options"`
	}](c.do("POST", path, nil).want(c.t, 200)).Options
}

// addPasskey registers a new passkey of auth for the client's user (which
// needs a recent proof) and returns it with its credential.
func (c *client) addPasskey(auth *softAuthenticator, name string) (passkeyBody, *softCredential) {
	c.t.Helper()
	opts := beginPasskey[creationOptions](c, "/passkeys/register/begin")
	cred, body := auth.create(opts, flagUP|flagUV)
	res := c.do("POST", "/passkeys/register/finish", map[string]any{"name": name, "credential": body}).want(c.t, 201)
	return decodeBody[struct {
		Passkey passkeyBody `json:"passkey"`
	}](res).Passkey, cred
}

// passkeyLogin logs in (or completes a pending session's second step) with
// cred and returns the finish answer.
func (c *client) passkeyLogin(auth *softAuthenticator, cred *softCredential) *response {
	c.t.Helper()
	opts := beginPasskey[requestOptions](c, "/login/passkey/begin")
	return c.do("POST", "/login/passkey/finish", map[string]any{"credential": auth.get(cred, opts.Challenge, flagUP|flagUV)})
}

// passkeys lists the caller's passkeys.
func (c *client) passkeys() []passkeyBody {
	c.t.Helper()
	return decodeBody[struct {
		Passkeys []passkeyBody `json:"passkeys"`
	}](c.do("GET", "/passkeys", nil).want(c.t, 200)).Passkeys
}
