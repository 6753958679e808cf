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
// then every video track its lowest layer, then one layer up at a time,
// round-robin in priority order, while the next step fits. When a wanted
// layer does not fit, it probes for the bandwidth the cheapest next step
// needs. Runs in the peer's allocator goroutine.
func (p *Peer) allocate(now int64) {
	downs := *p.downs.Load()
	for _, d := range downs {
		d.measure(now)
	}
	if !p.bwe.hasFeedback() {
		// No TWCC feedback (a client without it): no estimate to go by.
		for _, d := range downs {
			d.bweLayer.Store(int32(d.up.layerCount() - 1))
		}
		return
	}
	budget := p.bwe.Estimate()
	video := p.scratchVideo[:0]
	for _, d := range downs {
		if d.up.kind != videoKind {
			budget -= max(audioReserve, d.up.layers[0].bitrate(now))
			continue
		}
		if !d.up.Muted() {
			video = append(video, d)
		}
	}
	p.scratchVideo = video
	sortByPriority(video)

	choice := p.scratchChoice[:0]
	for _, d := range video {
		l := d.lowestActive(now)
		choice = append(choice, l)
		if l >= 0 {
			budget -= d.up.layers[l].bitrate(now)
		}
	}
	p.scratchChoice = choice
	margin := p.bwe.Estimate() / 10
	wantMore, cheapest := false, 0
	for improved := true; improved; {
		improved = false
		for i, d := range video {
			next := d.nextActive(choice[i], now)
			if next < 0 {
				continue
			}
			extra := d.up.layers[next].bitrate(now)
			if choice[i] >= 0 {
				extra -= d.up.layers[choice[i]].bitrate(now)
			}
			if extra <= budget-margin {
				choice[i] = next
				budget -= extra
				improved = true
				continue
			}
			if !wantMore || extra < cheapest {
				wantMore, cheapest = true, extra
			}
		}
	}
	for i, d := range video {
		l := int32(max(0, choice[i]))
		if old := d.bweLayer.Swap(l); old != l {
			p.log.Debug("bandwidth allocation", "track", d.up.id, "layer", l, "was", old, "estimate", p.bwe.Estimate())
		}
	}
	if wantMore {
		// Probe a quarter above what the next step needs, so that a link
		// that only just carries it (or carries it only in a burst) fails.
		need := p.bwe.Estimate() - budget + cheapest
		p.probe(need*5/4, now)
	}
}

// lowestActive is the lowest layer being sent (-1: none).
func (d *DownTrack) lowestActive(now int64) int {
	for i := range d.up.layerCount() {
		if d.up.layers[i].active(now) {
			return i
		}
	}
	return -1
}

// nextActive is the next layer above l that is being sent and that the
// subscriber wants (-1: none).
func (d *DownTrack) nextActive(l int, now int64) int {
	for i := l + 1; i <= int(d.maxLayer.Load()) && i < d.up.layerCount(); i++ {
		if d.up.layers[i].active(now) {
			return i
		}
	}
	return -1
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
func (p *Peer) probe(target int, now int64) {
	var d *DownTrack
	for _, c := range *p.downs.Load() {
		if b := c.bound.Load(); b != nil && b.twccID != 0 && c.up.kind == videoKind {
			d = c
			break
		}
	}
	if d == nil {
		return // no video to probe with
	}
	sending := 0
	for _, c := range *p.downs.Load() {
		if l := int(c.layer.Load()); l >= 0 {
			sending += c.up.layers[l].bitrate(now)
		}
	}
	extra := target - sending
	if extra <= 0 || !p.bwe.startProbe(target, now) {
		return
	}
	const tick = 20 * time.Millisecond
	perTick := extra / 8 * int(tick) / int(time.Second) // bytes
	end := time.Now().Add(bweProbeLength)
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-p.done:
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
	if !d.write(h, b, &d.probe.twcc, numbered, padding) {
		return 0
	}
	return len(padding) + rtpOverhead
}
