package sfu

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/webrtc/v4"
)

// A viewer (PeerConfig.Viewer) is a session negotiated once, from the
// client's offer, that only receives: a WHEP player. Each audio or video
// section its offer receives on becomes a Feed: one sender, one SSRC, one
// continuous stream, whose source the caller switches among the room's
// tracks (the active speaker, or whatever one participant publishes) with
// Switch. The server never renegotiates a viewer, so a feed stays bound to
// its m-line and only its source changes.
//
// A feed forwards through an ordinary DownTrack of its current source; a
// switch hands the outgoing stream's numbering (sequence numbers,
// timestamps, rollover counter) from the old DownTrack to a new one, which
// starts at the new source's next keyframe. The forwarding path is the
// DownTrack's, unchanged: nothing per packet knows of feeds.

// Feed is one receiving section of a viewer's session.
type Feed struct {
	p    *Peer
	kind webrtc.RTPCodecType
	tr   *webrtc.RTPTransceiver

	// base is the binding negotiation settled, with the payload type of
	// the first codec (Bind); codecs are all the section's codecs.
	base   atomic.Pointer[binding]
	codecs atomic.Pointer[[]webrtc.RTPCodecParameters]

	mu  sync.Mutex                // serializes Switch
	cur atomic.Pointer[DownTrack] // the current source's DownTrack; nil: none
}

// ErrNoFeed reports a viewer's offer with no audio or video section to
// send on.
var ErrNoFeed = errors.New("the offer receives no audio or video")

// Feeds returns the viewer's feeds, audio first (nil for other peers or
// before the viewer's offer).
func (p *Peer) Feeds() []*Feed {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*Feed(nil), p.feeds...)
}

// addFeeds puts a sending transceiver on the first audio and the first
// video section the viewer's offer receives on, before pion reads the
// offer (pion pairs a receiving section with an unpaired local sender of
// its kind). Called with negMu held, on the first offer only.
func (p *Peer) addFeeds(infos []mediaInfo) error {
	var feeds []*Feed
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		for _, m := range infos {
			if m.kind != kind || !m.receiving {
				continue
			}
			f := &Feed{p: p, kind: kind}
			// The section's codecs the server forwards, as the viewer
			// numbers them.
			var offered []webrtc.RTPCodecParameters
			for _, c := range m.codecs {
				if supported(kind, c.RTPCodecCapability) {
					offered = append(offered, c)
				}
			}
			if len(offered) == 0 {
				return fmt.Errorf("%w: media section %q offers no codec the server forwards", ErrBadSDP, m.mid)
			}
			tr, err := p.pc.AddTransceiverFromTrack(f, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
			if err != nil {
				return fmt.Errorf("feed: %w", err)
			}
			// The answer carries the forwarded codecs without RTX: a feed
			// resends on its media SSRC, as a DownTrack does (handleNACK).
			if err := tr.SetCodecPreferences(offered); err != nil {
				return fmt.Errorf("feed codecs: %w", err)
			}
			f.tr = tr
			feeds = append(feeds, f)
			break
		}
	}
	if len(feeds) == 0 {
		return fmt.Errorf("%w: %w", ErrBadSDP, ErrNoFeed)
	}
	p.mu.Lock()
	p.feeds = feeds
	p.mu.Unlock()
	return nil
}

// startFeeds serves the feeds' RTCP once they are negotiated.
func (p *Peer) startFeeds() {
	for _, f := range p.Feeds() {
		sender := f.tr.Sender()
		if sender == nil {
			continue
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			serveRTCP(sender, f.cur.Load)
		}()
	}
}

// closeFeeds detaches the feeds from their sources. Called by Close with
// negMu held.
func (p *Peer) closeFeeds() {
	for _, f := range p.feeds {
		if d := f.cur.Load(); d != nil {
			d.up.removeDown(d)
		}
	}
}

// Kind is audio or video.
func (f *Feed) Kind() webrtc.RTPCodecType { return f.kind }

// ID is the feed's track id, its kind (webrtc.TrackLocal).
func (f *Feed) ID() string { return f.kind.String() }

// StreamID is the viewer's participant id: audio and video are one stream
// to the player (webrtc.TrackLocal).
func (f *Feed) StreamID() string { return f.p.id }

// RID is empty (webrtc.TrackLocal).
func (f *Feed) RID() string { return "" }

// Bind keeps what negotiation settled: every codec of the section, for
// sources in any of them (webrtc.TrackLocal).
func (f *Feed) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	cs := ctx.CodecParameters()
	if len(cs) == 0 {
		return webrtc.RTPCodecParameters{}, fmt.Errorf("%w: no codec in common for the %s feed", ErrBadSDP, f.kind)
	}
	f.codecs.Store(&cs)
	f.base.Store(newBinding(ctx, uint8(cs[0].PayloadType)))
	return cs[0], nil
}

// Unbind stops the feed (webrtc.TrackLocal).
func (f *Feed) Unbind(webrtc.TrackLocalContext) error {
	f.base.Store(nil)
	if d := f.cur.Load(); d != nil {
		d.bound.Store(nil)
	}
	return nil
}

// bindingFor is the feed's binding for a source in codec c, nil when the
// viewer did not take c.
func (f *Feed) bindingFor(c webrtc.RTPCodecParameters) *binding {
	base, cs := f.base.Load(), f.codecs.Load()
	if base == nil || cs == nil {
		return nil
	}
	for _, n := range *cs {
		if strings.EqualFold(n.MimeType, c.MimeType) && fmtpCompatible(c.MimeType, n.SDPFmtpLine, c.SDPFmtpLine) {
			b := *base
			b.pt = uint8(n.PayloadType)
			return &b
		}
	}
	return nil
}

// Accepts reports whether the viewer takes up's codec.
func (f *Feed) Accepts(up *UpTrack) bool {
	return up.kind == f.kind && f.bindingFor(up.Codec()) != nil
}

// Source is the track being forwarded, nil for none.
func (f *Feed) Source() *UpTrack {
	if d := f.cur.Load(); d != nil {
		return d.up
	}
	return nil
}

// errFeedCodec: the viewer's section has no codec of the source's.
var errFeedCodec = errors.New("the viewer does not take the codec")

// Switch makes up the feed's source (nil: none). The viewer's stream goes
// on without a break in its numbering, from up's next keyframe, which is
// asked for. Switching to the current source does nothing, unless the
// publisher changed its codec since. It fails when the viewer does not
// take up's codec, and the feed keeps its source.
func (f *Feed) Switch(up *UpTrack) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	old := f.cur.Load()
	switch {
	case old == nil && up == nil:
		return nil
	case old != nil && old.up == up && old.srcPT == uint8(up.Codec().PayloadType):
		return nil
	case f.p.isClosed():
		return ErrClosed
	}
	var next *DownTrack
	if up != nil {
		if up.kind != f.kind {
			return fmt.Errorf("%w: a %s feed cannot send %s", ErrNotAllowed, f.kind, up.kind)
		}
		next = newDownTrack(up, f.p.sub)
		b := f.bindingFor(next.src)
		if b == nil {
			return fmt.Errorf("%w: %s", errFeedCodec, next.src.MimeType)
		}
		next.bound.Store(b)
	}
	p := f.p
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.isClosed() {
		return ErrClosed
	}
	if old != nil {
		old.up.removeDown(old)
		old.up.fwdMu.Lock() // waits out a fan-out that still holds old
		if next != nil {
			next.continueFrom(old)
		}
		old.bound.Store(nil)
		old.up.fwdMu.Unlock()
		p.e.unsubscribe(old)
	}
	f.cur.Store(next)
	downs := make([]*DownTrack, 0, len(p.feeds))
	for _, g := range p.feeds {
		if d := g.cur.Load(); d != nil {
			downs = append(downs, d)
		}
	}
	p.sub.downs.Store(&downs)
	if next != nil {
		// Its first packet that is not a keyframe asks for one, of the
		// layer it wants.
		up.addDown(next)
		p.e.subscribe(next)
	}
	src := "none"
	if up != nil {
		src = up.id
	}
	p.event("%s feed switched to %s", f.kind, src)
	return nil
}

// continueFrom makes d's stream go on where old's stopped: the same
// sequence numbers, timestamps and rollover counter, the same SRTP context,
// and the counts its sender reports carry. old no longer forwards (its
// track no longer lists it) and its forwarding lock is held; d is not yet
// shared.
func (d *DownTrack) continueFrom(old *DownTrack) {
	d.packets.Store(old.packets.Load())
	d.bytes.Store(old.bytes.Load())
	d.rw.sent, d.rw.lastSeq, d.rw.lastTS, d.rw.lastAt = old.rw.sent, old.rw.lastSeq, old.rw.lastTS, old.rw.lastAt
	d.outHigh.Store(old.outHigh.Load())
	d.fwdSeal = old.fwdSeal
	old.fwdSeal = sealer{}
}
