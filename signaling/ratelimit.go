package signaling

import "time"

// rateLimiter is a token bucket for one socket's messages: rate a second,
// bursts of twice that. It counts what it refuses: a client that keeps
// sending far over its allowance is flooding.
type rateLimiter struct {
	rate    float64
	burst   float64
	tokens  float64
	last    time.Time
	refused float64 // refusals, decaying like the tokens refill
}

type rateResult int

const (
	rateOK    rateResult = iota
	rateOver             // refuse this message
	rateFlood            // close the socket
)

func newRateLimiter(perSecond int) *rateLimiter {
	r := float64(perSecond)
	return &rateLimiter{rate: r, burst: 2 * r, tokens: 2 * r}
}

func (l *rateLimiter) take(now time.Time) rateResult {
	if !l.last.IsZero() {
		dt := now.Sub(l.last).Seconds()
		l.tokens = min(l.burst, l.tokens+dt*l.rate)
		l.refused = max(0, l.refused-dt*l.rate)
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		return rateOK
	}
	l.refused++
	if l.refused > 5*l.rate {
		return rateFlood
	}
	return rateOver
}
