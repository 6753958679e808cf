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
	out      sendBatch // the fan-out's own chunk on the direct path
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

	// rec, when set, is sent the best layer's packets (Record).
	rec atomic.Pointer[recorderRef]

	closeOnce sync.Once
	closed    chan struct{}
}

// A Recorder receives a track's packets as they arrive, those of its best
// simulcast layer, on the track's reader goroutine: it must copy what it
// keeps, and never block.
type Recorder interface {
	RecordRTP(p *rtp.Packet)
}

type recorderRef struct{ r Recorder }

// Record sends the track's packets to r from now on (nil: to nobody), and
// asks the publisher for a keyframe for it to start with.
func (u *UpTrack) Record(r Recorder) {
	if r == nil {
		u.rec.Store(nil)
	} else {
		u.rec.Store(&recorderRef{r})
	}
	u.updateNeeds()
	u.RequestKeyframe()
}

// RequestKeyframe asks the publisher for a keyframe of the best layer, at
// most once per keyframe interval.
func (u *UpTrack) RequestKeyframe() {
	if u.kind == webrtc.RTPCodecTypeVideo {
		u.requestKeyframe(u.layerCount()-1, time.Now().UnixNano())
	}
}

// upCodec is a codec a track is sent in, with its keyframe parser.
type upCodec struct {
	params webrtc.RTPCodecParameters // numbered as the publisher numbers it
	ck     codecKind
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
	if u.rec.Load() != nil {
		mask = 1<<len(u.rids) - 1 // a recording keeps the best layer
	}
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
