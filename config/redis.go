package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// defaultSentinelPort is Sentinel's own port, for a sentinel named without one.
const defaultSentinelPort = "26379"

// redisURL checks REDIS_URL and, for Sentinel, returns its parts. Messages
// never repeat the URL: it may carry a password.
func (p *parser) redisURL(raw, sentinelPassword string) *RedisSentinel {
	scheme, _, _ := strings.Cut(raw, "://")
	switch {
	case raw == "":
	case scheme == "redis+sentinel" || scheme == "rediss+sentinel":
		s, err := parseSentinelURL(raw)
		if err != nil {
			p.fail("REDIS_URL: %v (want %s://[user:pass@]host:26379,host:26379/<master>[/<db>])", err, scheme)
			return nil
		}
		s.SentinelPassword = sentinelPassword
		return s
	default:
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "redis" && u.Scheme != "rediss") || u.Host == "" {
			p.fail("REDIS_URL must look like redis://[user:pass@]host:port/db, rediss://…, " +
				"redis+sentinel://[user:pass@]host:26379,host:26379/<master>[/<db>] or rediss+sentinel://…")
		}
	}
	if sentinelPassword != "" {
		p.fail("REDIS_SENTINEL_PASSWORD is set but REDIS_URL is not a redis+sentinel:// or rediss+sentinel:// URL")
	}
	return nil
}

// parseSentinelURL takes scheme://[user:pass@]h1:p1,h2:p2/<master>[/<db>]
// apart by hand: net/url does not parse a list of hosts.
func parseSentinelURL(raw string) (*RedisSentinel, error) {
	scheme, rest, _ := strings.Cut(raw, "://")
	if strings.ContainsAny(rest, "?#") {
		return nil, errors.New("query parameters and fragments are not supported")
	}
	authority, path, _ := strings.Cut(rest, "/")
	s := &RedisSentinel{TLS: scheme == "rediss+sentinel"}
	if at := strings.LastIndex(authority, "@"); at >= 0 {
		u, err := url.Parse("redis://" + authority[:at+1] + "localhost")
		if err != nil || u.User == nil {
			return nil, errors.New("the user and password do not parse (percent-encode special characters)")
		}
		s.Username = u.User.Username()
		if pw, ok := u.User.Password(); ok {
			s.Password = pw
		} else {
			// One word before @ is a password, as redis-cli and redis:// read it.
			s.Username, s.Password = "", s.Username
		}
		authority = authority[at+1:]
	}
	for _, host := range strings.Split(authority, ",") {
		addr, err := sentinelAddr(strings.TrimSpace(host))
		if err != nil {
			return nil, err
		}
		s.Addrs = append(s.Addrs, addr)
	}
	master, db, _ := strings.Cut(path, "/")
	master, err := url.PathUnescape(master)
	if err != nil || master == "" {
		return nil, errors.New("the master name is missing")
	}
	s.Master = master
	if db = strings.TrimSuffix(db, "/"); db != "" {
		n, err := strconv.Atoi(db)
		if err != nil || n < 0 || strings.Contains(db, "/") {
			return nil, fmt.Errorf("the database must be a number, got %q", db)
		}
		s.DB = n
	}
	return s, nil
}

// sentinelAddr returns host:port, with Sentinel's port when none is given.
func sentinelAddr(host string) (string, error) {
	if host == "" {
		return "", errors.New("a sentinel address is empty")
	}
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		h, port = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]"), defaultSentinelPort
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 || h == "" || strings.ContainsAny(h, "[]/ ") {
		return "", fmt.Errorf("%q is not a sentinel address (host:port)", host)
	}
	return net.JoinHostPort(h, port), nil
}

// validate checks the settings that only make sense together.
func (r Redis) validate(p *parser) {
	scheme, _, _ := strings.Cut(r.URL, "://")
	tlsScheme := scheme == "rediss" || scheme == "rediss+sentinel"
	if (r.TLS != RedisTLS{}) && !tlsScheme {
		p.fail("REDIS_TLS_CA_FILE, REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE need a rediss:// or rediss+sentinel:// REDIS_URL")
	}
	if (r.TLS.CertFile == "") != (r.TLS.KeyFile == "") {
		p.fail("REDIS_TLS_CERT_FILE and REDIS_TLS_KEY_FILE go together: set both or neither")
	}
	for _, file := range []struct{ key, path string }{{"REDIS_TLS_CA_FILE", r.TLS.CAFile},
		{"REDIS_TLS_CERT_FILE", r.TLS.CertFile}, {"REDIS_TLS_KEY_FILE", r.TLS.KeyFile}} {
		if file.path == "" {
			continue
		}
		f, err := os.Open(file.path)
		if err != nil {
			p.fail("%s: cannot read %s: %v", file.key, file.path, errors.Unwrap(err))
			continue
		}
		_ = f.Close()
	}
	if r.MinReplicas > 0 && r.URL == "" {
		p.fail("REDIS_MIN_REPLICAS needs a REDIS_URL (the in-process store has no replicas)")
	}
}
