package rooms

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/sfu"
)

// Viewers (ViaWHEP) are sent one participant's audio and video on the
// feeds of their one negotiation: the participant they watch
// (JoinRequest.Watch), or, for most, the room's featured speaker: whoever
// spoke loudest last, held for featureHold so that a cough does not cut
// the picture away. Everything here runs on the room's goroutine.

// ViaWHEP marks a WHEP viewer: it needs the subscribe permission, publishes
// nothing, and its session is never renegotiated.
const ViaWHEP = "whep"

// ErrWatchedLeft is the reason a viewer of one participant is closed with
// when that participant leaves.
var ErrWatchedLeft = errors.New("the participant watched left")

// featureHold is the least time the featured speaker stays featured
// before another speaker takes over.
const featureHold = time.Second

// Watch starts sending a viewer what it watches, once its session is
// negotiated (its Peer has its feeds).
func (p *Participant) Watch(ctx context.Context) error {
	r := p.room
	return r.do(ctx, func() {
		if p.left {
			return
		}
		p.watching = true
		if p.watch == "" {
			r.feature(nil, time.Now())
		}
		r.feed(p)
	})
}

// Watched is the id of the participant a viewer watches ("": the featured
// speaker).
func (p *Participant) Watched() string { return p.watch }

// watched is the participant whose media v is sent, nil for none.
func (r *room) watched(v *Participant) *Participant {
	if v.watch == "" {
		return r.featured
	}
	return r.find(v.watch)
}

// feed points v's feeds at the tracks of the participant it watches: for
// each kind, the first it publishes in a codec v takes, unmuted first.
// A speaker-following viewer keeps its picture when the new speaker has
// no camera it can take.
func (r *room) feed(v *Participant) {
	if !v.watching || v.left {
		return
	}
	src := r.watched(v)
	for _, f := range v.peer.Feeds() {
		var pick *sfu.UpTrack
		if src != nil {
			for _, up := range src.published {
				if f.Accepts(up) && (pick == nil || pick.Muted() && !up.Muted()) {
					pick = up
				}
			}
		}
		if pick == nil && v.watch == "" && f.Kind() == webrtc.RTPCodecTypeVideo {
			if cur := f.Source(); cur != nil && r.tracks[cur.ID()] != nil {
				continue
			}
		}
		if err := f.Switch(pick); err != nil {
			v.log.Warn("feed not switched", "kind", f.Kind().String(), "err", err)
		}
	}
}

// feedViewersOf re-feeds the viewers of p (the featured speaker's too,
// when p is featured): its tracks changed.
func (r *room) feedViewersOf(p *Participant) {
	for _, v := range r.parts {
		if v.via == ViaWHEP && (v.watch == p.id || v.watch == "" && r.featured == p) {
			r.feed(v)
		}
	}
}

// feature makes loudest the featured speaker when it is not, unless the
// current one was featured less than featureHold ago; with no featured
// speaker (none yet, or it left), the first participant who publishes
// is. Speaker-following viewers are re-fed on a change.
func (r *room) feature(loudest *Participant, now time.Time) {
	next := r.featured
	switch {
	case loudest != nil && loudest != r.featured:
		if r.featured == nil || now.Sub(r.featuredAt) >= featureHold {
			next = loudest
		}
	case r.featured == nil:
		for _, p := range r.parts {
			if p.via != ViaWHEP && len(p.published) > 0 {
				next = p
				break
			}
		}
	}
	if next == r.featured {
		return
	}
	r.featured, r.featuredAt = next, now
	for _, v := range r.parts {
		if v.via == ViaWHEP && v.watch == "" {
			r.feed(v)
		}
	}
}

// watchedLeft follows p leaving: its viewers are closed, and the featured
// speaker, if it was p, replaced.
func (r *room) watchedLeft(p *Participant) {
	for _, v := range r.parts {
		if v.via == ViaWHEP && v.watch == p.id {
			go v.remove(ErrWatchedLeft) // it leaves through the room: not on its goroutine
		}
	}
	if r.featured == p {
		r.featured = nil
		r.feature(nil, time.Now())
	}
}

// admits checks a newcomer arriving via against the room's limits:
// viewers are counted apart from the participants.
func (r *room) admits(via string) error {
	viewers := 0
	for _, p := range r.parts {
		if p.via == ViaWHEP {
			viewers++
		}
	}
	if via == ViaWHEP {
		if viewers >= r.lim.viewers {
			return fmt.Errorf("%w: %q has %d viewers", ErrRoomFull, r.name, viewers)
		}
		return nil
	}
	if n := len(r.parts) - viewers; n >= r.lim.participants {
		return fmt.Errorf("%w: %q has %d participants", ErrRoomFull, r.name, n)
	}
	return nil
}
