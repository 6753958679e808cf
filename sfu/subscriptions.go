package sfu

import (
	"errors"
	"fmt"
	"maps"

	"github.com/pion/webrtc/v4"
)

// The subscriber side of a Peer's negotiation: which tracks it wants
// (Subscribe, Unsubscribe, Resubscribe), and attaching them to transceivers
// in the stable state (reconcile), numbered as the subscriber numbers them.

// Subscribe starts forwarding up to this peer. The transceiver is added and
// offered asynchronously; the DownTrack is returned at once so that layer
// preferences can be set. Subscribing twice returns the same DownTrack.
func (p *Peer) Subscribe(up *UpTrack) (*DownTrack, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if p.fixed {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: a session negotiated once cannot be sent tracks", ErrNotAllowed)
	}
	d, ok := p.wanted[up.id]
	if !ok {
		d = newDownTrack(up, p.sub)
		p.wanted[up.id] = d
	}
	p.mu.Unlock()
	if !ok {
		p.wake()
	}
	return d, nil
}

// Resubscribe replaces a subscription made before the publisher switched
// the track's codec with one in the new codec (one offer replaces the
// m-line). It returns the subscription, and false when there is none.
func (p *Peer) Resubscribe(up *UpTrack) (*DownTrack, bool) {
	p.mu.Lock()
	d, ok := p.wanted[up.id]
	if !ok || p.closed {
		p.mu.Unlock()
		return nil, false
	}
	if d.srcPT == uint8(up.Codec().PayloadType) {
		p.mu.Unlock()
		return d, true
	}
	next := newDownTrack(up, p.sub)
	next.maxLayer.Store(d.maxLayer.Load())
	p.wanted[up.id] = next
	p.mu.Unlock()
	p.wake()
	return next, true
}

// refuse drops a subscription the client cannot take and queues it for
// the Handler's TrackRefused. Called with negMu held.
func (p *Peer) refuse(d *DownTrack) {
	p.mu.Lock()
	if p.wanted[d.up.id] == d {
		delete(p.wanted, d.up.id)
		p.refused = append(p.refused, d)
	}
	p.mu.Unlock()
}

// reportRefused tells the Handler of refused subscriptions, outside the locks.
func (p *Peer) reportRefused() {
	p.mu.Lock()
	refused := p.refused
	p.refused = nil
	p.mu.Unlock()
	for _, d := range refused {
		p.h.TrackRefused(d.up)
	}
	if len(refused) > 0 {
		p.wake() // detach them
	}
}

// Unsubscribe stops forwarding the track; it reports whether the peer was
// subscribed.
func (p *Peer) Unsubscribe(trackID string) bool {
	p.mu.Lock()
	_, ok := p.wanted[trackID]
	delete(p.wanted, trackID)
	p.mu.Unlock()
	if ok {
		p.wake()
	}
	return ok
}

// DownTrack returns the subscription to a track, if any.
func (p *Peer) DownTrack(trackID string) (*DownTrack, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.wanted[trackID]
	return d, ok
}

// reconcile makes the attached subscriptions match the wanted ones. Called
// with negMu held, in the stable state. It reports whether anything changed.
func (p *Peer) reconcile() bool {
	p.mu.Lock()
	wanted := maps.Clone(p.wanted)
	p.mu.Unlock()

	changed := false
	for id, s := range p.subs {
		if wanted[id] == s.down {
			continue
		}
		delete(p.subs, id)
		s.down.up.removeDown(s.down)
		p.e.unsubscribe(s.down)
		if err := p.pc.RemoveTrack(s.sender); err != nil {
			p.log.Warn("cannot remove track", "track", id, "err", err)
		}
		p.releasing = append(p.releasing, s.tr)
		p.lastCodec[s.tr] = s.down.src
		changed = true
	}
	for id, d := range wanted {
		if _, ok := p.subs[id]; ok {
			continue
		}
		select {
		case <-d.up.closed:
			continue // ended before it could be attached
		default:
		}
		s, err := p.attach(d)
		if err != nil {
			p.log.Warn("cannot subscribe", "track", id, "err", err)
			if errors.Is(err, errCodecRefused) {
				p.refuse(d)
				changed = true // the released transceiver
			}
			continue
		}
		p.subs[id] = s
		d.up.addDown(d)
		p.e.subscribe(d)
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			d.readRTCP(s.sender)
		}()
		changed = true
	}
	if changed {
		downs := make([]*DownTrack, 0, len(p.subs))
		for _, s := range p.subs {
			downs = append(downs, s.down)
		}
		p.sub.downs.Store(&downs)
	}
	return changed
}

// attach puts d on a transceiver: an inactive one of the same kind when the
// session has one (so the SDP does not grow with churn), else a new one.
func (p *Peer) attach(d *DownTrack) (*subscription, error) {
	for i, tr := range p.free {
		// A browser keeps an m-line's decoder: a transceiver is reused
		// only for the codec it carried.
		if last, ok := p.lastCodec[tr]; tr.Kind() != d.up.kind || ok && !sameCodec(last, d.src) {
			continue
		}
		sender, err := p.e.api.NewRTPSender(d, p.pc.SCTP().Transport())
		if err != nil {
			return nil, err
		}
		if err := tr.SetSender(sender, d); err != nil {
			_ = sender.Stop()
			return nil, err
		}
		p.free = append(p.free[:i], p.free[i+1:]...)
		return p.withCodecs(&subscription{down: d, tr: tr, sender: sender})
	}
	tr, err := p.pc.AddTransceiverFromTrack(d, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return nil, err
	}
	return p.withCodecs(&subscription{down: d, tr: tr, sender: tr.Sender()})
}

// errCodecRefused: the subscriber's session cannot take the codec of a
// track. pion's session accepts, for a kind, only the codecs the client's
// descriptions listed: a client that offered only H264 video gets no VP8.
var errCodecRefused = errors.New("the subscriber's session has no such codec")

// withCodecs sets the codec of a new subscription; when the subscriber's
// session cannot take it, the transceiver is released again. Called with
// negMu held.
func (p *Peer) withCodecs(s *subscription) (*subscription, error) {
	if err := p.setCodecs(s.tr, s.down); err != nil {
		if rerr := p.pc.RemoveTrack(s.sender); rerr != nil {
			p.log.Warn("cannot release a refused subscription", "err", rerr)
		}
		p.releasing = append(p.releasing, s.tr)
		return nil, fmt.Errorf("%w: %s: %v", errCodecRefused, s.down.src.MimeType, err)
	}
	return s, nil
}

// setCodecs offers the subscriber only the codec the publisher sends,
// numbered as the subscriber numbers it, and no RTX (see handleNACK for
// why). Called with negMu held.
func (p *Peer) setCodecs(tr *webrtc.RTPTransceiver, d *DownTrack) error {
	c, ok := registeredCodec(d.up.kind, d.src)
	if !ok {
		return fmt.Errorf("%s is not forwarded", d.src.MimeType)
	}
	if c, ok = p.numbers.number(c); !ok {
		return errors.New("no payload type left")
	}
	d.offeredPT.Store(uint32(c.PayloadType) + 1)
	return tr.SetCodecPreferences([]webrtc.RTPCodecParameters{c})
}
