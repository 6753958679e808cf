package main

import (
	"errors"
	"io"
	"math"
	"sync/atomic"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/signaling/client"
)

// rxStream is one track as one subscriber receives it. The counters are
// written by the track's reader goroutine only and read by snapshots.
type rxStream struct {
	sub   int // index of the subscriber
	video bool

	packets  atomic.Uint64 // RTP packets read (that parsed)
	bytes    atomic.Uint64 // their payload bytes
	verified atomic.Uint64 // payloads that passed client.ReadStamp
	corrupt  atomic.Uint64 // payloads that failed it, and reads that were not RTP
	padding  atomic.Uint64 // packets without payload (padding only)

	// Loss as RFC 3550 counts it, lost = expected - received, where
	// expected is the span of numbers seen and received leaves out
	// duplicates; once from the sequence numbers, once from the counters.
	seqExpected atomic.Uint64
	seqDup      atomic.Uint64 // sequence number seen before
	seqLate     atomic.Uint64 // behind the highest, not seen before: reordered or retransmitted
	cntExpected atomic.Uint64
	cntDup      atomic.Uint64 // counter seen before (verified payloads)

	latencySum atomic.Uint64 // µs, over verified packets that are not duplicates
	latency    histogram     // µs, over the same packets
	jitter     atomic.Uint64 // math.Float64bits of the RFC 3550 jitter, ns
	source     atomic.Uint32 // the source of the last verified packet (a simulcast layer)

	// Owned by the reader goroutine.
	seqs     seenWindow
	counts   seenWindow
	src      uint32  // source the counts window follows
	transit  int64   // ns, of the previous in-order packet of src
	timed    bool    // transit is set
	jitterNs float64 // J
}

// receive reads tr until it ends into one reused buffer and packet.
func receive(tr *webrtc.TrackRemote, rx *rxStream) {
	buf := make([]byte, 1500)
	var p rtp.Packet
	for {
		n, _, err := tr.Read(buf)
		if errors.Is(err, io.ErrShortBuffer) {
			rx.corrupt.Add(1) // larger than any packet the tool sends
			continue
		}
		if err != nil {
			return
		}
		rx.record(buf[:n], &p, time.Now())
	}
}

// record accounts for one packet read at now. It allocates nothing.
func (s *rxStream) record(pkt []byte, p *rtp.Packet, now time.Time) {
	if err := p.Unmarshal(pkt); err != nil {
		s.corrupt.Add(1) // not RTP: counted as corrupt, not as a packet
		return
	}
	s.packets.Add(1)
	s.bytes.Add(uint64(len(p.Payload)))

	adv, dup := s.seqs.mark(s.seqs.extend(p.SequenceNumber))
	switch {
	case dup:
		s.seqDup.Add(1)
	case adv == 0:
		s.seqLate.Add(1)
	default:
		s.seqExpected.Add(uint64(adv))
	}

	if len(p.Payload) == 0 {
		// Padding only (pion strips the padding): bandwidth probes. They
		// take sequence numbers but carry no media.
		s.padding.Add(1)
		return
	}

	st, err := client.ReadStamp(p.Payload, s.video)
	if err != nil {
		s.corrupt.Add(1)
		return
	}
	s.verified.Add(1)

	// A new source (the server switched simulcast layers) starts a new
	// count, and a new path for the jitter.
	if !s.counts.started || st.Source != s.src {
		s.counts = seenWindow{}
		s.src, s.timed = st.Source, false
		s.source.Store(st.Source)
	}
	adv, dup = s.counts.mark(st.Counter)
	if dup {
		s.cntDup.Add(1)
		return
	}
	s.cntExpected.Add(uint64(adv))

	lat := now.UnixNano() - st.SentAt.UnixNano()
	us := uint64(max(lat, 0) / 1000)
	s.latency.Record(us)
	s.latencySum.Add(us)

	// RFC 3550 interarrival jitter, with the send time taken from the
	// payload instead of the RTP timestamp: J += (|D| - J) / 16, where D is
	// the change in transit time between consecutive packets. Packets
	// behind the highest (retransmissions) are left out.
	if adv == 0 {
		return
	}
	if s.timed {
		d := float64(lat - s.transit)
		s.jitterNs += (math.Abs(d) - s.jitterNs) / 16
		s.jitter.Store(math.Float64bits(s.jitterNs))
	}
	s.transit, s.timed = lat, true
}

// seenWindow remembers which of the last 256 numbers of a sequence
// arrived, to tell new packets, gap fillers and duplicates apart.
type seenWindow struct {
	started bool
	top     uint32    // highest number seen
	bits    [4]uint64 // bit i: top-i was seen
}

const seenSpan = 256

// extend maps a 16-bit RTP sequence number to 32 bits, next to top.
func (w *seenWindow) extend(seq uint16) uint32 {
	if !w.started {
		return uint32(seq)
	}
	return w.top + uint32(int32(int16(seq-uint16(w.top))))
}

// mark records v. It returns how far v moved the highest number (1 for the
// first; 0 for a number behind it) and whether v was seen already. A
// number too far behind to tell counts as not seen.
func (w *seenWindow) mark(v uint32) (advance uint32, dup bool) {
	if !w.started {
		w.started, w.top, w.bits = true, v, [4]uint64{1}
		return 1, false
	}
	if d := int32(v - w.top); d > 0 {
		w.shift(uint32(d))
		w.top = v
		w.bits[0] |= 1
		return uint32(d), false
	}
	back := w.top - v
	if back >= seenSpan {
		return 0, false
	}
	word, bit := back/64, back%64
	if w.bits[word]&(1<<bit) != 0 {
		return 0, true
	}
	w.bits[word] |= 1 << bit
	return 0, false
}

// shift moves the window n numbers up.
func (w *seenWindow) shift(n uint32) {
	if n >= seenSpan {
		w.bits = [4]uint64{}
		return
	}
	words, bits := int(n/64), n%64
	for i := len(w.bits) - 1; i >= 0; i-- {
		var v uint64
		if j := i - words; j >= 0 {
			v = w.bits[j] << bits
			if bits > 0 && j > 0 {
				v |= w.bits[j-1] >> (64 - bits)
			}
		}
		w.bits[i] = v
	}
}
