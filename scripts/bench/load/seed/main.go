// Command seed writes many sessions of other users into Redis, in the product's OWN record format,
// for the logout-all and memory benchmarks (scripts/bench-logout-all.sh, scripts/bench-memory.sh).
//
// It does not hard-code the format: it logs a template user in through HTTP (POST /login, with the
// given User-Agent), finds the Redis keys that login created or that name the user's id (the session
// record <prefix><id> and the per-user index), and clones them: every clone user gets a fresh
// random user id and every clone session a fresh random session id, of the same length and alphabet
// as the template's, substituted byte for byte in key names and values (so JSON, gob or any other
// encoding stays valid), with the template's TTL. Output is Redis protocol on stdout, for
// `redis-cli -n DB --pipe`; a description of the template goes to stderr.
//
//	go run ./scripts/bench/load/seed -url http://127.0.0.1:18090 -email t@example.com -password ... \
//	  -prefix benchsess: -db 8 -n 200000 | redis-cli -n 8 --pipe
//
// Only stdlib; a bench tool, so it may SCAN (the product must not).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

type templateKey struct {
	name string
	kind string // string, hash, set, zset, list
	pttl int64
	// content: string value; or flat field/value, member, member/score, element pairs
	value string
	items []string
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		baseURL  = flag.String("url", "http://127.0.0.1:18090", "product base URL (POST /login)")
		email    = flag.String("email", "", "template user's email (must exist)")
		password = flag.String("password", "", "template user's password")
		ua       = flag.String("user-agent", strings.Repeat("Mozilla/5.0 (bench) ", 6), "User-Agent of the template login (default 120 bytes)")
		addr     = flag.String("redis", "127.0.0.1:6379", "Redis address")
		db       = flag.Int("db", 8, "Redis database")
		prefix   = flag.String("prefix", "benchsess:", "the product's SESSION_KEY_PREFIX")
		n        = flag.Int("n", 1000, "number of sessions to write")
		perUser  = flag.Int("per-user", 1, "sessions per clone user")
		extra    = flag.String("tokens", "", "more comma-separated template strings to vary per session")
		describe = flag.Bool("describe", false, "only log in and describe the template (stderr)")
	)
	flag.Parse()
	if *email == "" || *password == "" || *n < 0 || *perUser < 1 {
		return errors.New("-email and -password are required; -n >= 0, -per-user >= 1")
	}
	r, err := dialRedis(*addr, *db)
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	defer r.Close()

	// A first login and POST /logout-all leave the template user with no session, so that the
	// template is exactly one session and that user's index.
	_, cookie, err := login(*baseURL, *email, *password, *ua)
	if err != nil {
		return err
	}
	if err := logoutAll(*baseURL, cookie); err != nil {
		return err
	}
	before, err := r.scanKeys(*prefix + "*")
	if err != nil {
		return err
	}
	userID, _, err := login(*baseURL, *email, *password, *ua)
	if err != nil {
		return err
	}
	after, err := r.scanKeys(*prefix + "*")
	if err != nil {
		return err
	}
	var names []string
	for k := range after {
		if !before[k] || strings.Contains(k, userID) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	if len(names) == 0 {
		return fmt.Errorf("login created no key under %q in db %d", *prefix, *db)
	}
	keys := make([]templateKey, 0, len(names))
	for _, name := range names {
		tk, err := readKey(r, name)
		if err != nil {
			return fmt.Errorf("read %s: %w", name, err)
		}
		keys = append(keys, tk)
	}
	sessTokens := sessionTokens(keys, *prefix, userID)
	for _, t := range strings.Split(*extra, ",") {
		if t = strings.TrimSpace(t); t != "" {
			sessTokens = append(sessTokens, t)
		}
	}
	describeTemplate(os.Stderr, userID, sessTokens, keys)
	if *describe {
		return nil
	}
	return writeClones(os.Stdout, keys, userID, sessTokens, *n, *perUser)
}

// login returns the user's id and the "name=value" of the session cookie.
func login(baseURL, email, password, ua string) (string, string, error) {
	body, _ := json.Marshal(map[string]string{"email": email, "password": password})
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(baseURL, "/")+"/login", bytes.NewReader(body))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", ua)
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", "", fmt.Errorf("POST /login answered %d: %s", resp.StatusCode, raw)
	}
	var out struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.User.ID == "" {
		return "", "", fmt.Errorf("POST /login: no user id in %s", raw)
	}
	cookie := ""
	for _, c := range resp.Cookies() {
		if c.Value != "" && c.MaxAge >= 0 {
			cookie = c.Name + "=" + c.Value
		}
	}
	return out.User.ID, cookie, nil
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func logoutAll(baseURL, cookie string) error {
	req, err := http.NewRequest(http.MethodPost, strings.TrimRight(baseURL, "/")+"/logout-all", nil)
	if err != nil {
		return err
	}
	req.Header.Set("Cookie", cookie)
	resp, err := httpClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST /logout-all answered %d: %s", resp.StatusCode, raw)
	}
	return nil
}

func readKey(r *redisConn, name string) (templateKey, error) {
	tk := templateKey{name: name}
	v, err := r.do("TYPE", name)
	if err != nil {
		return tk, err
	}
	tk.kind, _ = v.(string)
	if v, err = r.do("PTTL", name); err != nil {
		return tk, err
	}
	tk.pttl, _ = v.(int64)
	switch tk.kind {
	case "string":
		v, err = r.do("GET", name)
		tk.value, _ = v.(string)
	case "hash":
		v, err = r.do("HGETALL", name)
		tk.items = asStrings(v)
	case "set":
		v, err = r.do("SMEMBERS", name)
		tk.items = asStrings(v)
	case "zset":
		v, err = r.do("ZRANGE", name, "0", "-1", "WITHSCORES")
		tk.items = asStrings(v)
	case "list":
		v, err = r.do("LRANGE", name, "0", "-1")
		tk.items = asStrings(v)
	default:
		return tk, fmt.Errorf("unsupported type %q", tk.kind)
	}
	return tk, err
}

var (
	segmentSep = regexp.MustCompile(`[:/|.{}]`)
	lowerHex   = regexp.MustCompile(`^[0-9a-f-]+$`)
	upperHex   = regexp.MustCompile(`^[0-9A-F-]+$`)
	base32     = regexp.MustCompile(`^[A-Z2-7=]+$`)
)

// sessionTokens returns the random-looking strings (16+ characters) of the template other than the
// user id: parts of key names (the session id) and the fields or members of the index (a per-session
// handle, the session id), so that every clone session gets its own.
func sessionTokens(keys []templateKey, prefix, userID string) []string {
	seen := map[string]bool{userID: true}
	var out []string
	add := func(s string) {
		if len(s) >= 16 && !strings.Contains(s, userID) && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	for _, k := range keys {
		for _, seg := range segmentSep.Split(strings.TrimPrefix(k.name, prefix), -1) {
			add(seg)
		}
		for j, it := range k.items {
			if k.kind == "zset" && j%2 == 1 {
				continue // a score
			}
			add(it)
		}
	}
	return out
}

func describeTemplate(w io.Writer, userID string, tokens []string, keys []templateKey) {
	fmt.Fprintf(w, "template user id %s; varied per session: %q\n", userID, tokens)
	for _, k := range keys {
		size := len(k.value)
		for _, it := range k.items {
			size += len(it)
		}
		fmt.Fprintf(w, "  key %q type=%s pttl_ms=%d content_bytes=%d\n", k.name, k.kind, k.pttl, size)
		if k.kind == "string" {
			fmt.Fprintf(w, "    value: %s\n", preview(k.value))
		} else {
			fmt.Fprintf(w, "    items: %s\n", preview(strings.Join(k.items, " | ")))
		}
	}
}

func preview(s string) string {
	q := strconv.Quote(s)
	if len(q) > 1200 {
		q = q[:1200] + "…"
	}
	return q
}

func writeClones(out io.Writer, keys []templateKey, userID string, tokens []string, n, perUser int) error {
	w := bufio.NewWriterSize(out, 1<<20)
	for i := 0; i < n; {
		newUser := randomLike(userID)
		for s := 0; s < perUser && i < n; s, i = s+1, i+1 {
			pairs := []string{userID, newUser}
			for _, t := range tokens {
				pairs = append(pairs, t, randomLike(t))
			}
			rep := strings.NewReplacer(pairs...)
			for _, k := range keys {
				writeKey(w, k, rep)
			}
		}
	}
	return w.Flush()
}

func writeKey(w *bufio.Writer, k templateKey, rep *strings.Replacer) {
	name := rep.Replace(k.name)
	args := []string{}
	switch k.kind {
	case "string":
		args = []string{"SET", name, rep.Replace(k.value)}
		if k.pttl > 0 {
			args = append(args, "PX", strconv.FormatInt(k.pttl, 10))
		}
		w.Write(encodeCommand(args...))
		return
	case "hash":
		args = []string{"HSET", name}
	case "set":
		args = []string{"SADD", name}
	case "list":
		args = []string{"RPUSH", name}
	case "zset":
		args = []string{"ZADD", name}
		for j := 0; j+1 < len(k.items); j += 2 { // ZRANGE WITHSCORES is member, score
			args = append(args, k.items[j+1], rep.Replace(k.items[j]))
		}
	}
	if k.kind != "zset" {
		for _, it := range k.items {
			args = append(args, rep.Replace(it))
		}
	}
	if len(args) > 2 {
		w.Write(encodeCommand(args...))
	}
	if k.pttl > 0 {
		w.Write(encodeCommand("PEXPIRE", name, strconv.FormatInt(k.pttl, 10)))
	}
}

// randomLike returns a random string of t's length and alphabet; characters outside the
// alphabet (the dashes of a UUID, base64 padding) stay where they are.
func randomLike(t string) string {
	alpha := "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	switch {
	case lowerHex.MatchString(t):
		alpha = "0123456789abcdef"
	case upperHex.MatchString(t):
		alpha = "0123456789ABCDEF"
	case base32.MatchString(t):
		alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
	}
	b := []byte(t)
	for i, c := range b {
		if strings.IndexByte(alpha, c) < 0 && !isAlnum(c) {
			continue
		}
		b[i] = alpha[rand.IntN(len(alpha))] // bench data: math/rand is enough
	}
	return string(b)
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
