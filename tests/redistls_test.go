package tests

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
)

// testCA is a private certificate authority made by the test.
type testCA struct {
	t    *testing.T
	dir  string
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	file string // the CA certificate, PEM
}

func newTestCA(t *testing.T, dir, name string) *testCA {
	t.Helper()
	key := mustKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(t), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{t: t, dir: dir, cert: cert, key: key, file: filepath.Join(dir, name+".pem")}
	writePEM(t, ca.file, "CERTIFICATE", der)
	return ca
}

// issue signs a certificate for name (server: IP 127.0.0.1 and DNS
// localhost) and returns the paths of its certificate and key.
func (ca *testCA) issue(name string, usage x509.ExtKeyUsage) (certFile, keyFile string) {
	ca.t.Helper()
	key := mustKey(ca.t)
	tmpl := &x509.Certificate{
		SerialNumber: serial(ca.t), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if usage == x509.ExtKeyUsageServerAuth {
		tmpl.IPAddresses, tmpl.DNSNames = []net.IP{net.IPv4(127, 0, 0, 1)}, []string{"localhost"}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		ca.t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(ca.dir, name+".crt"), filepath.Join(ca.dir, name+".key")
	writePEM(ca.t, certFile, "CERTIFICATE", der)
	writePEM(ca.t, keyFile, "PRIVATE KEY", keyDER)
	return certFile, keyFile
}

func mustKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func serial(t *testing.T) *big.Int {
	t.Helper()
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startTLSRedis runs redis-server on a TLS port only, with the server
// certificate of ca, asking clients for a certificate of ca. It returns the
// port and the path of the server's log.
func startTLSRedis(t *testing.T, ca *testCA, clientCert, clientKey string) (int, string) {
	t.Helper()
	bin := redisTool(t, "redis-server")
	serverCert, serverKey := ca.issue("redis-server", x509.ExtKeyUsageServerAuth)
	port, dir := freePort(t), t.TempDir()
	cmd := exec.Command(bin, "--port", "0", "--tls-port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--save", "", "--appendonly", "no", "--logfile", filepath.Join(dir, "redis.log"),
		"--tls-cert-file", serverCert, "--tls-key-file", serverKey, "--tls-ca-cert-file", ca.file)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	pair, err := tls.LoadX509KeyPair(clientCert, clientKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.cert)
	tlsConfig := &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		conn, err := redis.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), redis.DialUseTLS(true), redis.DialTLSConfig(tlsConfig),
			redis.DialConnectTimeout(time.Second), redis.DialReadTimeout(time.Second))
		if err == nil {
			_, err = conn.Do("PING")
			_ = conn.Close()
		}
		if err == nil {
			return port, filepath.Join(dir, "redis.log")
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
			// Debian's redis-server is built with TLS; a build without it refuses --tls-port.
			t.Fatalf("redis-server over TLS does not answer (built without TLS?): %v\n%s", err, tail(log, 2000))
		}
	}
}

// TestRedisTLSWithPrivateCA runs the product against a redis-server that
// speaks only TLS with a certificate of a private CA and asks for client
// certificates: with the CA file and a client certificate it serves; without
// the CA file (the system's roots), with another CA, or without a client
// certificate it refuses the server and answers 503, naming no address.
func TestRedisTLSWithPrivateCA(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ca := newTestCA(t, dir, "test-ca")
	clientCert, clientKey := ca.issue("sessionauth", x509.ExtKeyUsageClientAuth)
	port, serverLog := startTLSRedis(t, ca, clientCert, clientKey)
	other := newTestCA(t, dir, "other-ca")

	serving := env{"REDIS_TLS_CA_FILE": ca.file, "REDIS_TLS_CERT_FILE": clientCert, "REDIS_TLS_KEY_FILE": clientKey,
		"REDIS_TIMEOUT": "1s"}
	for _, host := range []string{"127.0.0.1", "localhost"} {
		deps := newDeps(t, serving)
		deps.settings["REDIS_URL"] = "rediss://" + host + ":" + strconv.Itoa(port) + "/0"
		s := deps.start(t)
		wantReadiness(t, s.newClient(t), 200, map[string]string{"redis": "ok"})
		c := s.newClient(t)
		c.register(uniqueEmail("tls"))
		c.do("GET", "/me", nil).want(t, 200)
		c.do("POST", "/logout", nil).want(t, 200)
		c.do("GET", "/me", nil).want(t, 401, "not_authenticated")
	}

	// Each refusal for its own reason: the product's log, or for the missing
	// client certificate the server's, says which.
	refused := map[string]struct {
		settings env
		log      func() string
		reason   string
	}{
		"without the CA file": {env{"REDIS_TLS_CERT_FILE": clientCert, "REDIS_TLS_KEY_FILE": clientKey}, nil,
			"certificate signed by unknown authority"},
		"with another CA": {env{"REDIS_TLS_CA_FILE": other.file, "REDIS_TLS_CERT_FILE": clientCert, "REDIS_TLS_KEY_FILE": clientKey}, nil,
			"certificate signed by unknown authority"},
		"without a client certificate": {env{"REDIS_TLS_CA_FILE": ca.file},
			func() string { b, _ := os.ReadFile(serverLog); return string(b) }, "did not return a certificate"},
	}
	for name, tc := range refused {
		tc.settings["REDIS_TIMEOUT"] = "500ms"
		deps := newDeps(t, tc.settings)
		deps.settings["REDIS_URL"] = "rediss://127.0.0.1:" + strconv.Itoa(port) + "/0"
		s := deps.start(t)
		res := s.newClient(t).do("GET", "/readyz", nil)
		if res.Status != 503 || !strings.Contains(res.Raw, `"redis":"unavailable"`) {
			t.Errorf("%s: got /readyz %d %s, want 503 with redis unavailable", name, res.Status, res.Raw)
		}
		if strings.Contains(res.Raw, "127.0.0.1") || strings.Contains(res.Raw, strconv.Itoa(port)) {
			t.Errorf("%s: /readyz names an internal address: %s", name, res.Raw)
		}
		wantUnavailable(t, name+": register", s.newClient(t).do("POST", "/register", registration(uniqueEmail("tls"))))
		if tc.log == nil {
			tc.log = s.Logs.String
		}
		if log := tc.log(); !strings.Contains(log, tc.reason) {
			t.Errorf("%s: got no %q in the log:\n%s", name, tc.reason, tail([]byte(log), 2000))
		}
	}
}
