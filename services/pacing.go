package services

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"
)

// MaxLoginPadding is the most a failed login is made to wait. It is above
// the verification time of any hash an import is likely to bring (bcrypt
// cost 14 takes about a second) and bounds how long a failure holds its
// request, whatever the estimates say.
const MaxLoginPadding = 2 * time.Second

// maxHashFamilies bounds the estimates kept; the families are the cost
// settings of stored hashes, so there are only a handful.
const maxHashFamilies = 32

// LoginPacer makes every failed login take as long as a verification of the
// slowest hash family seen, so the time of a failure does not tell an
// unknown email from an account whose stored hash is bcrypt or Argon2id of
// other parameters. It keeps a running estimate of each family's
// verification time, as verifications happen, and a failure waits the
// difference between the slowest estimate and its own verification.
//
// The wait is a timer in the request's own goroutine, after the hashing slot
// is released: it costs no CPU and no slot, so padding cannot slow anyone's
// hashing. How many failures wait at once is bounded by how fast the slots
// can verify, times MaxLoginPadding.
type LoginPacer struct {
	mu        sync.Mutex
	estimates map[string]time.Duration
	limit     time.Duration
	// sleep waits d or until ctx ends; tests replace it to see what is asked.
	sleep func(ctx context.Context, d time.Duration)
}

// NewLoginPacer returns a pacer that pads failures by at most limit.
func NewLoginPacer(limit time.Duration) *LoginPacer {
	return &LoginPacer{estimates: map[string]time.Duration{}, limit: limit, sleep: sleepContext}
}

// Observe records one verification of a hash of family that took took
// (hashing only, the wait for a slot excluded). The estimate tracks the
// median of the family's times: each sample moves it by a thirty-second of
// itself, up or down, whatever the sample's size. So the slowest family's own
// failures are as often above the padding as below it (their median is the
// padding's), a lasting change of speed is followed within tens of samples,
// and one slow verification (a busy moment, or an attacker loading the
// machine) moves the padding of every later failure by 3 % at most.
func (p *LoginPacer) Observe(family string, took time.Duration) {
	if family == "" || took <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	est, seen := p.estimates[family]
	switch {
	case !seen && len(p.estimates) < maxHashFamilies:
		p.estimates[family] = took
	case !seen:
	case took > est:
		p.estimates[family] = est + est/32
	case took < est:
		p.estimates[family] = est - est/32
	}
}

// Pad returns how long a failed login whose verification took took must
// still wait: the slowest family's estimate minus took, at most the limit.
func (p *LoginPacer) Pad(took time.Duration) time.Duration {
	p.mu.Lock()
	var slowest time.Duration
	for _, est := range p.estimates {
		slowest = max(slowest, est)
	}
	p.mu.Unlock()
	return min(max(slowest-took, 0), p.limit)
}

// Wait pads a failed login whose verification took took; it returns early
// when ctx ends (the client has gone, nobody is timing the answer).
func (p *LoginPacer) Wait(ctx context.Context, took time.Duration) {
	if d := p.Pad(took); d > 0 {
		p.sleep(ctx, d)
	}
}

func sleepContext(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// LearnHashCosts measures, once, the verification of one stored hash of each
// family present in the database, so failures are padded to the slowest
// family from the start instead of from that family's first login: an
// instance that has just started must not answer a probe of a legacy account
// slower than one of an unknown email. Each family is verified three times
// and the median kept, so one slow start-up moment does not set the padding.
// It returns the families measured.
func (a *Auth) LearnHashCosts(ctx context.Context) ([]string, error) {
	dummy := a.hasher.DummyHash()
	samples, err := a.users.HashSamples(ctx, paramsPrefix(dummy), maxHashFamilies)
	if err != nil {
		return nil, err
	}
	families := []string{}
	for _, hash := range append(samples, dummy) {
		var family string
		var took []time.Duration
		for range 3 {
			// Nobody's password: NUL is refused in every password the API takes.
			v, err := a.hasher.Verify(ctx, "\x00", hash)
			if err != nil || v.Family == "" {
				break
			}
			family, took = v.Family, append(took, v.Took)
		}
		if len(took) == 3 {
			slices.Sort(took)
			a.pacer.Observe(family, took[1])
			families = append(families, family)
		}
	}
	return families, ctx.Err()
}

// paramsPrefix is a PHC hash up to its salt ("$argon2id$v=19$m=…,t=…,p=…$"),
// or the whole string when it is not of that form.
func paramsPrefix(hash string) string {
	parts := strings.SplitAfterN(hash, "$", 5)
	if len(parts) < 5 {
		return hash
	}
	return strings.Join(parts[:4], "")
}
