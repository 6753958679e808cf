package sfu

import (
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// A track's layers: each is read by its own goroutine (read), which
// measures the layer, caches its packets for retransmission and hands them
// to the fan-out.

// upLayer is one simulcast layer (or the only stream) of an UpTrack.
type upLayer struct {
	cache     *packetCache // video only; set before the layer's reader starts
	clockRate uint32
	ssrc      atomic.Uint32
	lastAt    atomic.Int64 // unix ns of the last packet
	lastPLI   atomic.Int64 // unix ns of the last keyframe request sent upstream
	packets   atomic.Uint64
	bytes     atomic.Uint64
	plis      atomic.Uint64 // keyframe requests sent upstream

	rate atomic.Int64 // bits/s over the last rateInterval, padding left out
	// owned by the layer's reader:
	rateAt     int64
	rateBytes  uint64
	mediaBytes uint64 // bytes received less RTP padding, which is not forwarded

	sr atomic.Pointer[senderReport] // the publisher's last sender report

	recv receiveStats // owned by the layer's reader
	// exported by the reader, once per rateInterval:
	lost      atomic.Int64  // packets never received (RFC 3550 cumulative lost)
	jitterUs  atomic.Int64  // interarrival jitter, microseconds
	recvHigh  atomic.Uint32 // extended highest sequence number received
	recvCount atomic.Uint64 // packets received
	recvBase  atomic.Uint32 // first sequence number

	// Owned by the publisher's allocator, for receiver reports:
	rrExpected, rrReceived uint64
}

// receiveStats computes loss and jitter the RFC 3550 way.
type receiveStats struct {
	started    bool
	since      int64  // unix ns of the first packet
	base, high uint32 // extended sequence numbers
	received   uint64
	transit    uint32  // previous arrival - RTP time, in clock units, modulo 2^32 as RTP time is
	jitter     float64 // in clock units
}

func (r *receiveStats) update(seq uint16, ts uint32, now int64, clockRate uint32) {
	first := !r.started
	if first {
		r.started, r.base, r.high = true, uint32(seq), uint32(seq)
		r.since = now
	} else if d := int16(seq - uint16(r.high)); d > 0 {
		r.high += uint32(d)
	}
	r.received++
	// Arrival in clock units since the first packet: whole seconds and the
	// rest apart, so that no product overflows however long the track
	// lives; and transit differences modulo 2^32, so that the RTP clock
	// wrapping (every 13 hours at 90 kHz) is no jump.
	el := uint64(now - r.since)
	arrival := uint32(el/1e9*uint64(clockRate) + el%1e9*uint64(clockRate)/1e9)
	transit := arrival - ts
	if !first {
		d := float64(int32(transit - r.transit))
		if d < 0 {
			d = -d
		}
		r.jitter += (d - r.jitter) / 16
	}
	r.transit = transit
}

func (r *receiveStats) lost() int64 {
	return int64(r.high-r.base+1) - int64(r.received)
}

// rateInterval is how often a layer's bitrate is measured.
const rateInterval = int64(500 * time.Millisecond)

// measure updates the layer's bitrate; the reader calls it per packet.
func (l *upLayer) measure(now int64) {
	if l.rateAt == 0 {
		l.rateAt, l.rateBytes = now, l.mediaBytes
		return
	}
	if d := now - l.rateAt; d >= rateInterval {
		b := l.mediaBytes
		l.rate.Store(int64(b-l.rateBytes) * 8 * int64(time.Second) / d)
		l.rateAt, l.rateBytes = now, b
		l.lost.Store(max(0, l.recv.lost()))
		l.jitterUs.Store(int64(l.recv.jitter * 1e6 / float64(l.clockRate)))
		l.recvHigh.Store(l.recv.high)
		l.recvBase.Store(l.recv.base)
		l.recvCount.Store(l.recv.received)
	}
}

// bitrate is the layer's measured bitrate, 0 when it is not being sent.
func (l *upLayer) bitrate(now int64) int {
	if !l.active(now) {
		return 0
	}
	return int(l.rate.Load())
}

func (l *upLayer) active(now int64) bool {
	return now-l.lastAt.Load() < int64(layerTimeout)
}

// read forwards the packets of one layer until the publisher stops sending
// it. It reads video straight into the layer's packet cache and parses into
// one reused rtp.Packet: nothing per packet is allocated or copied.
func (u *UpTrack) read(l int, track *webrtc.TrackRemote) {
	layer := &u.layers[l]
	layer.ssrc.Store(uint32(track.SSRC()))
	buf := make([]byte, 1500)
	var p rtp.Packet
	for {
		if layer.cache != nil {
			buf = layer.cache.buffer()
		}
		n, _, err := track.Read(buf)
		if err != nil {
			return
		}
		if err := p.Unmarshal(buf[:n]); err != nil {
			continue
		}
		if layer.cache != nil {
			layer.cache.put(p.SequenceNumber, n) // p still points into it
		}
		now := time.Now().UnixNano()
		layer.lastAt.Store(now)
		layer.packets.Add(1)
		layer.bytes.Add(uint64(n))
		// A publisher probing its uplink sends padding (Chromium pads its
		// lowest layer at up to the link's rate); the forwarded packets
		// carry none of it, so the layer's rate, which the allocator
		// charges each subscriber, leaves it out.
		layer.mediaBytes += uint64(n - int(p.PaddingSize))
		layer.recv.update(p.SequenceNumber, p.Timestamp, now, layer.clockRate)
		layer.measure(now)
		if u.extAudioLevel != 0 {
			u.hearLevel(&p, now)
		}
		key := u.kind == webrtc.RTPCodecTypeAudio || isKeyframeStart(u.codecKindOf(p.PayloadType), p.Payload)
		u.forward(l, &p, key, now)
		if r := u.rec.Load(); r != nil && l == u.layerCount()-1 && !u.muted.Load() {
			r.r.RecordRTP(&p)
		}
	}
}

// hearLevel folds a packet's audio level into the track's loudness, an
// exponential average that rises fast (over about 4 packets, 80 ms of
// Opus) and falls slowly (about 20 packets): a speaker is recognized at
// once and not dropped between two words.
func (u *UpTrack) hearLevel(p *rtp.Packet, now int64) {
	v := p.GetExtension(u.extAudioLevel)
	if len(v) == 0 {
		return
	}
	loud := int32(127-v[0]&0x7f) << 4 // 1/16 dB above silence
	if loud > u.level {
		u.level += (loud - u.level + 3) / 4
	} else {
		u.level += (loud - u.level) / 20
	}
	u.loud.Store(u.level)
	u.loudAt.Store(now)
}

// Loudness is the smoothed audio level of the track, in dB above -127 dBov
// (127 is full scale, 0 silence); 0 for a track that is silent, muted or
// without audio levels.
func (u *UpTrack) Loudness() float64 {
	if u.muted.Load() || time.Now().UnixNano()-u.loudAt.Load() > int64(time.Second) {
		return 0
	}
	return float64(u.loud.Load()) / 16
}

// forward hands one packet to every subscriber.
func (u *UpTrack) forward(l int, p *rtp.Packet, key bool, now int64) {
	if u.muted.Load() {
		return
	}
	downs := *u.downs.Load()
	if len(downs) == 0 {
		return
	}
	// With one UDP port, the packets of this fan-out go out in one system
	// call when it ends.
	if m := u.publisher.e.mux; m != nil {
		m.begin()
		defer m.end()
	}
	u.fwdMu.Lock()
	u.fanout(downs, l, p, key, now)
	u.fwdMu.Unlock()
}

// senderReport is what a publisher's sender report says: its RTP clock
// stood at rtp at wall-clock time ntp.
type senderReport struct {
	ntp uint64 // NTP timestamp, 32.32 fixed point
	rtp uint32
	at  int64 // when it arrived, unix ns
}

// readRTCP reads the publisher's RTCP for layer l: its sender reports,
// which map the layer's RTP clock onto the publisher's wall clock, are
// kept for the reports sent to subscribers and for the receiver reports
// sent back.
func (u *UpTrack) readRTCP(receiver *webrtc.RTPReceiver, rid string, l int) {
	for {
		var pkts []rtcp.Packet
		var err error
		if rid == "" {
			pkts, _, err = receiver.ReadRTCP()
		} else {
			pkts, _, err = receiver.ReadSimulcastRTCP(rid)
		}
		if err != nil {
			return
		}
		for _, p := range pkts {
			if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == u.layers[l].ssrc.Load() {
				u.layers[l].sr.Store(&senderReport{ntp: sr.NTPTime, rtp: sr.RTPTime, at: time.Now().UnixNano()})
			}
		}
	}
}

// LayerStats are the counters of one received layer.
type LayerStats struct {
	RID                  string
	SSRC                 uint32
	Packets, Bytes, PLIs uint64
	Lost                 int64 // packets never received
	Jitter               time.Duration
	Bitrate              int // bits/s
	Active               bool
}

// Stats returns the counters of every layer.
func (u *UpTrack) Stats() []LayerStats {
	now := time.Now().UnixNano()
	out := make([]LayerStats, u.layerCount())
	for i := range out {
		l := &u.layers[i]
		out[i] = LayerStats{
			SSRC: l.ssrc.Load(), Packets: l.packets.Load(), Bytes: l.bytes.Load(), PLIs: l.plis.Load(),
			Lost: l.lost.Load(), Jitter: time.Duration(l.jitterUs.Load()) * time.Microsecond,
			Bitrate: l.bitrate(now), Active: l.active(now),
		}
		if i < len(u.rids) {
			out[i].RID = u.rids[i]
		}
	}
	return out
}

func (u *UpTrack) close() {
	u.closeOnce.Do(func() { close(u.closed) })
}
