package sfu

import (
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// DownTrack forwards one UpTrack to one subscriber. It is the
// webrtc.TrackLocal added to the subscriber's PeerConnection: its stream id
// is the publisher's participant id and its id the track id, so the
// subscriber's a=msid (and chrome://webrtc-internals) says who is who.
type DownTrack struct {
	up  *UpTrack
	sub *subscriber // the subscriber's receiving side

	bound atomic.Pointer[binding] // set by Bind, cleared by Unbind
	// srcPT is the payload type of src: packets of another codec (around a
	// switch of the publisher's) are not this subscription's.
	srcPT uint8

	// maxLayer is the highest simulcast layer the subscriber wants.
	maxLayer atomic.Int32
	// bweLayer is the highest layer the subscriber's bandwidth allows (the
	// allocator's choice).
	bweLayer atomic.Int32
	// layer mirrors current for readers outside the forwarding goroutine.
	layer atomic.Int32

	// Forwarding state, owned by whichever goroutine holds up.fwdMu.
	started   bool // a keyframe has been forwarded since the last restart
	delivered bool // a packet reached the transport since the last restart
	current   int  // simulcast layer being forwarded
	rw        rewriter
	hdr       rtp.Header // scratch header for the packet being written
	twcc      [2]byte    // scratch transport-wide sequence number
	fwdSeal   sealer     // seals the forwarded packets and probes (direct.go)
	// outHigh is the extended sequence number of the highest packet sent,
	// plus one (0 before the first): written by the forwarding goroutine,
	// read by the RTCP goroutine's resends.
	outHigh atomic.Uint64

	rtx   *retransmitter // owned by the RTCP goroutine, made at the first NACK
	probe prober         // owned by the subscriber's allocator

	packets       atomic.Uint64
	bytes         atomic.Uint64
	plis          atomic.Uint64 // keyframe requests from the subscriber
	nacks         atomic.Uint64 // NACK messages from the subscriber
	retransmitted atomic.Uint64 // packets sent again
	nackMisses    atomic.Uint64 // packets asked for that were no longer cached
	rtcpDropped   atomic.Uint64 // RTCP packets over the rate limit, not read

	// src is the publisher's codec it forwards, as the publisher numbers
	// it (static after construction; kept apart from the per-packet fields).
	src webrtc.RTPCodecParameters
	// refused: the subscriber's answer left out the codec (Bind found it
	// missing); the subscription forwards nothing and is dropped.
	refused atomic.Bool
	// offeredPT is the payload type + 1 the subscription's m-line was
	// offered with (0: none yet), set by negotiation before pion binds.
	offeredPT atomic.Uint32

	rate atomic.Int64 // bits/s sent, measured by the subscriber's allocator
	// owned by the allocator:
	rateAt     int64
	rateBytes  uint64
	lastReport int64 // when the last sender report went out
}

// measure updates the subscription's bitrate (the allocator calls it).
func (d *DownTrack) measure(now int64) {
	b := d.bytes.Load()
	if dt := now - d.rateAt; d.rateAt != 0 && dt >= rateInterval {
		d.rate.Store(int64(b-d.rateBytes) * 8 * int64(time.Second) / dt)
	} else if d.rateAt != 0 {
		return
	}
	d.rateAt, d.rateBytes = now, b
}

const videoKind = webrtc.RTPCodecTypeVideo

// binding is what negotiation with the subscriber settled.
type binding struct {
	ssrc          uint32
	pt            uint8
	writer        webrtc.TrackLocalWriter
	audioLevelID  uint8 // subscriber-side header extension ids, 0 if not negotiated
	orientationID uint8
	twccID        uint8 // transport-wide sequence numbers, for bandwidth estimation
}

// newBinding is what negotiation settled for a sender: its SSRC and
// writer, the header extensions the server sets, and payload type pt.
func newBinding(ctx webrtc.TrackLocalContext, pt uint8) *binding {
	b := &binding{ssrc: uint32(ctx.SSRC()), pt: pt, writer: ctx.WriteStream()}
	for _, h := range ctx.HeaderExtensions() {
		switch h.URI {
		case uriAudioLevel:
			b.audioLevelID = uint8(h.ID)
		case uriVideoOrientation:
			b.orientationID = uint8(h.ID)
		case sdp.TransportCCURI:
			b.twccID = uint8(h.ID)
		}
	}
	return b
}

func newDownTrack(up *UpTrack, sub *subscriber) *DownTrack {
	src := up.Codec()
	d := &DownTrack{up: up, sub: sub, src: src, srcPT: uint8(src.PayloadType)}
	d.rw.clockRate = src.ClockRate
	d.maxLayer.Store(int32(up.layerCount() - 1))
	d.bweLayer.Store(int32(up.layerCount() - 1))
	d.layer.Store(-1)
	return d
}

// ID is the track id (webrtc.TrackLocal).
func (d *DownTrack) ID() string { return d.up.id }

// StreamID is the publisher's participant id (webrtc.TrackLocal).
func (d *DownTrack) StreamID() string { return d.up.publisher.id }

// RID is empty: a subscriber receives one layer (webrtc.TrackLocal).
func (d *DownTrack) RID() string { return "" }

// Kind is audio or video (webrtc.TrackLocal).
func (d *DownTrack) Kind() webrtc.RTPCodecType { return d.up.kind }

// UpTrack returns the forwarded track.
func (d *DownTrack) UpTrack() *UpTrack { return d.up }

// Codec is the codec forwarded, numbered as the publisher numbers it.
func (d *DownTrack) Codec() webrtc.RTPCodecParameters { return d.src }

// Bind picks, among the codecs negotiated with the subscriber, the one the
// publisher sends (webrtc.TrackLocal), under the payload type its m-line
// was offered with: pion lists every number the session gave the codec
// (Firefox numbers Opus 109 where the server's first offer said 111), and
// the subscriber reads only the m-line's own. When the subscriber did not
// take the codec, the DownTrack is marked refused and forwards nothing.
func (d *DownTrack) Bind(ctx webrtc.TrackLocalContext) (webrtc.RTPCodecParameters, error) {
	up := d.src
	offered := d.offeredPT.Load()
	var pick *webrtc.RTPCodecParameters
	for _, c := range ctx.CodecParameters() {
		if strings.EqualFold(c.MimeType, up.MimeType) && fmtpCompatible(c.MimeType, c.SDPFmtpLine, up.SDPFmtpLine) {
			if pick == nil || uint32(c.PayloadType)+1 == offered {
				pick = &c
			}
		}
	}
	if c := pick; c != nil {
		d.bound.Store(newBinding(ctx, uint8(c.PayloadType)))
		return *c, nil
	}
	// An error here would make pion refuse the subscriber's whole answer,
	// and with it every other subscription: this one alone is dropped.
	d.refused.Store(true)
	if cs := ctx.CodecParameters(); len(cs) > 0 {
		return cs[0], nil
	}
	return webrtc.RTPCodecParameters{}, nil
}

// Unbind stops forwarding (webrtc.TrackLocal).
func (d *DownTrack) Unbind(webrtc.TrackLocalContext) error {
	d.bound.Store(nil)
	return nil
}

// SetMaxLayer sets the highest simulcast layer the subscriber wants, by rid.
func (d *DownTrack) SetMaxLayer(rid string) error {
	i := d.up.layerIndex(rid)
	if i < 0 {
		return fmt.Errorf("track %s has no layer %q", d.up.id, rid)
	}
	d.maxLayer.Store(int32(i))
	d.up.updateNeeds()
	return nil
}

// Layer returns the rid of the layer being forwarded ("" for none or a
// track without simulcast).
func (d *DownTrack) Layer() string {
	i := int(d.layer.Load())
	if i < 0 || i >= len(d.up.rids) {
		return ""
	}
	return d.up.rids[i]
}

// DownTrackStats are a subscription's counters.
type DownTrackStats struct {
	Packets, Bytes, PLIs, NACKs, Retransmitted, NACKMisses uint64
}

// Stats returns the subscription's counters.
func (d *DownTrack) Stats() DownTrackStats {
	return DownTrackStats{
		Packets: d.packets.Load(), Bytes: d.bytes.Load(), PLIs: d.plis.Load(), NACKs: d.nacks.Load(),
		Retransmitted: d.retransmitted.Load(), NACKMisses: d.nackMisses.Load(),
	}
}

// targetLayer is the layer the subscriber should get now: the highest one
// the publisher is sending at or below both the subscriber's wish and what
// its bandwidth allows; failing that, the lowest one being sent above.
func (d *DownTrack) targetLayer(now int64) int {
	want := int(min(d.maxLayer.Load(), d.bweLayer.Load()))
	for i := want; i >= 0; i-- {
		if d.up.layers[i].active(now) {
			return i
		}
	}
	for i := want + 1; i < d.up.layerCount(); i++ {
		if d.up.layers[i].active(now) {
			return i
		}
	}
	return want
}

// restart makes the next forwarded packet wait for a keyframe. Called under up.fwdMu.
func (d *DownTrack) restart() { d.started = false }

// forward rewrites and writes one packet of layer l. Called under up.fwdMu,
// for every packet of the track: it must not allocate or block.
//
// Padding is stripped: a padding-only packet goes out empty, which receivers
// treat as padding, and keeps the sequence numbers one to one.
func (d *DownTrack) forward(l int, p *rtp.Packet, key bool, now int64, out *sendBatch) {
	b := d.bound.Load()
	if b == nil || p.PayloadType != d.srcPT {
		return
	}
	if !d.started || l != d.current {
		if l != d.targetLayer(now) {
			return
		}
		if !key {
			d.up.requestKeyframe(l, now)
			return
		}
		d.current, d.started, d.delivered = l, true, false
		d.layer.Store(int32(l))
		d.rw.restart(l, p.SequenceNumber, p.Timestamp, now)
	}
	seq, ts, ok := d.rw.rewrite(l, p.SequenceNumber, p.Timestamp, now)
	if !ok {
		return
	}
	h := &d.hdr
	d.fillHeader(h, b, p, seq, ts)
	numbered := d.numberPacket(h, b, &d.twcc, len(p.Payload), now, false)
	if !d.write(h, b, &d.twcc, numbered, p.Payload, &d.fwdSeal, out, false) {
		// pion drops packets (n == 0) until DTLS is up: if the keyframe we
		// started with was lost that way, start again at the next one.
		if !d.delivered {
			d.started = false
		}
		return
	}
	d.delivered = true
	d.packets.Add(1)
	d.bytes.Add(uint64(len(p.Payload)))
}

// fillHeader writes into h the header of p as the subscriber gets it: its
// SSRC and payload type, the rewritten sequence number and timestamp, and
// the header extensions it negotiated. Padding is dropped.
func (d *DownTrack) fillHeader(h *rtp.Header, b *binding, p *rtp.Packet, seq uint16, ts uint32) {
	h.Version = 2
	h.Padding = false
	h.PaddingSize = 0
	h.Marker = p.Marker
	h.PayloadType = b.pt
	h.SequenceNumber = seq
	h.Timestamp = ts
	h.SSRC = b.ssrc
	h.CSRC = h.CSRC[:0]
	h.Extension = false
	h.Extensions = h.Extensions[:0]
	if b.audioLevelID != 0 && d.up.extAudioLevel != 0 {
		if v := p.GetExtension(d.up.extAudioLevel); len(v) > 0 {
			_ = h.SetExtension(b.audioLevelID, v)
		}
	}
	if b.orientationID != 0 && d.up.extOrientation != 0 {
		if v := p.GetExtension(d.up.extOrientation); len(v) > 0 {
			_ = h.SetExtension(b.orientationID, v)
		}
	}
}

// rtpOverhead is what a forwarded packet adds to its payload on the wire,
// roughly: RTP header and extensions, SRTP tag. (UDP/IP headers are left
// out, as browsers leave them out of their rates.)
const rtpOverhead = 12 + 12 + 10

// numberPacket gives the packet its transport-wide sequence number (when
// the subscriber negotiated it) and records it for bandwidth estimation.
// tw is the caller's scratch for the extension's bytes.
// It reports false when the subscriber has no transport-wide numbering.
func (d *DownTrack) numberPacket(h *rtp.Header, b *binding, tw *[2]byte, payloadLen int, now int64, probe bool) bool {
	if b.twccID == 0 {
		return false
	}
	seq := d.sub.bwe.onSent(payloadLen+rtpOverhead, now, probe)
	tw[0], tw[1] = byte(seq>>8), byte(seq)
	_ = h.SetExtension(b.twccID, tw[:])
	return true
}

// write sends a packet numbered by numberPacket (numbered: its result),
// on the direct path when the subscriber has a route (sealed with s, into
// out when there is a fan-out's batch), else through pion; a packet not
// sent is taken out of the bandwidth estimation. resend: a retransmission,
// from the RTCP goroutine; every other packet extends the stream's count of
// sequence numbers, which gives each sealed packet its rollover counter.
func (d *DownTrack) write(h *rtp.Header, b *binding, tw *[2]byte, numbered bool, payload []byte, s *sealer, out *sendBatch, resend bool) bool {
	high := d.outHigh.Load()
	var ext uint64
	if resend {
		if high > 0 {
			ext = extend(high-1, h.SequenceNumber)
		}
	} else {
		var highest uint64
		ext, highest = nextExt(high-1, high > 0, h.SequenceNumber)
		d.outHigh.Store(highest + 1)
	}
	var sent bool
	if r := d.route(); r != nil {
		sent = d.writeDirect(r, h, payload, s, out, uint32(ext>>16), resend)
	} else {
		n, err := b.writer.WriteRTP(h, payload)
		sent = err == nil && n > 0
	}
	if !sent && numbered {
		d.sub.bwe.unsent(uint16(tw[0])<<8 | uint16(tw[1]))
	}
	return sent
}

// route is the subscriber's direct route, nil when packets go through pion.
func (d *DownTrack) route() *route {
	if d.sub == nil {
		return nil
	}
	return d.sub.direct.cur.Load()
}

// writeDirect seals a packet with s and queues it in out, or sends it at
// once without a batch (or when out has no room for another socket).
func (d *DownTrack) writeDirect(r *route, h *rtp.Header, payload []byte, s *sealer, out *sendBatch, roc uint32, setROC bool) bool {
	if out != nil {
		if buf, i := out.slot(r.conn); buf != nil {
			pkt, ok := s.seal(r, h, payload, roc, setROC, buf)
			if ok {
				out.commit(i, pkt, r.addr)
			}
			return ok
		}
	}
	if s.buf == nil {
		s.buf = make([]byte, 0, 1500)
	}
	pkt, ok := s.seal(r, h, payload, roc, setROC, s.buf)
	if !ok {
		return false
	}
	_, err := r.conn.WriteToAddrPort(pkt, r.addr)
	return err == nil
}

// readRTCP serves the subscriber's feedback until the sender stops: keyframe
// requests go upstream (rate-limited there), NACKs are answered from the
// publisher's packet cache.
func (d *DownTrack) readRTCP(sender *webrtc.RTPSender) {
	serveRTCP(sender, func() *DownTrack { return d })
}

// serveRTCP reads a sender's RTCP until it stops, for the subscription
// cur returns at each packet (a feed's changes with its source; nil: none).
func serveRTCP(sender *webrtc.RTPSender, cur func() *DownTrack) {
	buf := make([]byte, 1500)
	var fb feedback
	var tw twccFeedback
	limit := newRTCPLimiter(rtcpRate, rtcpBurst)
	for {
		n, _, err := sender.Read(buf)
		if err != nil {
			return
		}
		d := cur()
		if d == nil {
			continue
		}
		now := time.Now().UnixNano()
		if !limit.allow(now) || !d.sub.admitRTCP(now) {
			d.rtcpDropped.Add(1)
			continue
		}
		if !parseFeedback(buf[:n], &fb) {
			continue
		}
		if fb.keyframe {
			d.plis.Add(1)
			if l := int(d.layer.Load()); l >= 0 {
				d.up.requestKeyframe(l, now)
			}
		}
		if len(fb.nacks) > 0 {
			d.nacks.Add(1)
			d.handleNACK(fb.nacks, now)
		}
		for _, fci := range fb.twcc {
			if parseTWCC(fci, &tw) {
				d.sub.bwe.onFeedback(&tw, now)
			}
		}
	}
}

// A subscriber's RTCP about one track is read at most rtcpRate compound
// packets a second, in bursts of rtcpBurst, and about all its tracks at most
// subscriberRTCPRate, in bursts of subscriberRTCPBurst: a browser sends a
// few dozen a second per track (receiver reports, NACKs, keyframe requests,
// congestion feedback), and what a client sends beyond the limits is
// dropped unread, so that it cannot make the server work at its line rate,
// however many tracks it names (pion hands a compound packet to the reader
// of every track it is about).
const (
	rtcpRate            = 200
	rtcpBurst           = 400
	subscriberRTCPRate  = 2000
	subscriberRTCPBurst = 4000
)

// rtcpLimiter is a token bucket. Its owner serializes calls to allow.
type rtcpLimiter struct {
	rate, burst float64 // tokens a second, and at most
	tokens      float64
	last        int64 // unix ns
}

func newRTCPLimiter(rate, burst float64) rtcpLimiter {
	return rtcpLimiter{rate: rate, burst: burst, tokens: burst}
}

func (l *rtcpLimiter) allow(now int64) bool {
	if l.last != 0 {
		l.tokens = min(l.burst, l.tokens+float64(now-l.last)*l.rate/1e9)
	}
	l.last = now
	if l.tokens < 1 {
		return false
	}
	l.tokens--
	return true
}
