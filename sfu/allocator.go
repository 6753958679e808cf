package sfu

import (
	"time"

	"github.com/pion/rtp"
)

// allocateInterval is how often a subscriber's bandwidth is shared out.
const allocateInterval = 200 * time.Millisecond

// audioReserve is what an audio track is assumed to need before it has been
// measured.
const audioReserve = 64_000

// allocate shares the subscriber's estimated bandwidth among its video
// subscriptions and picks each one's highest simulcast layer: audio first,
// then chooseLayers. When a wanted layer does not fit, it probes for the
// bandwidth the cheapest next step needs. Runs in the subscriber's
// goroutine.
func (s *subscriber) allocate(now int64) {
	downs := s.subscriptions()
	for _, d := range downs {
		d.measure(now)
	}
	if !s.bwe.hasFeedback() {
		// No TWCC feedback (a client without it): no estimate to go by.
		for _, d := range downs {
			d.bweLayer.Store(int32(d.up.layerCount() - 1))
		}
		return
	}
	est := s.bwe.Estimate()
	budget := est
	video := s.scratchVideo[:0]
	for _, d := range downs {
		if d.up.kind != videoKind {
			budget -= max(audioReserve, d.up.layers[0].bitrate(now))
			continue
		}
		if !d.up.Muted() {
			video = append(video, d)
		}
	}
	s.scratchVideo = video
	sortByPriority(video)

	tracks := s.scratchRates[:0]
	for _, d := range video {
		tracks = append(tracks, d.layerRates(now))
	}
	s.scratchRates = tracks
	a := chooseLayers(budget, est/10, tracks, s.scratchChoice)
	s.scratchChoice = a.layers
	for i, d := range video {
		l := int32(max(0, a.layers[i]))
		if old := d.bweLayer.Swap(l); old != l {
			s.log.Debug("bandwidth allocation", "track", d.up.id, "layer", l, "was", old, "estimate", est)
		}
	}
	if a.wantMore {
		// Probe a quarter above what the next step needs, so that a link
		// that only just carries it (or carries it only in a burst) fails.
		need := est - a.left + a.cheapest
		s.probe(need*5/4, now)
	}
}

// layerRates is the bitrate of each simulcast layer of a video track in
// bits/s, lowest layer first; -1 for a layer that may not be chosen.
type layerRates [maxLayers]int

// allocation is what chooseLayers decided.
type allocation struct {
	layers   []int // per track, the layer chosen (-1: the track has none)
	left     int   // the budget not spent; negative when the lowest layers exceed it
	wantMore bool  // a track's next layer did not fit
	cheapest int   // the extra bits/s of the cheapest next layer that did not fit
}

// chooseLayers shares budget bits/s among video tracks, given in priority
// order, highest first: every track gets its lowest layer, budget or not;
// then, round-robin in priority order, one track at a time goes up to its
// next layer while the extra bitrate fits within the budget left less
// margin. It reports the cheapest step that did not fit (to probe for).
// The layers are appended to layers[:0], which the caller may reuse; it
// allocates nothing when layers has room for every track.
func chooseLayers(budget, margin int, tracks []layerRates, layers []int) allocation {
	a := allocation{layers: layers[:0]}
	for _, r := range tracks {
		l := r.next(-1)
		a.layers = append(a.layers, l)
		if l >= 0 {
			budget -= r[l]
		}
	}
	for improved := true; improved; {
		improved = false
		for i, r := range tracks {
			cur := a.layers[i]
			next := r.next(cur)
			if next < 0 {
				continue
			}
			extra := r[next]
			if cur >= 0 {
				extra -= r[cur]
			}
			if extra <= budget-margin {
				a.layers[i] = next
				budget -= extra
				improved = true
				continue
			}
			if !a.wantMore || extra < a.cheapest {
				a.wantMore, a.cheapest = true, extra
			}
		}
	}
	a.left = budget
	return a
}

// next is the first layer above l that may be chosen (-1: none).
func (r *layerRates) next(l int) int {
	for i := l + 1; i < len(r); i++ {
		if r[i] >= 0 {
			return i
		}
	}
	return -1
}

// layerRates reads what chooseLayers needs of d: the layers being sent up
// to the one the subscriber wants; and when none of those is sent, the
// lowest one that is (targetLayer forwards it).
func (d *DownTrack) layerRates(now int64) layerRates {
	var r layerRates
	for i := range r {
		r[i] = -1
	}
	want := int(d.maxLayer.Load())
	for i := range d.up.layerCount() {
		if !d.up.layers[i].active(now) {
			continue
		}
		if i > want && r.next(-1) >= 0 {
			break
		}
		r[i] = d.up.layers[i].bitrate(now)
		if i > want {
			break
		}
	}
	return r
}

// sortByPriority orders subscriptions by their track's priority, highest
// first, keeping the order of equals (insertion sort: a handful of tracks).
func sortByPriority(ds []*DownTrack) {
	for i := 1; i < len(ds); i++ {
		for j := i; j > 0 && ds[j].up.priority.Load() > ds[j-1].up.priority.Load(); j-- {
			ds[j], ds[j-1] = ds[j-1], ds[j]
		}
	}
}

// probe sends, for bweProbeLength, padding packets on top of the media, so
// that the link is loaded at target bps; the estimator judges from the
// feedback whether it carried them.
func (s *subscriber) probe(target int, now int64) {
	d := probeCarrier(s.subscriptions())
	if d == nil {
		return // no video being forwarded to probe with
	}
	sending := 0
	for _, c := range s.subscriptions() {
		if l := int(c.layer.Load()); l >= 0 {
			sending += c.up.layers[l].bitrate(now)
		}
	}
	extra := target - sending
	if extra <= 0 || !s.bwe.startProbe(target, now) {
		return
	}
	const tick = 20 * time.Millisecond
	perTick := extra / 8 * int(tick) / int(time.Second) // bytes
	end := time.Now().Add(bweProbeLength)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			if now.After(end) {
				return
			}
			for sent := 0; sent < perTick; {
				n := d.sendPadding(now.UnixNano())
				if n == 0 {
					break
				}
				sent += n
			}
		}
	}
}

// probeCarrier is the subscription whose stream a probe's padding goes in:
// a video track being forwarded, with transport-wide sequence numbers. Not
// a muted track, or one that has not started: sendPadding sends nothing in
// those, and a probe that sends nothing fails, again and again, while the
// estimate stays where it is.
func probeCarrier(downs []*DownTrack) *DownTrack {
	for _, c := range downs {
		if b := c.bound.Load(); b != nil && b.twccID != 0 && c.up.kind == videoKind && !c.up.Muted() && c.layer.Load() >= 0 {
			return c
		}
	}
	return nil
}

// padding is the payload of a padding-only packet: zeros, the last byte
// saying that all of it is padding (RFC 3550 section 5.1).
var padding = func() []byte {
	b := make([]byte, 255)
	b[254] = 255
	return b
}()

// prober is the scratch of probe packets, owned by the allocator.
type prober struct {
	hdr  rtp.Header
	twcc [2]byte
}

// sendPadding sends one padding-only packet in the subscriber's stream,
// with a sequence number of its own (receivers count it as received and
// drop it before the decoder), and returns its size.
//
// The packet is built with Padding set, PaddingSize zero and the padding in
// the payload: pion appends PaddingSize bytes of padding from a pooled
// buffer that still holds an earlier packet, which must not leak into this
// subscriber's stream. TestPaddingPacket checks how pion marshals it.
func (d *DownTrack) sendPadding(now int64) int {
	b := d.bound.Load()
	if b == nil {
		return 0
	}
	d.up.fwdMu.Lock()
	defer d.up.fwdMu.Unlock()
	if !d.started || !d.delivered {
		return 0
	}
	seq, ts := d.rw.insert()
	h := &d.probe.hdr
	*h = rtp.Header{Version: 2, Padding: true, PayloadType: b.pt, SequenceNumber: seq, Timestamp: ts, SSRC: b.ssrc, Extensions: h.Extensions[:0]}
	numbered := d.numberPacket(h, b, &d.probe.twcc, len(padding), now, true)
	if !d.write(h, b, &d.probe.twcc, numbered, padding, &d.fwdSeal, nil, false) {
		return 0
	}
	return len(padding) + rtpOverhead
}
