package rooms

import (
	"context"
	"fmt"
	"time"
)

// A participant that joined with a token stays only while a token of its
// holds: at the token's expiry (give or take clockSkew) it is removed with
// ErrTokenExpired. Some time before, it is sent TokenExpiring, and its
// client may present a fresh token (Refresh) that pushes the end back.

// expiryWarning is how long before its removal a participant is sent
// TokenExpiring (at once when less is left).
const expiryWarning = time.Minute

// expiry is a participant's token lifetime: its timers, guarded by mu.
type expiry struct {
	at      time.Time // when the participant's token expires; zero: never
	warn    *time.Timer
	end     *time.Timer
	stopped bool // the participant left: arm nothing more
}

// armExpiry (re)starts p's timers for a token expiring at at. Called with
// p.expiryMu held.
func (p *Participant) armExpiry(at time.Time) {
	e := &p.expiry
	e.at = at
	if e.stopped || at.IsZero() {
		return
	}
	if e.warn != nil {
		e.warn.Stop()
		e.end.Stop()
	}
	end := time.Until(at.Add(clockSkew))
	e.warn = time.AfterFunc(max(0, end-expiryWarning), func() {
		p.send(TokenExpiring{Expires: at})
	})
	e.end = time.AfterFunc(end, func() {
		p.log.Info("token expired: participant removed", "expired", at.UTC().Format(time.RFC3339))
		p.remove(ErrTokenExpired)
	})
}

// stopExpiry ends p's timers for good (it left).
func (p *Participant) stopExpiry() {
	p.expiryMu.Lock()
	defer p.expiryMu.Unlock()
	p.expiry.stopped = true
	if p.expiry.warn != nil {
		p.expiry.warn.Stop()
		p.expiry.end.Stop()
	}
}

// Expires is when the participant's token expires (zero: it joined without
// one, and never expires).
func (p *Participant) Expires() time.Time {
	p.expiryMu.Lock()
	defer p.expiryMu.Unlock()
	return p.expiry.at
}

// Refresh presents a fresh token for the participant, before its current
// one expires: the participant then stays until the new token's expiry.
// The token must open the same room, give the same permissions, and name
// the participant as it is named (if it names anyone); else the error wraps
// ErrUnauthorized (or ErrForbidden for other permissions), and the
// participant still leaves at its current token's expiry. A participant
// that joined without a token has nothing to refresh (ErrInvalid).
func (p *Participant) Refresh(ctx context.Context, token string) (time.Time, error) {
	if p.Expires().IsZero() {
		return time.Time{}, fmt.Errorf("%w: joined without a token: nothing to refresh", ErrInvalid)
	}
	a, err := p.room.reg.authorize(p.room.name, token)
	if err != nil {
		return time.Time{}, err
	}
	switch {
	case a.expires.IsZero():
		return time.Time{}, fmt.Errorf("%w: a token without expiry", ErrUnauthorized)
	case a.name != "" && a.name != p.name:
		return time.Time{}, fmt.Errorf("%w: the token names another participant", ErrUnauthorized)
	case a.perms != p.perms:
		return time.Time{}, fmt.Errorf("%w: the token grants other permissions than the session's: join again with it", ErrForbidden)
	}
	if err := ctx.Err(); err != nil {
		return time.Time{}, err
	}
	p.expiryMu.Lock()
	defer p.expiryMu.Unlock()
	if p.expiry.stopped {
		return time.Time{}, ErrLeft
	}
	p.armExpiry(a.expires)
	p.log.Info("token refreshed", "expires", a.expires.UTC().Format(time.RFC3339))
	return a.expires, nil
}
