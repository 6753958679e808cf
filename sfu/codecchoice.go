package sfu

import (
	"strings"

	"github.com/pion/webrtc/v4"
)

// Codecs is what one participant can decode. Nil means anything the
// server forwards: a client that did not say.
type Codecs []webrtc.RTPCodecCapability

// Decodes reports whether a participant that decodes cs can decode c.
func (cs Codecs) Decodes(c webrtc.RTPCodecCapability) bool {
	if cs == nil {
		return true
	}
	for _, d := range cs {
		if strings.EqualFold(d.MimeType, c.MimeType) && fmtpCompatible(c.MimeType, d.SDPFmtpLine, c.SDPFmtpLine) {
			return true
		}
	}
	return false
}

// sameCodec reports whether a and b are one codec (their numbers aside).
func sameCodec(a, b webrtc.RTPCodecParameters) bool {
	return strings.EqualFold(a.MimeType, b.MimeType) && fmtpCompatible(a.MimeType, a.SDPFmtpLine, b.SDPFmtpLine)
}

// decoders counts the members of audience that decode c.
func decoders(c webrtc.RTPCodecCapability, audience []Codecs) int {
	n := 0
	for _, cs := range audience {
		if cs.Decodes(c) {
			n++
		}
	}
	return n
}

// chooseCodec picks, among the codecs a publisher offers (in its order of
// preference), one the server forwards that the most members of audience
// decode: every one of them when such a codec exists; the publisher's
// preference decides between codecs decoded by as many. It returns the
// codec and how many decode it.
func chooseCodec(kind webrtc.RTPCodecType, offered []webrtc.RTPCodecParameters, audience []Codecs) (webrtc.RTPCodecParameters, int, bool) {
	var best webrtc.RTPCodecParameters
	bestN, found := -1, false
	for _, c := range offered {
		if !supported(kind, c.RTPCodecCapability) {
			continue
		}
		if n := decoders(c.RTPCodecCapability, audience); n > bestN {
			best, bestN, found = c, n, true
			if n == len(audience) {
				break
			}
		}
	}
	return best, bestN, found
}

// SetAudience tells the peer what the participants who may receive its
// tracks can decode, one entry each. Its published tracks are sent in a
// codec they all decode where the publisher offered one; when a change of
// audience lets another codec reach more of them, the publisher is asked
// to switch (a server offer), and the Handler told by TrackCodecChanged.
func (p *Peer) SetAudience(audience []Codecs) {
	p.audience.Store(&audience)
	p.mu.Lock()
	p.reconsider = true
	p.mu.Unlock()
	p.wake()
}

func (p *Peer) loadAudience() []Codecs {
	if a := p.audience.Load(); a != nil {
		return *a
	}
	return nil
}

// reconsiderCodecs asks the publisher to switch each track that another of
// its offered codecs would bring to more of the audience. Called with
// negMu held, in the stable state; it reports whether an offer is needed.
func (p *Peer) reconsiderCodecs() bool {
	p.mu.Lock()
	if !p.reconsider {
		p.mu.Unlock()
		return false
	}
	p.reconsider = false
	published := slicesOf(p.published)
	p.mu.Unlock()

	audience := p.loadAudience()
	changed := false
	for _, u := range published {
		if u.switchTo != nil {
			continue // asked already; the answer settles it
		}
		cur := u.Codec()
		best, n, ok := chooseCodec(u.kind, u.offered, audience)
		if !ok || n <= decoders(cur.RTPCodecCapability, audience) {
			continue
		}
		tr := p.transceiver(u.mid)
		if tr == nil {
			continue
		}
		if err := tr.SetCodecPreferences(withRTX(best, u.offered)); err != nil {
			p.log.Warn("cannot switch codec", "track", u.id, "codec", best.MimeType, "err", err)
			continue
		}
		u.switchTo = &best
		changed = true
		p.log.Info("asking the publisher to switch codec", "track", u.id, "from", cur.MimeType, "to", best.MimeType,
			"decoders", n, "audience", len(audience))
		p.event("codec switch asked: %s %s -> %s", u.id, cur.MimeType, best.MimeType)
	}
	return changed
}

// settleSwitches applies the codec switches the client's answer accepted:
// the first codec of a track's m-line is what the publisher sends now.
// Called with negMu held; it returns the tracks whose codec changed.
func (p *Peer) settleSwitches(answer []mediaInfo) []*UpTrack {
	p.mu.Lock()
	published := slicesOf(p.published)
	p.mu.Unlock()
	var changed []*UpTrack
	for _, u := range published {
		want := u.switchTo
		if want == nil {
			continue
		}
		u.switchTo = nil
		for _, m := range answer {
			if m.mid != u.mid || len(m.codecs) == 0 {
				continue
			}
			if got := m.codecs[0]; got.PayloadType == want.PayloadType {
				u.setCodec(*want)
				changed = append(changed, u)
				p.event("codec switched: %s now %s", u.id, want.MimeType)
			} else {
				p.log.Warn("publisher kept its codec", "track", u.id, "asked", want.MimeType, "answered", got.MimeType)
			}
		}
	}
	return changed
}

// transceiver returns the transceiver of mid. Called with negMu held.
func (p *Peer) transceiver(mid string) *webrtc.RTPTransceiver {
	for _, tr := range p.pc.GetTransceivers() {
		if tr.Mid() == mid {
			return tr
		}
	}
	return nil
}
