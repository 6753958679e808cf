package rooms

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"
)

// Resuming a participant: when its socket drops without a close frame (a
// network change, a laptop waking up), the participant stays in its room
// for Config.ResumeGrace, its PeerConnection and its published tracks
// untouched, while nothing reaches its client. A new connection that
// presents the participant's resume token, given in Joined, takes it over:
// its first event is Resumed, the room as it is now. After the grace
// period the participant is removed and everyone is told.

// connRef lets a Conn be swapped atomically.
type connRef struct{ Conn }

// send hands an event to the participant's connection; while it is away,
// the event is dropped (Resumed brings the client up to date).
func (p *Participant) send(ev Event) {
	if c := p.conn.Load(); c != nil {
		c.Send(ev)
	}
}

// Disconnected tells the participant that connection c is gone: cleanly
// (a close frame, or after leave) the participant leaves; otherwise, with
// resume enabled, it waits for a new connection. A connection that was
// already replaced changes nothing. The decision is taken in the room's
// goroutine, where Resume swaps connections.
func (p *Participant) Disconnected(c Conn, clean bool) {
	grace := p.room.reg.cfg.ResumeGrace
	left := false
	_ = p.room.do(context.Background(), func() {
		cur := p.conn.Load()
		if cur == nil || cur.Conn != c || p.left {
			return
		}
		if clean || grace <= 0 {
			left = p.room.leave(p, nil)
			return
		}
		p.conn.Store(nil)
		p.log.Info("connection lost: waiting for the participant to resume", "grace", grace.String())
		p.resumeMu.Lock()
		p.graceTimer = time.AfterFunc(grace, p.graceExpired)
		p.resumeMu.Unlock()
	})
	if left {
		_ = p.peer.Close()
	}
}

// graceExpired removes the participant if no connection took it over. The
// check and the removal happen together in the room's goroutine, where
// Resume swaps connections: a resume that comes as the grace period ends
// either wins (and the participant stays) or finds it gone, never a socket
// attached to a participant that is being removed.
func (p *Participant) graceExpired() {
	left := false
	_ = p.room.do(context.Background(), func() {
		if p.conn.Load() == nil {
			left = p.room.leave(p, ErrResumeExpired)
		}
	})
	if left {
		_ = p.peer.Close()
	}
}

// Away reports whether the participant has lost its connection and waits
// to be resumed.
func (p *Participant) Away() bool { return p.conn.Load() == nil }

// ResumeToken is the secret a new connection presents to take over the
// participant; each resume replaces it. Read it in the room's goroutine,
// or before the participant can be resumed (tests).
func (p *Participant) ResumeToken() string { return p.resumeToken }

// newResumeToken returns prefix and 128 random bits, URL-safe.
func newResumeToken(prefix string) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return prefix + base64.RawURLEncoding.EncodeToString(b[:])
}

// addResumable records p under a new resume token. Called in p's room goroutine.
func (l *Local) addResumable(p *Participant) string {
	token := newResumeToken(l.cfg.ResumePrefix) // fixed at NewLocal
	l.mu.Lock()
	defer l.mu.Unlock()
	l.resumable[token] = p
	return token
}

// dropResumable forgets p's token. Called in p's room goroutine.
func (l *Local) dropResumable(p *Participant) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.resumable[p.resumeToken] == p {
		delete(l.resumable, p.resumeToken)
	}
}

// Resume hands the participant holding token to a new connection. Its
// first event is Resumed. A connection it still has is first probed (a
// Prober): one that answers keeps the participant, and the resume fails
// with ErrStillConnected, the token unspent; one that does not (a half-open
// socket after a network change) is closed.
func (l *Local) Resume(ctx context.Context, token string, c Conn) (*Participant, error) {
	l.mu.Lock()
	p := l.resumable[token]
	l.mu.Unlock()
	if p == nil {
		return nil, fmt.Errorf("%w: no participant to resume with this token", ErrNotFound)
	}
	if old := p.conn.Load(); old != nil {
		if pr, ok := old.Conn.(Prober); ok && pr.Alive(ctx) {
			p.log.Warn("resume refused: the participant's connection still answers")
			return nil, ErrStillConnected
		}
	}
	var err error
	doErr := p.room.do(ctx, func() {
		if p.left || p.resumeToken != token {
			// Left, or another connection resumed it with this very token
			// while the old one was probed: the token is spent.
			err = fmt.Errorf("%w: no participant to resume with this token", ErrNotFound)
			return
		}
		p.resumeMu.Lock()
		if p.graceTimer != nil {
			p.graceTimer.Stop()
			p.graceTimer = nil
		}
		p.resumeMu.Unlock()
		if old := p.conn.Swap(&connRef{c}); old != nil {
			old.Close(ErrResumedElsewhere)
		}
		self := p.room.info(p)
		for i := range self.Tracks {
			if up := p.room.tracks[self.Tracks[i].ID]; up != nil {
				self.Tracks[i].Mid = up.up.Mid()
			}
		}
		// The token is spent: whoever saw it (a log, a proxy) cannot take
		// the participant over again.
		l.dropResumable(p)
		p.resumeToken = l.addResumable(p)
		c.Send(Resumed{Self: self, Others: p.room.infos(p), ResumeToken: p.resumeToken, Recording: p.room.recording})
		// What was announced while the client was away and is still true:
		// who speaks, and which layers of its tracks are needed.
		if len(p.room.speakers) > 0 {
			c.Send(Speakers{IDs: p.room.speakers})
		}
		for _, up := range p.published {
			if rids := up.WantedLayers(); rids != nil {
				c.Send(LayersWanted{Track: up.ID(), RIDs: rids})
			}
		}
		p.log.Info("participant resumed")
	})
	if doErr != nil {
		return nil, doErr
	}
	if err != nil {
		return nil, err
	}
	// An offer sent while the client was away is sent again.
	p.peer.ResendOffer()
	return p, nil
}
