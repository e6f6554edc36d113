package services

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/webauthn"
	"github.com/gomodule/redigo/redis"

	"github.com/sessionauth/api/models"
)

// A begun passkey ceremony waits in Redis for its finish under its own key
// (RedisKeys.PasskeyChallenge), found again by the challenge the browser
// signed into clientDataJSON: no cookie is needed between begin and finish.

// challengeTTL is how long a begun ceremony waits for its finish.
const challengeTTL = 5 * time.Minute

// The ceremonies a challenge is begun for; a challenge finishes only its own.
const (
	ceremonyRegister = "register"
	ceremonyLogin    = "login"
	ceremonyReauth   = "reauth"
)

// ceremony is a begun ceremony as kept in Redis until its finish.
type ceremony struct {
	Kind    string               `json:"k"`
	UserID  string               `json:"u,omitempty"` // who began it; "" for a passwordless login
	Session webauthn.SessionData `json:"s"`
}

// keep stores a begun ceremony under its challenge for challengeTTL.
func (p *Passkeys) keep(ctx context.Context, c ceremony) error {
	body, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode passkey ceremony: %w", err)
	}
	return p.redis.Do(ctx, func(ctx context.Context, conn redis.Conn) error {
		_, err := redis.DoContext(conn, ctx, "SET", p.redis.Keys().PasskeyChallenge(c.Session.Challenge), body,
			"PX", challengeTTL.Milliseconds())
		return err
	})
}

// take removes and returns the ceremony begun with challenge (GETDEL: a
// challenge is used once, also by two requests racing with it). Unknown,
// expired or used, or begun for another kind or another user, it is
// invalid_code.
func (p *Passkeys) take(ctx context.Context, challenge, kind, userID string) (ceremony, error) {
	var c ceremony
	if !plausibleChallenge(challenge) {
		return c, models.ErrInvalidCode
	}
	var body []byte
	err := p.redis.Do(ctx, func(ctx context.Context, conn redis.Conn) error {
		var err error
		body, err = redis.Bytes(redis.DoContext(conn, ctx, "GETDEL", p.redis.Keys().PasskeyChallenge(challenge)))
		if errors.Is(err, redis.ErrNil) {
			return models.ErrInvalidCode
		}
		return err
	})
	if err != nil {
		return c, err
	}
	if json.Unmarshal(body, &c) != nil || c.Kind != kind || c.UserID != userID {
		return ceremony{}, models.ErrInvalidCode
	}
	return c, nil
}

// plausibleChallenge reports whether s can be a challenge of ours
// (base64url, no padding), before it becomes part of a Redis key.
func plausibleChallenge(s string) bool {
	if len(s) < 16 || len(s) > 128 {
		return false
	}
	return strings.Trim(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == ""
}
