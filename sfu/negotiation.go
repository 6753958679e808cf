package sfu

import (
	"fmt"
	"strings"
	"time"

	"github.com/pion/webrtc/v4"
)

// Negotiation: the server's offers (negotiate), the client's offers and
// answers, and the candidates of both sides. Everything that changes the
// session holds the peer's negMu.

// negotiate attaches and detaches subscriptions and, when something
// changed, sends an offer. It does nothing while an offer is outstanding:
// the answer wakes it again, so changes that arrive meanwhile are coalesced.
func (p *Peer) negotiate() {
	p.negotiateLocked()
	p.reportRefused()
}

func (p *Peer) negotiateLocked() {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.isClosed() || p.fixed || p.pc.SignalingState() != webrtc.SignalingStateStable {
		return
	}
	if p.reconcile() {
		p.needOffer = true
	}
	if p.reconsiderCodecs() {
		p.needOffer = true
	}
	if !p.needOffer {
		return
	}
	offer, err := p.pc.CreateOffer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(offer)
	}
	if err != nil {
		if p.pc.ConnectionState() == webrtc.PeerConnectionStateClosed {
			return // closed under us (the client's DTLS close): nothing to negotiate
		}
		p.log.Error("negotiation failed: cannot create offer", "err", err)
		return
	}
	p.needOffer = false
	p.numbers.learn(offer.SDP)
	p.offered = append(p.offered, p.releasing...)
	p.releasing = nil
	p.log.Debug("offer sent", "tracks", len(p.subs))
	p.event("server offer sent (%d subscriptions)", len(p.subs))
	p.offerAt = time.Now()
	p.h.SendOffer(offer.SDP)
	p.localDescriptionSent()
}

// HandleOffer applies a client offer and hands the answer to reply before
// any candidate of this negotiation is sent. It returns ErrOfferCollision
// (and does nothing) when the server's own offer is outstanding, and an
// error wrapping ErrBadSDP for an offer it cannot accept; the session is
// then unchanged.
func (p *Peer) HandleOffer(sdp string, reply func(answer string)) error {
	start := time.Now()
	p.awaitICEStart()
	p.negMu.Lock()
	if p.isClosed() {
		p.negMu.Unlock()
		return ErrClosed
	}
	// A malformed offer is refused as such, collision or not.
	infos, err := parseDescription(sdp, nil, mids(p.pc.CurrentRemoteDescription()))
	if err != nil {
		p.negMu.Unlock()
		p.event("client offer refused: %v", err)
		p.log.Info("negotiation failed: client offer refused", "err", err)
		return err
	}
	switch st := p.pc.SignalingState(); st {
	case webrtc.SignalingStateStable:
	case webrtc.SignalingStateHaveLocalOffer:
		p.negMu.Unlock()
		p.event("client offer ignored: collides with the server's")
		return ErrOfferCollision
	default:
		p.negMu.Unlock()
		err := fmt.Errorf("%w: cannot take an offer in signaling state %s", ErrBadSDP, st)
		p.event("client offer refused: %v", err)
		p.log.Info("negotiation failed: client offer refused", "err", err)
		return err
	}
	added, removed, err := p.applyOffer(sdp, infos, reply)
	p.negMu.Unlock()
	if err != nil {
		p.event("client offer refused: %v", err)
		p.log.Info("negotiation failed: client offer refused", "err", err)
	} else {
		p.event("client offer answered (+%d -%d tracks)", len(added), len(removed))
		p.updateRoute() // the client may declare header encryption anew
		if f := p.e.cfg.OnNegotiation; f != nil {
			f("client-offer", time.Since(start))
		}
	}
	for _, t := range removed {
		t.close()
		p.e.untrack(t)
		p.h.TrackUnpublished(t)
	}
	for _, t := range added {
		p.h.TrackPublished(t)
	}
	p.wake() // changes that waited for the stable state
	return err
}

// iceStartWait bounds how long a client offer waits for ICE to start.
const iceStartWait = 2 * time.Second

// awaitICEStart holds a renegotiating offer until ICE has started. After
// the first negotiation pion hands the client's ICE credentials to its ICE
// agent asynchronously; an offer applied before that reads to pion as new
// credentials, an ICE restart, and it answers with new ones of its own,
// which Firefox refuses ("Remote description indicates ICE restart but
// offer did not request ICE restart"). It happens when a client answers the
// server's first offer and offers at once, as Firefox does on joining late.
func (p *Peer) awaitICEStart() {
	if p.pc.RemoteDescription() == nil {
		return // the first negotiation: nothing to compare with yet
	}
	t := time.NewTimer(iceStartWait)
	defer t.Stop()
	select {
	case <-p.iceStarted:
	case <-p.done:
	case <-t.C:
	}
}

func (p *Peer) applyOffer(sdp string, infos []mediaInfo, reply func(string)) (added, removed []*UpTrack, err error) {
	// The client may send on a transceiver the server sends on (a browser's
	// addTrack reuses one); that is not a publication.
	ours := map[string]bool{}
	for _, s := range p.subs {
		ours[s.tr.Mid()] = true
	}
	for _, list := range [][]*webrtc.RTPTransceiver{p.free, p.releasing, p.offered} {
		for _, tr := range list {
			ours[tr.Mid()] = true
		}
	}
	publishing := 0
	for _, m := range infos {
		if m.sending && !ours[m.mid] {
			publishing++
		}
	}
	if publishing > 0 && p.noPublish {
		return nil, nil, fmt.Errorf("%w: this participant may not publish (%d sending sections)", ErrNotAllowed, publishing)
	}
	if publishing > p.e.cfg.MaxTracksPerPeer {
		return nil, nil, fmt.Errorf("%w: %d tracks (at most %d)", ErrTooManyTracks, publishing, p.e.cfg.MaxTracksPerPeer)
	}
	firstViewer := p.viewer && p.pc.RemoteDescription() == nil
	if firstViewer {
		if err := p.addFeeds(infos); err != nil {
			return nil, nil, err
		}
	}

	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		if st := p.pc.SignalingState(); st != webrtc.SignalingStateStable {
			// pion rejected it after changing state: the session cannot recover.
			p.fail(fmt.Errorf("%w: offer left the connection in %s: %v", ErrBadSDP, st, err))
		}
		return nil, nil, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	p.numbers.learn(sdp)

	p.mu.Lock()
	for _, m := range infos {
		if m.kind == 0 || ours[m.mid] {
			continue
		}
		t, ok := p.published[m.mid]
		switch {
		case ok && !m.sending:
			delete(p.published, m.mid)
			removed = append(removed, t)
		case !ok && m.sending:
			codec, _, _ := chooseCodec(m.kind, m.codecs, p.loadAudience())
			t = newUpTrack(p, m, codec)
			p.published[m.mid] = t
			added = append(added, t)
			p.e.track(t)
		}
	}
	p.mu.Unlock()
	for _, t := range added {
		// Answer with the one codec the server will forward, so the client
		// cannot switch to another mid-stream.
		for _, tr := range p.pc.GetTransceivers() {
			if tr.Mid() == t.mid {
				for _, m := range infos {
					if m.mid == t.mid {
						if err := tr.SetCodecPreferences(withRTX(t.Codec(), m.codecs)); err != nil {
							p.log.Debug("codec preferences not applied", "mid", t.mid, "err", err)
						}
					}
				}
			}
		}
	}

	answer, err := p.pc.CreateAnswer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(answer)
	}
	if err != nil {
		p.fail(fmt.Errorf("cannot answer: %w", err))
		return added, removed, fmt.Errorf("answer: %w", err)
	}
	p.numbers.learn(answer.SDP)
	p.applyRemoteCandidates()
	reply(answer.SDP)
	p.localDescriptionSent()
	if firstViewer {
		p.startFeeds()
	}
	for _, t := range added {
		p.log.Info("track published", "track", t.id, "kind", t.kind.String(), "codec", t.Codec().MimeType, "layers", strings.Join(t.rids, ","))
	}
	return added, removed, nil
}

// RemoteDescription is the client's description in effect ("" before the
// first negotiation), with the candidates pion has learnt.
func (p *Peer) RemoteDescription() string {
	if d := p.pc.CurrentRemoteDescription(); d != nil {
		return d.SDP
	}
	return ""
}

// ResendOffer sends the outstanding server offer again, if there is one:
// the client may have missed it (its connection to the server changed).
func (p *Peer) ResendOffer() {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		return
	}
	if d := p.pc.PendingLocalDescription(); d != nil {
		p.event("server offer sent again")
		p.h.SendOffer(d.SDP)
	}
}

// HandleAnswer applies the client's answer to the outstanding server offer.
func (p *Peer) HandleAnswer(sdp string) error {
	switched, err := p.handleAnswer(sdp)
	p.reportRefused()
	p.wake()
	for _, u := range switched {
		p.h.TrackCodecChanged(u)
	}
	return err
}

func (p *Peer) handleAnswer(sdp string) ([]*UpTrack, error) {
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.isClosed() {
		return nil, ErrClosed
	}
	if p.pc.SignalingState() != webrtc.SignalingStateHaveLocalOffer {
		p.event("client answer refused: no offer outstanding")
		p.log.Info("negotiation failed: answer with no offer outstanding")
		return nil, ErrNoPendingOffer
	}
	infos, err := parseDescription(sdp, mids(p.pc.PendingLocalDescription()), nil)
	if err != nil {
		p.event("client answer refused: %v", err)
		p.log.Info("negotiation failed: client answer refused", "err", err)
		return nil, err
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		p.event("client answer refused: %v", err)
		p.log.Info("negotiation failed: client answer refused", "err", err)
		return nil, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	p.numbers.learn(sdp)
	p.event("client answer applied")
	p.updateRoute()
	if f := p.e.cfg.OnNegotiation; f != nil {
		f("server-offer", time.Since(p.offerAt))
	}
	p.free = append(p.free, p.offered...)
	p.offered = nil
	p.applyRemoteCandidates()
	for _, s := range p.subs {
		if s.down.refused.Load() {
			p.refuse(s.down)
		}
	}
	return p.settleSwitches(infos), nil
}

// maxPendingCandidates bounds the candidates kept before a remote description.
const maxPendingCandidates = 64

// AddCandidate applies a remote ICE candidate; nil or an empty candidate
// marks the end of the client's candidates.
func (p *Peer) AddCandidate(c *webrtc.ICECandidateInit) error {
	if c == nil || c.Candidate == "" {
		return nil
	}
	s := strings.TrimPrefix(c.Candidate, "a=")
	if !strings.HasPrefix(s, "candidate:") || len(s) > 1024 {
		return fmt.Errorf("%w: %.40q is not a candidate line", ErrBadCandidate, c.Candidate)
	}
	p.negMu.Lock()
	defer p.negMu.Unlock()
	if p.isClosed() {
		return ErrClosed
	}
	if p.pc.RemoteDescription() == nil {
		if len(p.remoteCands) >= maxPendingCandidates {
			return fmt.Errorf("%w: too many candidates before an offer or answer", ErrBadCandidate)
		}
		p.remoteCands = append(p.remoteCands, *c)
		return nil
	}
	if err := p.pc.AddICECandidate(*c); err != nil {
		return fmt.Errorf("%w: %v", ErrBadCandidate, err)
	}
	return nil
}

// applyRemoteCandidates applies candidates that came before the remote
// description. Called with negMu held.
func (p *Peer) applyRemoteCandidates() {
	for _, c := range p.remoteCands {
		if err := p.pc.AddICECandidate(c); err != nil {
			p.log.Debug("early candidate rejected", "err", err)
		}
	}
	p.remoteCands = nil
}

// onCandidate forwards local candidates, holding them until the description
// they belong to has been handed out.
func (p *Peer) onCandidate(c *webrtc.ICECandidate) {
	var init *webrtc.ICECandidateInit
	if c != nil {
		j := c.ToJSON()
		init = &j
	}
	p.mu.Lock()
	if !p.descSent {
		p.candQueue = append(p.candQueue, init)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	p.h.SendCandidate(init)
}

func (p *Peer) localDescriptionSent() {
	p.mu.Lock()
	if p.descSent {
		p.mu.Unlock()
		return
	}
	p.descSent = true
	queue := p.candQueue
	p.candQueue = nil
	p.mu.Unlock()
	for _, c := range queue {
		p.h.SendCandidate(c)
	}
}
