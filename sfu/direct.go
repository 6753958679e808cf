package sfu

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

// The direct send path. A subscriber's forwarded packets are sealed with
// the session's SRTP keys (srtpkeys.go) by the goroutine that forwards
// them, straight into a socket batch of the media port, and leave in one
// sendmmsg per fan-out: pion's SRTP session, mux endpoint, ICE conn and
// candidate pair, each with its own lock and copy, are skipped. RTCP,
// DTLS and ICE stay with pion.
//
// It applies while the selected candidate pair is UDP on a socket of the
// media port and the server is the DTLS server (it has the keys); packets
// go through pion otherwise (ICE-TCP, ephemeral ports, the server as DTLS
// client), and PeerStats.SendPath says which and why.
//
// Each goroutine that writes a subscriber's stream seals with an SRTP
// context of its own, so no lock is taken per packet: the forwarding
// goroutine (under the track's fwdMu, which padding probes take too) and
// the RTCP goroutine that answers NACKs. The second one sets the rollover
// counter of every packet it resends, from the extended sequence number
// the first one keeps (DownTrack.outExt).
//
// A stream that moves from the direct path back to pion's (the pair turned
// to ICE-TCP after an ICE restart) is sealed by pion's context from then
// on, which infers the rollover counter from what it saw: right until the
// stream's sequence numbers have wrapped (65,536 packets) on the direct
// path.

// route is how a subscriber's packets leave on the direct path. It is
// replaced whole when anything in it changes.
type route struct {
	conn    *batchConn
	addr    netip.AddrPort
	keys    *srtp.Config // the server's keys are Local
	cryptex bool         // the client declared RFC 9335 header encryption
}

// directPath is a peer's route and why there is none.
type directPath struct {
	mu     sync.Mutex // serializes update
	cur    atomic.Pointer[route]
	why    atomic.Pointer[string] // why packets go through pion ("" when direct)
	keys   *srtp.Config           // guarded by mu, derived once
	closed bool                   // guarded by mu
}

// errNotMediaPort: the selected pair's local end is not a socket of the
// media port.
var errNotMediaPort = errors.New("the selected pair is not on the media port's UDP sockets")

// updateRoute recomputes the direct route from the selected pair, the
// session's keys and the client's description. Called on every change of
// one of them (pair, DTLS, negotiation); cheap, and never on the hot path.
func (p *Peer) updateRoute() {
	d := &p.direct
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return
	}
	r, err := p.newRoute()
	if err != nil {
		why := err.Error()
		d.why.Store(&why)
		d.cur.Store(nil)
		return
	}
	if old := d.cur.Load(); old != nil && old.conn == r.conn && old.addr == r.addr && old.cryptex == r.cryptex {
		return
	}
	empty := ""
	d.why.Store(&empty)
	d.cur.Store(r)
}

// close ends the direct path for good: a closed peer sends nothing more.
func (d *directPath) close() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.closed = true
	why := "closed"
	d.why.Store(&why)
	d.cur.Store(nil)
}

// newRoute is updateRoute's computation. Called with p.direct.mu held.
func (p *Peer) newRoute() (*route, error) {
	if p.e.mux == nil {
		return nil, errors.New("media on ephemeral ports")
	}
	dtls := p.pc.SCTP().Transport()
	if dtls == nil || dtls.State() != webrtc.DTLSTransportStateConnected {
		return nil, errors.New("DTLS not connected")
	}
	pair, err := dtls.ICETransport().GetSelectedCandidatePair()
	if err != nil || pair == nil {
		return nil, errors.New("no selected candidate pair")
	}
	if pair.Local.Protocol != webrtc.ICEProtocolUDP {
		return nil, fmt.Errorf("the selected pair is %s", pair.Local.Protocol)
	}
	conn := p.e.mux.conn(pair.Local.Address, pair.Local.Port)
	if conn == nil {
		return nil, errNotMediaPort
	}
	remote, err := netip.ParseAddr(pair.Remote.Address)
	if err != nil {
		return nil, fmt.Errorf("remote candidate %q: %w", pair.Remote.Address, err)
	}
	if p.direct.keys == nil {
		keys, err := p.secrets.srtpConfig()
		if err != nil {
			return nil, err
		}
		p.direct.keys = keys
	}
	desc := p.pc.RemoteDescription()
	return &route{
		conn: conn, addr: netip.AddrPortFrom(remote.Unmap(), pair.Remote.Port),
		keys: p.direct.keys, cryptex: desc != nil && declaresCryptex(desc.SDP),
	}, nil
}

// sendPath says how the peer's forwarded packets leave: "direct", or
// "pion: " and why not direct.
func (p *Peer) sendPath() string {
	if p.direct.cur.Load() != nil {
		return "direct"
	}
	if why := p.direct.why.Load(); why != nil && *why != "" {
		return "pion: " + *why
	}
	return "pion"
}

// declaresCryptex reports whether a description declares RFC 9335 header
// encryption for what it receives, as pion reads it to choose how it
// sends: at the session level, or on an RTP media section (its own or,
// inside the BUNDLE group, the group's first).
func declaresCryptex(raw string) bool {
	var sd sdp.SessionDescription
	if sd.UnmarshalString(raw) != nil {
		return false
	}
	if _, ok := sd.Attribute(sdp.AttrKeyCryptex); ok {
		return true
	}
	for _, md := range sd.MediaDescriptions {
		if md.MediaName.Media == "application" {
			continue
		}
		if _, ok := md.Attribute(sdp.AttrKeyCryptex); ok {
			return true
		}
	}
	return false
}

// sealer seals one goroutine's packets of one subscriber's stream.
type sealer struct {
	for_ *route        // the route ctx was made for
	ctx  *srtp.Context // nil until the first packet on the direct path
	hdr  rtp.Header    // scratch for the header srtp parses
	buf  []byte        // a packet sealed for sending at once (no batch)
}

// context returns the SRTP context for r, made (or remade after a route
// change) with the rollover counter of the packet about to be sealed.
func (s *sealer) context(r *route, ssrc, roc uint32) (*srtp.Context, error) {
	if s.for_ == r && s.ctx != nil {
		return s.ctx, nil
	}
	opts := []srtp.ContextOption{}
	if r.cryptex {
		opts = append(opts, srtp.Cryptex(srtp.CryptexModeEnabled))
	}
	ctx, err := srtp.CreateContext(r.keys.Keys.LocalMasterKey, r.keys.Keys.LocalMasterSalt, r.keys.Profile, opts...)
	if err != nil {
		return nil, err
	}
	ctx.SetROC(ssrc, roc)
	s.for_, s.ctx = r, ctx
	return ctx, nil
}

// seal writes h and payload, sealed, into dst (of capacity 1500 or more)
// and returns the packet. With setROC, the rollover counter is set first
// (a goroutine that sends out of order); otherwise srtp infers it from
// the previous packet.
func (s *sealer) seal(r *route, h *rtp.Header, payload []byte, roc uint32, setROC bool, dst []byte) ([]byte, bool) {
	ctx, err := s.context(r, h.SSRC, roc)
	if err != nil {
		return nil, false
	}
	if setROC {
		ctx.SetROC(h.SSRC, roc)
	}
	dst = dst[:cap(dst)]
	n, err := h.MarshalTo(dst)
	if err != nil || n+len(payload)+srtpOverhead > len(dst) {
		return nil, false
	}
	n += copy(dst[n:], payload)
	// Sealed in place: srtp writes over the plaintext in dst.
	out, err := ctx.EncryptRTP(dst[:0], dst[:n], &s.hdr)
	if err != nil || &out[0] != &dst[0] {
		return nil, false
	}
	return out, true
}

// srtpOverhead is room left for what sealing adds: the longest tag, and
// the empty extension header cryptex inserts.
const srtpOverhead = 16 + 4

// extend is the extended sequence number of seq in a stream whose highest
// so far is last: the nearer of the two candidates, since a late or resent
// packet may be from before a wrap (and nothing is before 0).
func extend(last uint64, seq uint16) uint64 {
	e := int64(last) + int64(int16(seq-uint16(last)))
	if e < 0 {
		return uint64(seq)
	}
	return uint64(e)
}

// rocFor is the rollover counter of seq after last (extend).
func rocFor(last uint64, seq uint16) uint32 { return uint32(extend(last, seq) >> 16) }

// nextExt extends seq after last (started: a packet was sent before) and
// returns it and the new highest.
func nextExt(last uint64, started bool, seq uint16) (ext, highest uint64) {
	if !started {
		return uint64(seq), uint64(seq)
	}
	ext = extend(last, seq)
	return ext, max(ext, last)
}

// sendBatch collects one fan-out's sealed packets per socket, for one
// sendmmsg each at its flush. It belongs to the goroutine doing the
// fan-out.
type sendBatch struct {
	conns [2]*batchConn
	qs    [2]*batch
}

// slot returns the buffer of c's next packet, or nil when the batch has
// no room for another socket.
func (s *sendBatch) slot(c *batchConn) ([]byte, int) {
	for i := range s.conns {
		if s.conns[i] == c {
			return s.qs[i].bufs[s.qs[i].n], i
		}
		if s.conns[i] == nil {
			s.conns[i], s.qs[i] = c, c.spareBatch()
			return s.qs[i].bufs[0], i
		}
	}
	return nil, -1
}

// commit queues pkt (written in slot i's buffer) for addr.
func (s *sendBatch) commit(i int, pkt []byte, addr netip.AddrPort) {
	q := s.qs[i]
	q.q.set(q.n, pkt, addr)
	q.n++
	if q.n == batchSize {
		s.conns[i].flush(q)
		s.qs[i] = s.conns[i].spareBatch()
	}
}

// flush sends what is queued and hands the batches back.
func (s *sendBatch) flush() {
	for i, c := range s.conns {
		if c == nil {
			break
		}
		if s.qs[i].n > 0 {
			c.flush(s.qs[i])
		} else {
			c.putBatch(s.qs[i])
		}
		s.conns[i], s.qs[i] = nil, nil
	}
}
