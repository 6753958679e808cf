package rooms

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/sfu/record"
)

// errRoomClosed reports a room that emptied and closed; Join retries, and
// to anyone else the room is not found.
var errRoomClosed = fmt.Errorf("%w: room closed", ErrRoomNotFound)

// room is owned by the goroutine running run: every field below ops is
// touched only inside functions passed to do or post.
type room struct {
	name   string
	lim    roomLimits
	listed bool // listed rooms stay when empty
	reg    *Local

	ops      chan func()
	quit     chan struct{} // closed by stop (shutdown)
	stopOnce sync.Once
	done     chan struct{} // closed when run returns

	// Owned by run:
	parts    []*Participant    // in join order
	tracks   map[string]*track // by track id
	closed   bool
	speakers []string // last announced, loudest first
	// The speaker viewers following the room see (viewers.go):
	featured   *Participant
	featuredAt time.Time
	// Recording (recording.go):
	recording  bool
	recs       map[*Participant]*record.Session
	recPending bool // a syncRecordings is scheduled
}

// track is one entry of the pub-sub map.
type track struct {
	up    *sfu.UpTrack
	owner *Participant
	subs  map[*Participant]bool
	// unsupported: participants who wanted the track in a codec they do
	// not decode, and were told so.
	unsupported map[*Participant]bool
}

func (t *track) info() TrackInfo {
	return TrackInfo{
		ID: t.up.ID(), Participant: t.owner.id, Kind: t.up.Kind().String(),
		Layers: t.up.Layers(), Muted: t.up.Muted(), Codec: t.up.Codec().MimeType,
	}
}

func newRoom(reg *Local, name string, lim roomLimits, listed bool) *room {
	r := &room{
		name: name, lim: lim, listed: listed, reg: reg,
		ops:    make(chan func(), 64),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
		tracks: map[string]*track{},
		recs:   map[*Participant]*record.Session{},
	}
	// Called with reg.mu held, or before the registry is shared.
	for _, rc := range reg.cfg.Listed {
		if rc.Name == name {
			r.recording = rc.Record && reg.rec != nil
		}
	}
	go r.run()
	return r
}

func (r *room) run() {
	defer close(r.done)
	defer r.stopRecordings()
	tick := time.NewTicker(speakerInterval)
	defer tick.Stop()
	for {
		select {
		case op := <-r.ops:
			op()
			if r.closed {
				r.reg.dropRoom(r)
				return
			}
		case <-tick.C:
			r.updateSpeakers()
		case <-r.quit:
			return
		}
	}
}

const (
	// speakerInterval is how often speakers are ranked: events go out at
	// most this often, and only when the ranking changes.
	speakerInterval = 300 * time.Millisecond
	// speakingLoudness is the smoothed audio level (dB above -127 dBov) from
	// which a participant counts as speaking: -55 dBov, above room noise.
	speakingLoudness = 127 - 55
)

// updateSpeakers ranks the participants speaking, loudest first; on a
// change it tells everyone and gives the loudest one's video the first
// share of subscribers' bandwidth.
func (r *room) updateSpeakers() {
	type speaker struct {
		id   string
		loud float64
		p    *Participant
	}
	var list []speaker
	for _, p := range r.parts {
		loud := 0.0
		for _, up := range p.published {
			if up.Kind() == webrtc.RTPCodecTypeAudio {
				loud = max(loud, up.Loudness())
			}
		}
		if loud >= speakingLoudness {
			list = append(list, speaker{p.id, loud, p})
		}
	}
	slices.SortStableFunc(list, func(a, b speaker) int {
		switch {
		case a.loud > b.loud:
			return -1
		case a.loud < b.loud:
			return 1
		}
		return 0
	})
	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.id
	}
	var loudest *Participant
	if len(list) > 0 {
		loudest = list[0].p
	}
	r.feature(loudest, time.Now())
	if slices.Equal(ids, r.speakers) {
		return
	}
	r.speakers = ids
	r.broadcast(Speakers{IDs: ids}, nil)
	for _, t := range r.tracks {
		prio := 0
		if len(list) > 0 && t.owner == list[0].p && t.up.Kind() == webrtc.RTPCodecTypeVideo {
			prio = 1
		}
		t.up.SetPriority(prio)
	}
}

// stop ends the room's goroutine.
func (r *room) stop() { r.stopOnce.Do(func() { close(r.quit) }) }

// do runs f in the room's goroutine and waits for it.
func (r *room) do(ctx context.Context, f func()) error {
	ran := make(chan struct{})
	select {
	case r.ops <- func() { f(); close(ran) }:
	case <-r.done:
		return errRoomClosed
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-ran:
		return nil
	case <-r.done:
		select {
		case <-ran:
			return nil
		default:
			return errRoomClosed
		}
	}
}

// post runs f in the room's goroutine without waiting for it.
func (r *room) post(f func()) {
	select {
	case r.ops <- f:
	case <-r.done:
	}
}

// broadcast sends ev to every participant but skip.
func (r *room) broadcast(ev Event, skip *Participant) {
	for _, p := range r.parts {
		if p != skip {
			p.send(ev)
		}
	}
}

func (r *room) find(id string) *Participant {
	for _, p := range r.parts {
		if p.id == id {
			return p
		}
	}
	return nil
}

// infos describes the participants but skip.
func (r *room) infos(skip *Participant) []ParticipantInfo {
	out := make([]ParticipantInfo, 0, len(r.parts))
	for _, p := range r.parts {
		if p != skip {
			out = append(out, r.info(p))
		}
	}
	return out
}

func (r *room) info(p *Participant) ParticipantInfo {
	info := ParticipantInfo{ID: p.id, Name: p.name, Tracks: []TrackInfo{}, Via: p.via}
	for _, up := range p.published {
		if t := r.tracks[up.ID()]; t != nil {
			info.Tracks = append(info.Tracks, t.info())
		}
	}
	return info
}

func (r *room) join(ctx context.Context, req JoinRequest) (*Participant, error) {
	var (
		p   *Participant
		err error
	)
	doErr := r.do(ctx, func() {
		if err = r.admits(req.Via); err != nil {
			return
		}
		if w := r.find(req.Watch); req.Watch != "" && (w == nil || w.via == ViaWHEP) {
			err = fmt.Errorf("%w: no participant %q in room %q", ErrNotFound, req.Watch, r.name)
			return
		}
		p, err = newParticipant(r, req)
		if err != nil {
			return
		}
		r.parts = append(r.parts, p)
		p.resumeToken = r.reg.addResumable(p)
		p.send(Joined{Self: r.info(p), Others: r.infos(p), ResumeToken: p.resumeToken, Recording: r.recording})
		if req.Via == "" {
			// A WHIP publisher has no way to refresh its token: the token
			// admits it, and the session outlives it.
			p.expiryMu.Lock()
			p.armExpiry(req.access.expires) // after Joined: its warning may be due at once
			p.expiryMu.Unlock()
		}
		r.broadcast(ParticipantJoined{Participant: r.info(p)}, p)
		r.updateAudiences()
		if p.autoSubscribe {
			for _, t := range r.sortedTracks() {
				r.subscribe(p, t)
			}
		}
		p.log.Info("participant joined", "participants", len(r.parts))
	})
	if doErr != nil {
		return nil, doErr
	}
	return p, err
}

// sortedTracks lists the tracks in publication order of their owners, for
// deterministic offers.
func (r *room) sortedTracks() []*track {
	out := make([]*track, 0, len(r.tracks))
	for _, p := range r.parts {
		for _, up := range p.published {
			if t := r.tracks[up.ID()]; t != nil {
				out = append(out, t)
			}
		}
	}
	return out
}

func (r *room) subscribe(p *Participant, t *track) {
	if t.subs[p] || !p.perms.Subscribe { // Permissions: never subscribed without subscribe
		return
	}
	if c := t.up.Codec(); !p.codecs.Decodes(c.RTPCodecCapability) {
		if t.unsupported == nil {
			t.unsupported = map[*Participant]bool{}
		}
		if !t.unsupported[p] {
			t.unsupported[p] = true
			p.send(TrackUnsupported{ID: t.up.ID(), Codec: c.MimeType})
			p.log.Info("track in a codec the participant does not decode", "track", t.up.ID(), "codec", c.MimeType)
		}
		return
	}
	delete(t.unsupported, p)
	if _, err := p.peer.Subscribe(t.up); err != nil {
		p.log.Warn("subscribe failed", "track", t.up.ID(), "err", err)
		return
	}
	t.subs[p] = true
}

func (r *room) unsubscribe(p *Participant, t *track) {
	delete(t.unsupported, p)
	if !t.subs[p] {
		return
	}
	delete(t.subs, p)
	p.peer.Unsubscribe(t.up.ID())
}

// publish adds a track to the pub-sub map: everyone is told, auto-subscribers subscribed.
func (r *room) publish(p *Participant, up *sfu.UpTrack) {
	if p.left || r.tracks[up.ID()] != nil {
		return
	}
	t := &track{up: up, owner: p, subs: map[*Participant]bool{}}
	r.tracks[up.ID()] = t
	p.published = append(p.published, up)
	info := t.info()
	for _, q := range r.parts {
		ev := TrackPublished{Track: info}
		if q == p {
			ev.Track.Mid = up.Mid()
		}
		q.send(ev)
	}
	for _, q := range r.parts {
		if q != p && q.autoSubscribe {
			r.subscribe(q, t)
		}
	}
	r.feature(nil, time.Now())
	r.feedViewersOf(p)
	r.scheduleRecordings()
}

// unpublish removes a track: subscribers unsubscribed, everyone told.
func (r *room) unpublish(up *sfu.UpTrack) {
	t := r.tracks[up.ID()]
	if t == nil {
		return
	}
	delete(r.tracks, up.ID())
	t.owner.published = slices.DeleteFunc(t.owner.published, func(u *sfu.UpTrack) bool { return u == up })
	for q := range t.subs {
		q.peer.Unsubscribe(up.ID())
	}
	r.broadcast(TrackUnpublished{ID: up.ID()}, nil)
	t.owner.log.Info("track unpublished", "track", up.ID())
	r.feedViewersOf(t.owner)
	r.scheduleRecordings()
}

// leave removes p from the pub-sub map and the room; everyone is told. It
// reports whether p was still in the room.
func (r *room) leave(p *Participant, reason error) bool {
	if p.left {
		return false
	}
	p.left = true
	for _, up := range slices.Clone(p.published) {
		r.unpublish(up)
	}
	for _, t := range r.tracks {
		delete(t.subs, p)
		delete(t.unsupported, p)
	}
	r.parts = slices.DeleteFunc(r.parts, func(q *Participant) bool { return q == p })
	r.watchedLeft(p)
	if s := r.recs[p]; s != nil {
		s.Stop()
		delete(r.recs, p)
	}
	r.updateAudiences()
	r.reg.dropResumable(p)
	r.broadcast(ParticipantLeft{ID: p.id}, nil)
	p.log.Info("participant left", "reason", reasonText(reason), "participants", len(r.parts),
		"duration", time.Since(p.joinedAt).Round(time.Second).String())
	if len(r.parts) == 0 && !r.listed {
		r.closed = true
	}
	return true
}

// updateAudiences tells every participant's Peer what the others, who may
// receive its tracks, decode.
func (r *room) updateAudiences() {
	for _, p := range r.parts {
		audience := make([]sfu.Codecs, 0, len(r.parts))
		for _, q := range r.parts {
			if q != p && q.perms.Subscribe {
				audience = append(audience, q.codecs)
			}
		}
		p.peer.SetAudience(audience)
	}
}

// refused follows a subscription p's client could not take (the codec is
// not in its session): p is told, as for a codec it said it does not decode.
func (r *room) refused(p *Participant, up *sfu.UpTrack) {
	t := r.tracks[up.ID()]
	if t == nil || !t.subs[p] {
		return
	}
	delete(t.subs, p)
	if t.unsupported == nil {
		t.unsupported = map[*Participant]bool{}
	}
	t.unsupported[p] = true
	c := up.Codec().MimeType
	p.send(TrackUnsupported{ID: up.ID(), Codec: c})
	p.log.Info("subscription refused by the client", "track", up.ID(), "codec", c)
}

// codecChanged follows a publisher's switch to another codec: everyone is
// told, subscriptions move to the new codec, and those who could not
// decode the old one (or cannot decode the new one) are subscribed (or
// told).
func (r *room) codecChanged(up *sfu.UpTrack) {
	t := r.tracks[up.ID()]
	if t == nil {
		return
	}
	if s := r.recs[t.owner]; s != nil {
		// The file's header names the old codec: a new file follows.
		s.Stop()
		delete(r.recs, t.owner)
		r.scheduleRecordings()
	}
	info := t.info()
	for _, q := range r.parts {
		ev := TrackUpdated{Track: info}
		if q == t.owner {
			ev.Track.Mid = up.Mid()
		}
		q.send(ev)
	}
	for _, q := range r.parts {
		switch {
		case q == t.owner:
		case t.subs[q] && q.codecs.Decodes(up.Codec().RTPCodecCapability):
			q.peer.Resubscribe(up)
		case t.subs[q]:
			r.unsubscribe(q, t)
			r.subscribe(q, t) // tells q why not
		case t.unsupported[q]:
			delete(t.unsupported, q)
			r.subscribe(q, t)
		}
	}
	r.feedViewersOf(t.owner)
	t.owner.log.Info("track codec changed", "track", up.ID(), "codec", up.Codec().MimeType)
}

func reasonText(err error) string {
	if err == nil {
		return "left"
	}
	return err.Error()
}
