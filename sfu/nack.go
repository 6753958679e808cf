package sfu

import "github.com/pion/rtp"

// Each packet is resent to a subscriber at most retransmitMax times, and
// not twice within retransmitMinGap: a NACK repeated sooner is a duplicate,
// and a client that keeps asking (some count only the original stream as
// received, not its RTX repairs) cannot turn the server into an amplifier.
const (
	retransmitMinGap = 40_000_000 // ns
	retransmitMax    = 3
)

// nackMaxPackets bounds the packets one NACK feedback may ask for (a full
// compound packet can name over 5,000): a receiver never needs more than
// the last second of a stream resent, and what is beyond is ignored.
const nackMaxPackets = 256

// retransmitter answers a subscriber's NACKs from the publisher's packet
// caches. It is owned by the DownTrack's RTCP goroutine.
type retransmitter struct {
	want    []nackRef // scratch: the packets one NACK asks for
	buf     []byte    // a packet copied out of the cache
	pkt     rtp.Packet
	hdr     rtp.Header
	twcc    [2]byte
	seal    sealer           // seals the resent packets on the direct path
	lastAt  [cacheSize]int64 // when out sequence number i%cacheSize was last resent
	lastSeq [cacheSize]uint16
	count   [cacheSize]uint8 // how often it was resent

	runs [runHistory]run // a copy of the rewriter's runs, to look up without its lock
	head int
}

type nackRef struct {
	layer   int
	in, out uint16
	tsDelta uint32
}

// handleNACK resends what the subscriber lost: each packet is looked up by
// the sequence number the subscriber saw, fetched from the cache of the
// layer it came from, rewritten as it was sent and sent again. Nothing goes
// upstream: the publisher never sees a subscriber's NACK.
//
// Retransmissions go out on the media SSRC, not as RTX: receivers address
// their transport-wide feedback to the SSRC of the last packet they got,
// and pion (v4.2) delivers no RTCP addressed to a sender's RTX SSRC, so RTX
// would hide part of the feedback from the bandwidth estimator. Subscribers
// are therefore not offered RTX at all.
func (d *DownTrack) handleNACK(entries [][4]byte, now int64) {
	b := d.bound.Load()
	if b == nil || d.up.kind != videoKind {
		return
	}
	r := d.wanted(entries)
	for _, w := range r.want {
		slot := w.out % cacheSize
		if r.lastSeq[slot] != w.out || r.count[slot] == 0 {
			r.lastSeq[slot], r.count[slot] = w.out, 0
		} else if now-r.lastAt[slot] < retransmitMinGap || r.count[slot] >= retransmitMax {
			continue
		}
		cache := d.up.layers[w.layer].cache
		if cache == nil {
			continue
		}
		k, ok := cache.get(w.in, r.buf[:cap(r.buf)])
		if !ok || r.pkt.Unmarshal(r.buf[:k]) != nil {
			d.nackMisses.Add(1)
			continue
		}
		r.lastAt[slot] = now
		r.count[slot]++
		h := &r.hdr
		d.fillHeader(h, b, &r.pkt, w.out, r.pkt.Timestamp+w.tsDelta)
		numbered := d.numberPacket(h, b, &r.twcc, len(r.pkt.Payload), now, false)
		if d.write(h, b, &r.twcc, numbered, r.pkt.Payload, &r.seal, nil, true) {
			d.retransmitted.Add(1)
		}
	}
}

// wanted looks up what a NACK asks for, at most nackMaxPackets packets,
// into d.rtx.want. The rewriter's runs are copied under the forwarding
// lock (a kilobyte) and searched after it is released, so a subscriber
// flooding NACKs does not stall the track's forwarding to the others.
func (d *DownTrack) wanted(entries [][4]byte) *retransmitter {
	if d.rtx == nil {
		d.rtx = &retransmitter{buf: make([]byte, 1500)}
	}
	r := d.rtx
	r.want = r.want[:0]
	d.up.fwdMu.Lock() // the mapping is the forwarding goroutine's
	r.runs, r.head = d.rw.runs, d.rw.head
	d.up.fwdMu.Unlock()
	asked := 0
	for _, e := range entries {
		nackSeqs(e, func(out uint16) {
			if asked++; asked > nackMaxPackets {
				return
			}
			if layer, in, tsDelta, ok := lookupRuns(&r.runs, r.head, out); ok {
				r.want = append(r.want, nackRef{layer: layer, in: in, out: out, tsDelta: tsDelta})
			} else {
				d.nackMisses.Add(1)
			}
		})
		if asked > nackMaxPackets {
			break
		}
	}
	return r
}
