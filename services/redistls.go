package services

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
)

// RedisTLSFiles name the PEM files of a private CA and of a client
// certificate and its key for rediss:// and rediss+sentinel://.
type RedisTLSFiles struct {
	CAFile   string
	CertFile string
	KeyFile  string
}

// LoadRedisTLS returns the TLS settings the files describe, or nil when none
// is named (the system's roots, no client certificate). A server whose
// certificate does not verify against them is refused. It fails when a file
// cannot be read or does not hold what it should.
func LoadRedisTLS(files RedisTLSFiles) (*tls.Config, error) {
	if files == (RedisTLSFiles{}) {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if files.CAFile != "" {
		pem, err := os.ReadFile(files.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read the Redis CA file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, errors.New("the Redis CA file holds no PEM certificate")
		}
	}
	if files.CertFile != "" || files.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load the Redis client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}
