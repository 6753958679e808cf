package rooms

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/sfu"
)

// Participant is one member of a room: its client connection and its Peer.
// It implements sfu.Handler, turning the Peer's events into room changes
// and client events.
type Participant struct {
	id            string
	name          string
	autoSubscribe bool
	room          *room
	conn          atomic.Pointer[connRef] // the client's connection; nil while it is away
	peer          *sfu.Peer
	log           *slog.Logger
	joinedAt      time.Time
	perms         Permissions // granted at join (rooms/auth.go)
	codecs        sfu.Codecs  // what the client decodes (nil: anything)
	via           string      // JoinRequest.Via
	watch         string      // JoinRequest.Watch

	removeOnce sync.Once

	resumeToken string     // set when it joined
	expiryMu    sync.Mutex // guards expiry
	expiry      expiry     // rooms/expiry.go
	resumeMu    sync.Mutex // guards graceTimer
	graceTimer  *time.Timer

	// Owned by the room's goroutine:
	published []*sfu.UpTrack // in publication order
	left      bool
	watching  bool // a viewer whose feeds are negotiated (Watch)
}

// maxNameLen bounds a participant's display name, in bytes.
const maxNameLen = 64

// cleanName trims a display name and checks it.
func cleanName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > maxNameLen || strings.ContainsFunc(name, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
		return "", fmt.Errorf("%w: name must be 1-%d printable characters", ErrInvalid, maxNameLen)
	}
	return name, nil
}

// newParticipant creates the participant and its Peer; req.Name is clean.
func newParticipant(r *room, req JoinRequest) (*Participant, error) {
	name := req.Name
	p := &Participant{
		id: sfu.NewID("p-"), name: name, room: r, joinedAt: time.Now(),
		// Permissions: without subscribe, never subscribed automatically.
		autoSubscribe: req.AutoSubscribe && req.access.perms.Subscribe, perms: req.access.perms,
		codecs: req.Codecs, via: req.Via, watch: req.Watch,
	}
	p.conn.Store(&connRef{req.Conn})
	p.log = r.reg.log.With("room", r.name, "participant", p.id, "name", name)
	peer, err := r.reg.peers.NewPeer(sfu.PeerConfig{ID: p.id, Handler: p, Logger: p.log, NoPublish: !req.access.perms.Publish,
		Fixed: req.Via != "", Viewer: req.Via == ViaWHEP})
	if err != nil {
		return nil, fmt.Errorf("new peer: %w", err)
	}
	p.peer = peer
	return p, nil
}

// ID is the participant id, chosen by the server.
func (p *Participant) ID() string { return p.id }

// Via is how the client negotiates (JoinRequest.Via): "" for the
// signaling socket, ViaWHIP for a WHIP publisher, ViaWHEP for a viewer.
func (p *Participant) Via() string { return p.via }

// Name is the display name.
func (p *Participant) Name() string { return p.name }

// Room is the room name.
func (p *Participant) Room() string { return p.room.name }

// Peer is the participant's media side.
func (p *Participant) Peer() *sfu.Peer { return p.peer }

// JoinedAt is when the participant joined.
func (p *Participant) JoinedAt() time.Time { return p.joinedAt }

// Logger carries the room and participant attributes.
func (p *Participant) Logger() *slog.Logger { return p.log }

// Subscribe subscribes to the given tracks of the room. Known ids are
// applied; the unknown ones are returned with an error wrapping ErrNotFound.
// Without the subscribe permission it fails with ErrForbidden.
func (p *Participant) Subscribe(ctx context.Context, ids []string) error {
	if !p.perms.Subscribe { // Permissions
		return fmt.Errorf("%w: no permission to subscribe", ErrForbidden)
	}
	return p.eachTrack(ctx, ids, func(t *track) error {
		p.room.subscribe(p, t)
		return nil
	})
}

// Unsubscribe ends subscriptions, like Subscribe for unknown ids.
func (p *Participant) Unsubscribe(ctx context.Context, ids []string) error {
	return p.eachTrack(ctx, ids, func(t *track) error {
		p.room.unsubscribe(p, t)
		return nil
	})
}

func (p *Participant) eachTrack(ctx context.Context, ids []string, f func(*track) error) error {
	var unknown []string
	err := p.room.do(ctx, func() {
		if p.left {
			unknown = nil
			return
		}
		for _, id := range ids {
			t := p.room.tracks[id]
			if t == nil {
				unknown = append(unknown, id)
				continue
			}
			_ = f(t)
		}
	})
	if err != nil {
		return err
	}
	if len(unknown) > 0 {
		return fmt.Errorf("%w: no track %s in room %q", ErrNotFound, strings.Join(quoteAll(unknown), ", "), p.room.name)
	}
	return nil
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = fmt.Sprintf("%q", v)
	}
	return out
}

// SetLayer sets the highest simulcast layer p wants of a subscribed track.
func (p *Participant) SetLayer(ctx context.Context, trackID, rid string) error {
	var err error
	if doErr := p.room.do(ctx, func() {
		t := p.room.tracks[trackID]
		if t == nil || !t.subs[p] {
			err = fmt.Errorf("%w: not subscribed to track %q", ErrNotFound, trackID)
			return
		}
		d, ok := p.peer.DownTrack(trackID)
		if !ok {
			err = fmt.Errorf("%w: not subscribed to track %q", ErrNotFound, trackID)
			return
		}
		if e := d.SetMaxLayer(rid); e != nil {
			err = fmt.Errorf("%w: %v", ErrInvalid, e)
		}
	}); doErr != nil {
		return doErr
	}
	return err
}

// Mute records that p muted or unmuted one of its tracks, or, with the
// admin permission, anyone's; everyone is told.
func (p *Participant) Mute(ctx context.Context, trackID string, muted bool) error {
	var err error
	if doErr := p.room.do(ctx, func() {
		t := p.room.tracks[trackID]
		switch {
		case t == nil:
			err = fmt.Errorf("%w: no track %q in room %q", ErrNotFound, trackID, p.room.name)
		case t.owner != p && !p.perms.Admin: // Permissions: admins mute anyone's tracks
			err = fmt.Errorf("%w: track %q belongs to another participant", ErrForbidden, trackID)
		default:
			t.up.SetMuted(muted)
			p.room.broadcast(TrackMuted{ID: trackID, Muted: muted}, nil)
			p.log.Info("track muted", "track", trackID, "muted", muted, "owner", t.owner.id)
		}
	}); doErr != nil {
		return doErr
	}
	return err
}

// Leave removes p from its room; everyone is told and its Peer is closed.
func (p *Participant) Leave() { p.leave(nil) }

// remove is Leave initiated by the server: the client is told why.
func (p *Participant) remove(reason error) {
	p.leave(reason)
	if c := p.conn.Load(); c != nil {
		c.Close(reason)
	}
}

func (p *Participant) leave(reason error) {
	p.removeOnce.Do(func() {
		// The room goroutine drops p from the map; closing the Peer (which
		// waits for its goroutines) happens here, outside the room.
		err := p.room.do(context.Background(), func() { p.room.leave(p, reason) })
		if err != nil && !errors.Is(err, errRoomClosed) {
			p.log.Warn("leave", "err", err)
		}
		p.stopExpiry()
		_ = p.peer.Close()
	})
}

// SendOffer implements sfu.Handler.
func (p *Participant) SendOffer(sdp string) { p.send(Offer{SDP: sdp}) }

// SendCandidate implements sfu.Handler.
func (p *Participant) SendCandidate(c *webrtc.ICECandidateInit) { p.send(Candidate{Candidate: c}) }

// TrackPublished implements sfu.Handler.
func (p *Participant) TrackPublished(t *sfu.UpTrack) {
	p.room.post(func() { p.room.publish(p, t) })
}

// TrackUnpublished implements sfu.Handler.
func (p *Participant) TrackUnpublished(t *sfu.UpTrack) {
	p.room.post(func() { p.room.unpublish(t) })
}

// TrackRefused implements sfu.Handler.
func (p *Participant) TrackRefused(t *sfu.UpTrack) {
	p.room.post(func() { p.room.refused(p, t) })
}

// TrackCodecChanged implements sfu.Handler.
func (p *Participant) TrackCodecChanged(t *sfu.UpTrack) {
	p.room.post(func() { p.room.codecChanged(t) })
}

// LayersWanted implements sfu.Handler.
func (p *Participant) LayersWanted(t *sfu.UpTrack, rids []string) {
	p.send(LayersWanted{Track: t.ID(), RIDs: rids})
}

// PeerFailed implements sfu.Handler: the participant is removed.
func (p *Participant) PeerFailed(err error) { p.remove(err) }
