package sfu

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

const (
	// keyframeInterval is the least time between two keyframe requests for one
	// layer sent to a publisher, however many subscribers ask.
	keyframeInterval = 500 * time.Millisecond
	// layerTimeout is how long a simulcast layer may stay silent before
	// subscribers are moved to another one.
	layerTimeout = time.Second
)

// UpTrack is one track a peer publishes: up to three simulcast layers, each
// read by its own goroutine and forwarded to the track's DownTracks.
type UpTrack struct {
	id        string
	publisher *Peer
	kind      webrtc.RTPCodecType
	mid       string
	rids      []string // layer names, lowest quality first; nil without simulcast
	// offered lists the codecs of the publisher's m-line (with their RTX
	// formats), in its order of preference: what it can switch to.
	offered []webrtc.RTPCodecParameters

	// cur is the codec the publisher sends; it changes when the publisher
	// switches (Peer.SetAudience).
	cur atomic.Pointer[upCodec]
	// switchTo is the codec the publisher was asked to switch to, until its
	// answer. Guarded by the publisher's negMu.
	switchTo *webrtc.RTPCodecParameters

	// Publisher-side header extension ids the forwarder copies (0: none).
	extAudioLevel  uint8
	extOrientation uint8

	layers [maxLayers]upLayer

	downsMu sync.Mutex                   // serializes changes to downs
	downs   atomic.Pointer[[]*DownTrack] // copy-on-write; read without a lock

	// fwdMu serializes forwarding, so that the per-subscriber state of the
	// DownTracks has one owner at a time even when several layers arrive.
	fwdMu sync.Mutex
	// Owned by whoever holds fwdMu: the chunks of a large fan-out.
	jobs     []fanoutJob
	fanoutWG sync.WaitGroup
	muted    atomic.Bool
	// priority orders tracks when a subscriber's bandwidth is shared out
	// (higher first), e.g. the active speaker's camera or a screen share.
	priority atomic.Int32

	// Audio level (RFC 6464), smoothed by the reader: loudness in 1/16 dB
	// above -127 dBov, and when it was last updated.
	level  int32 // owned by the reader
	loud   atomic.Int32
	loudAt atomic.Int64

	// needMu serializes telling the publisher which layers are needed.
	needMu   sync.Mutex
	needMask uint32 // layers last announced as needed, guarded by needMu

	closeOnce sync.Once
	closed    chan struct{}
}

// upCodec is a codec a track is sent in, with its keyframe parser.
type upCodec struct {
	params webrtc.RTPCodecParameters // numbered as the publisher numbers it
	ck     codecKind
}

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

	rate atomic.Int64 // bits/s over the last rateInterval
	// owned by the layer's reader:
	rateAt    int64
	rateBytes uint64

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
		l.rateAt, l.rateBytes = now, l.bytes.Load()
		return
	}
	if d := now - l.rateAt; d >= rateInterval {
		b := l.bytes.Load()
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

func newUpTrack(p *Peer, m mediaInfo, codec webrtc.RTPCodecParameters) *UpTrack {
	u := &UpTrack{
		id:        NewID("t-"),
		publisher: p,
		kind:      m.kind,
		mid:       m.mid,
		offered:   m.codecs,
		rids:      orderLayers(m.rids),
		closed:    make(chan struct{}),
	}
	u.setCodec(codec)
	// Only audio measures loudness: the level is folded in by the reader of
	// each layer, and only audio has a single one.
	if id := m.extIDs[uriAudioLevel]; id > 0 && id < 256 && m.kind == webrtc.RTPCodecTypeAudio {
		u.extAudioLevel = uint8(id)
	}
	if id := m.extIDs[uriVideoOrientation]; id > 0 && id < 256 {
		u.extOrientation = uint8(id)
	}
	for i := range u.layerCount() {
		u.layers[i].clockRate = codec.ClockRate
		if u.kind == videoKind {
			u.layers[i].cache = newPacketCache()
		}
	}
	u.downs.Store(&[]*DownTrack{})
	return u
}

// orderLayers sorts rids lowest quality first: the conventional q, h, f
// first, other names in the order the client listed them.
func orderLayers(rids []string) []string {
	if len(rids) == 0 {
		return nil
	}
	rank := func(r string) int {
		switch r {
		case "q":
			return 0
		case "h":
			return 1
		case "f":
			return 2
		}
		return 3
	}
	out := slices.Clone(rids)
	slices.SortStableFunc(out, func(a, b string) int { return rank(a) - rank(b) })
	return out
}

// ID is the server-chosen track id.
func (u *UpTrack) ID() string { return u.id }

// PublisherID is the id of the publishing peer.
func (u *UpTrack) PublisherID() string { return u.publisher.id }

// Kind is audio or video.
func (u *UpTrack) Kind() webrtc.RTPCodecType { return u.kind }

// Mid is the mid of the publisher's transceiver.
func (u *UpTrack) Mid() string { return u.mid }

// Codec is the codec the publisher sends.
func (u *UpTrack) Codec() webrtc.RTPCodecParameters { return u.cur.Load().params }

func (u *UpTrack) setCodec(c webrtc.RTPCodecParameters) {
	u.cur.Store(&upCodec{params: c, ck: codecKindOf(c.MimeType)})
}

// codecKindOf returns the keyframe parser for packets of payload type pt:
// the current codec's, or during a switch the other one's.
func (u *UpTrack) codecKindOf(pt uint8) codecKind {
	if c := u.cur.Load(); uint8(c.params.PayloadType) == pt {
		return c.ck
	}
	for _, c := range u.offered {
		if uint8(c.PayloadType) == pt {
			return codecKindOf(c.MimeType)
		}
	}
	return codecAudio
}

// Layers lists the simulcast rids, lowest quality first (nil without simulcast).
func (u *UpTrack) Layers() []string { return slices.Clone(u.rids) }

// Muted reports whether the publisher muted the track.
func (u *UpTrack) Muted() bool { return u.muted.Load() }

// SetPriority sets the track's share of subscribers' bandwidth: among
// tracks of one subscriber, higher priorities get better layers first.
func (u *UpTrack) SetPriority(p int) { u.priority.Store(int32(p)) }

// Done is closed when the track ends.
func (u *UpTrack) Done() <-chan struct{} { return u.closed }

func (u *UpTrack) layerCount() int { return max(1, len(u.rids)) }

// layerIndex maps a rid to its layer (-1 if unknown); "" is the only layer
// of a track without simulcast.
func (u *UpTrack) layerIndex(rid string) int {
	if len(u.rids) == 0 {
		if rid == "" {
			return 0
		}
		return -1
	}
	return slices.Index(u.rids, rid)
}

// SetMuted records the publisher's mute state. A muted track is not
// forwarded; on unmute every subscriber resumes at the next keyframe, with
// no gap in its sequence numbers.
func (u *UpTrack) SetMuted(muted bool) {
	if u.muted.Swap(muted) == muted {
		return
	}
	u.fwdMu.Lock()
	for _, d := range *u.downs.Load() {
		d.restart()
	}
	u.fwdMu.Unlock()
	if !muted {
		now := time.Now().UnixNano()
		for i := range u.layerCount() {
			u.requestKeyframe(i, now)
		}
	}
}

func (u *UpTrack) addDown(d *DownTrack) {
	u.downsMu.Lock()
	old := *u.downs.Load()
	next := make([]*DownTrack, len(old), len(old)+1)
	copy(next, old)
	next = append(next, d)
	u.downs.Store(&next)
	u.downsMu.Unlock()
	u.updateNeeds()
}

func (u *UpTrack) removeDown(d *DownTrack) {
	u.downsMu.Lock()
	old := *u.downs.Load()
	i := slices.Index(old, d)
	if i < 0 {
		u.downsMu.Unlock()
		return
	}
	next := slices.Delete(slices.Clone(old), i, i+1)
	u.downs.Store(&next)
	u.downsMu.Unlock()
	u.updateNeeds()
}

// updateNeeds tells the publisher of a simulcast track which layers its
// subscribers need, when that changes: a layer is needed when a subscriber
// wants it or a better one; the lowest is always needed, so that a new
// subscriber starts at once. Bandwidth does not count: a subscriber held to
// a lower layer by its link still needs the better one for when it widens.
func (u *UpTrack) updateNeeds() {
	if len(u.rids) < 2 {
		return
	}
	u.needMu.Lock()
	defer u.needMu.Unlock()
	mask := uint32(1)
	for _, d := range *u.downs.Load() {
		mask |= 1<<(d.maxLayer.Load()+1) - 1
	}
	if mask == u.needMask {
		return
	}
	if u.needMask == 0 && mask == 1<<len(u.rids)-1 {
		u.needMask = mask // all layers: what the publisher sends anyway
		return
	}
	u.needMask = mask
	var rids []string
	for i, r := range u.rids {
		if mask&(1<<i) != 0 {
			rids = append(rids, r)
		}
	}
	u.publisher.h.LayersWanted(u, rids)
}

// WantedLayers returns the simulcast layers the publisher was last told
// its subscribers need (all of them before it was told anything); nil for
// a track without simulcast.
func (u *UpTrack) WantedLayers() []string {
	if len(u.rids) < 2 {
		return nil
	}
	u.needMu.Lock()
	mask := u.needMask
	u.needMu.Unlock()
	if mask == 0 {
		return slices.Clone(u.rids)
	}
	var rids []string
	for i, r := range u.rids {
		if mask&(1<<i) != 0 {
			rids = append(rids, r)
		}
	}
	return rids
}

// Subscribers counts the track's subscriptions.
func (u *UpTrack) Subscribers() int { return len(*u.downs.Load()) }

// requestKeyframe asks the publisher for a keyframe of layer l, at most once
// per keyframeInterval.
func (u *UpTrack) requestKeyframe(l int, now int64) {
	layer := &u.layers[l]
	last := layer.lastPLI.Load()
	if now-last < int64(keyframeInterval) || !layer.lastPLI.CompareAndSwap(last, now) {
		return
	}
	ssrc := layer.ssrc.Load()
	if ssrc == 0 {
		return
	}
	layer.plis.Add(1)
	_ = u.publisher.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: ssrc}})
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
		layer.recv.update(p.SequenceNumber, p.Timestamp, now, layer.clockRate)
		layer.measure(now)
		if u.extAudioLevel != 0 {
			u.hearLevel(&p, now)
		}
		key := u.kind == webrtc.RTPCodecTypeAudio || isKeyframeStart(u.codecKindOf(p.PayloadType), p.Payload)
		u.forward(l, &p, key, now)
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
