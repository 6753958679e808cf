package sfu

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/pion/webrtc/v4"
)

// PeerStats is a snapshot of one peer, for inspection.
type PeerStats struct {
	ID         string
	Connection string // PeerConnection state
	ICE        string // ICE connection state
	DTLS       string
	Signaling  string
	// The selected candidate pair ("" before ICE connects).
	LocalCandidate, RemoteCandidate string
	// Path is how media reaches the client, from the server's side of the
	// selected pair: "udp" or "tcp" (straight to the server), "relay"
	// (the client's relay candidate: through a TURN server); "" before ICE
	// connects. RemoteAddr is the far end of that pair.
	Path       string
	RemoteAddr netip.AddrPort
	// SendPath is how forwarded packets leave: "direct" (sealed by the
	// server and batched into the media port's socket), or "pion: " and
	// why not (ICE-TCP, DTLS not up yet...).
	SendPath string
	RTT      time.Duration
	// Estimate is the subscriber's estimated bandwidth, bits/s (0: the
	// client sends no congestion feedback).
	Estimate    int
	Published   []UpTrackStats
	Subscribed  []SubscriptionStats
	Negotiation []NegotiationEvent // the last few, oldest first
}

// UpTrackStats describes a published track.
type UpTrackStats struct {
	ID, Kind, Mid, Codec string
	Muted                bool
	Subscribers          int
	Layers               []LayerStats
}

// SubscriptionStats describes one subscription of a subscriber.
type SubscriptionStats struct {
	Track     string // track id
	Publisher string // publisher's participant id
	Kind      string
	Layer     string // rid forwarded ("" without simulcast)
	Bitrate   int    // bits/s sent
	DownTrackStats
}

// NegotiationEvent is one step of the peer's negotiation history.
type NegotiationEvent struct {
	At   time.Time
	What string
}

// maxNegotiationEvents is how much negotiation history a peer keeps.
const maxNegotiationEvents = 12

// event records a negotiation step.
func (p *Peer) event(format string, args ...any) {
	ev := NegotiationEvent{At: time.Now(), What: fmt.Sprintf(format, args...)}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.history) == maxNegotiationEvents {
		p.history = append(p.history[:0], p.history[1:]...)
	}
	p.history = append(p.history, ev)
}

// Stats takes a snapshot of the peer.
func (p *Peer) Stats() PeerStats {
	s := PeerStats{
		ID:         p.id,
		Connection: p.pc.ConnectionState().String(),
		ICE:        p.pc.ICEConnectionState().String(),
		Signaling:  p.pc.SignalingState().String(),
		Estimate:   p.Estimate(),
		SendPath:   p.sendPath(),
	}
	if dtls := p.pc.SCTP().Transport(); dtls != nil {
		s.DTLS = dtls.State().String()
		ice := dtls.ICETransport()
		if pair, err := ice.GetSelectedCandidatePair(); err == nil && pair != nil {
			s.LocalCandidate = candidateString(pair.Local)
			s.RemoteCandidate = candidateString(pair.Remote)
			s.Path, s.RemoteAddr = path(pair)
		}
		if ps, ok := ice.GetSelectedCandidatePairStats(); ok {
			s.RTT = time.Duration(ps.CurrentRoundTripTime * float64(time.Second))
		}
	}
	p.mu.Lock()
	s.Negotiation = slices.Clone(p.history)
	published := slicesOf(p.published)
	p.mu.Unlock()
	slices.SortFunc(published, func(a, b *UpTrack) int { return compareMid(a.mid, b.mid) })
	for _, u := range published {
		s.Published = append(s.Published, UpTrackStats{
			ID: u.id, Kind: u.kind.String(), Mid: u.mid, Codec: u.Codec().MimeType,
			Muted: u.Muted(), Subscribers: u.Subscribers(), Layers: u.Stats(),
		})
	}
	for _, d := range p.sub.subscriptions() {
		s.Subscribed = append(s.Subscribed, SubscriptionStats{
			Track: d.up.id, Publisher: d.up.publisher.id, Kind: d.up.kind.String(),
			Layer: d.Layer(), Bitrate: int(d.rate.Load()), DownTrackStats: d.Stats(),
		})
	}
	slices.SortFunc(s.Subscribed, func(a, b SubscriptionStats) int {
		if a.Publisher != b.Publisher {
			return compareMid(a.Publisher, b.Publisher)
		}
		return compareMid(a.Track, b.Track)
	})
	return s
}

// RawStats is pion's GetStats of the peer's PeerConnection: what
// chrome://webrtc-internals would show of the server's side.
func (p *Peer) RawStats() webrtc.StatsReport { return p.pc.GetStats() }

// path says how the selected pair carries media, and where its far end is.
func path(pair *webrtc.ICECandidatePair) (string, netip.AddrPort) {
	var remote netip.AddrPort
	if a, err := netip.ParseAddr(pair.Remote.Address); err == nil {
		remote = netip.AddrPortFrom(a.Unmap(), pair.Remote.Port)
	}
	switch {
	case pair.Remote.Typ == webrtc.ICECandidateTypeRelay:
		return "relay", remote
	case pair.Local.Protocol == webrtc.ICEProtocolTCP:
		return "tcp", remote
	default:
		return "udp", remote
	}
}

func candidateString(c *webrtc.ICECandidate) string {
	if c == nil {
		return ""
	}
	return fmt.Sprintf("%s:%d %s %s", c.Address, c.Port, c.Protocol, c.Typ)
}

func compareMid(a, b string) int {
	if len(a) != len(b) {
		return len(a) - len(b)
	}
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
