package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"time"
)

// redisConn is the least RESP2 client the seeder needs: one command at a time, replies decoded into
// string, int64, []any, nil or a redisError.
type redisConn struct {
	c  net.Conn
	br *bufio.Reader
}

type redisError string

func (e redisError) Error() string { return "redis: " + string(e) }

func dialRedis(addr string, db int) (*redisConn, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	r := &redisConn{c: c, br: bufio.NewReader(c)}
	if _, err := r.do("SELECT", strconv.Itoa(db)); err != nil {
		c.Close()
		return nil, err
	}
	return r, nil
}

func (r *redisConn) Close() error { return r.c.Close() }

func (r *redisConn) do(args ...string) (any, error) {
	if err := r.c.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return nil, err
	}
	if _, err := r.c.Write(encodeCommand(args...)); err != nil {
		return nil, err
	}
	v, err := readReply(r.br)
	if err != nil {
		return nil, err
	}
	if e, ok := v.(redisError); ok {
		return nil, e
	}
	return v, nil
}

// encodeCommand returns the RESP array of bulk strings for args.
func encodeCommand(args ...string) []byte {
	b := make([]byte, 0, 64)
	b = fmt.Appendf(b, "*%d\r\n", len(args))
	for _, a := range args {
		b = fmt.Appendf(b, "$%d\r\n", len(a))
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}

func readReply(br *bufio.Reader) (any, error) {
	line, err := br.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 {
		return nil, errors.New("redis: short reply line")
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return redisError(body), nil
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(br, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readReply(br); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("redis: unexpected reply %q", line)
}

func asStrings(v any) []string {
	arr, _ := v.([]any)
	out := make([]string, 0, len(arr))
	for _, x := range arr {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// scanKeys lists the keys matching pattern with SCAN (a bench tool, never a request path).
func (r *redisConn) scanKeys(pattern string) (map[string]bool, error) {
	keys := map[string]bool{}
	cursor := "0"
	for {
		v, err := r.do("SCAN", cursor, "MATCH", pattern, "COUNT", "1000")
		if err != nil {
			return nil, err
		}
		arr, _ := v.([]any)
		if len(arr) != 2 {
			return nil, errors.New("redis: bad SCAN reply")
		}
		cursor, _ = arr[0].(string)
		for _, k := range asStrings(arr[1]) {
			keys[k] = true
		}
		if cursor == "0" {
			return keys, nil
		}
	}
}
