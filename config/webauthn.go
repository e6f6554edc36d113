package config

import (
	"net"
	"net/url"
	"slices"
	"strings"
)

// WebAuthn is the passkey relying party: its id (a domain), the name
// authenticators show and the origins whose ceremonies are accepted.
// Passkeys are on exactly when there is an origin.
type WebAuthn struct {
	RPID    string
	RPName  string
	Origins []string
	// off says why passkeys are off although an origin was found, and
	// dropped names the default origins left out for not being on the RP
	// ID; the start warns with both.
	off     string
	dropped []string
}

// Enabled reports whether passkeys are on; when off their routes answer 404.
func (w WebAuthn) Enabled() bool { return len(w.Origins) > 0 }

// webauthn parses WEBAUTHN_RP_ID, WEBAUTHN_RP_ORIGINS and WEBAUTHN_RP_NAME,
// with the contract's defaults: the host of FRONTEND_URL (else localhost),
// FRONTEND_URL and CORS_ALLOWED_ORIGINS, MFA_ISSUER.
func (p *parser) webauthn(production bool, frontend string, cors []string, issuer string) WebAuthn {
	w := WebAuthn{RPName: p.str("WEBAUTHN_RP_NAME", issuer), Origins: p.origins("WEBAUTHN_RP_ORIGINS")}
	explicitOrigins := len(w.Origins) > 0
	explicitID := strings.ToLower(p.str("WEBAUTHN_RP_ID", ""))
	w.RPID = explicitID
	if w.RPID == "" {
		w.RPID = "localhost"
		if u, err := url.Parse(frontend); err == nil && u.Hostname() != "" {
			w.RPID = strings.ToLower(u.Hostname())
		}
	}
	if !explicitOrigins {
		// A default origin browsers would refuse for this RP ID (a CORS
		// origin on another domain) is left out, not fatal: it never
		// asked for passkeys.
		for _, o := range append([]string{frontend}, cors...) {
			switch {
			case o == "" || slices.Contains(w.Origins, o):
			case originInRPID(o, w.RPID):
				w.Origins = append(w.Origins, o)
			default:
				w.dropped = append(w.dropped, o)
			}
		}
	}
	switch {
	case explicitID != "" && !validDomain(explicitID) && net.ParseIP(explicitID) == nil:
		p.fail("WEBAUTHN_RP_ID must be a domain such as example.com (no scheme, port or path), got %q", explicitID)
	case net.ParseIP(w.RPID) != nil && (explicitID != "" || production):
		p.fail("WEBAUTHN_RP_ID %q is an IP address: browsers refuse passkeys there; set it to a domain (localhost in development)", w.RPID)
	case net.ParseIP(w.RPID) != nil:
		// Development with FRONTEND_URL on an IP: passkeys cannot work, the rest can.
		w.off = "passkeys are off: FRONTEND_URL is an IP address, where browsers refuse them (use localhost, or set WEBAUTHN_RP_ID and WEBAUTHN_RP_ORIGINS)"
		w.Origins, w.dropped = nil, nil
	}
	if production {
		p.productionWebAuthn(w, explicitID != "")
	}
	return w
}

// productionWebAuthn refuses a relying party that cannot serve real users:
// localhost, an RP ID set without any origin, an origin set outside the RP ID.
func (p *parser) productionWebAuthn(w WebAuthn, explicitID bool) {
	if explicitID && !w.Enabled() {
		p.fail("WEBAUTHN_RP_ID is set but passkeys have no origin on it: set WEBAUTHN_RP_ORIGINS (or FRONTEND_URL)")
	}
	if !w.Enabled() {
		return
	}
	if w.RPID == "localhost" || strings.HasSuffix(w.RPID, ".localhost") {
		p.fail("WEBAUTHN_RP_ID is %q in production: set it to your domain (it defaults to the host of FRONTEND_URL)", w.RPID)
		return
	}
	for _, o := range w.Origins {
		if !originInRPID(o, w.RPID) {
			p.fail("WEBAUTHN_RP_ORIGINS: %s is not on %s or one of its subdomains, so browsers would refuse its passkeys", o, w.RPID)
		}
	}
}

// originInRPID reports whether browsers accept rpID for a ceremony on origin:
// the origin's host is the RP ID or one of its subdomains.
func originInRPID(origin, rpID string) bool {
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	host := strings.ToLower(u.Hostname())
	return host == rpID || strings.HasSuffix(host, "."+rpID)
}

// validDomain reports whether s is a host name: dot-separated labels of
// letters, digits and inner hyphens.
func validDomain(s string) bool {
	if s == "" || len(s) > 253 {
		return false
	}
	for _, label := range strings.Split(s, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// webauthnWarnings are the start-up warnings about passkeys.
func (c Config) webauthnWarnings() []string {
	w := c.WebAuthn
	var out []string
	switch {
	case w.off != "":
		return []string{w.off}
	case len(w.dropped) > 0:
		out = append(out, "passkeys are not offered on "+strings.Join(w.dropped, ", ")+": not on "+w.RPID+
			" or one of its subdomains (set WEBAUTHN_RP_ID to a parent domain, or WEBAUTHN_RP_ORIGINS)")
	}
	if !w.Enabled() {
		return append(out, "passkeys are off: no origin for them (set FRONTEND_URL or WEBAUTHN_RP_ORIGINS); their routes answer 404")
	}
	for _, o := range w.Origins {
		if !originInRPID(o, w.RPID) {
			out = append(out, "WEBAUTHN_RP_ORIGINS: "+o+" is not on "+w.RPID+" or one of its subdomains: browsers refuse passkeys there")
		}
	}
	return out
}
