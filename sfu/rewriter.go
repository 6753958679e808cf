package sfu

// rewriter maps the sequence numbers and timestamps of the packets a
// subscriber is sent, so that it sees one continuous stream across the
// points where forwarding (re)starts: the first keyframe, a simulcast layer
// switch, an unmute; and across the padding packets the server inserts to
// probe for bandwidth. Between such points the mapping is a constant offset
// (a run), so real loss stays visible as a gap (and is NACKed), reordering
// is kept, and nothing is invented.
type rewriter struct {
	clockRate uint32 // of the stream's codec; timestamps advance at this rate

	runs [runHistory]run // a ring; runs[head] is the current run
	head int

	sent    bool   // a packet has been sent
	lastSeq uint16 // highest output sequence number sent
	lastTS  uint32 // output timestamp of lastSeq
	lastAt  int64  // when lastSeq was sent, unix nanoseconds
}

// runSpan is how far back a run reaches from its newest packet: older
// packets are no longer forwarded (they would be seconds late) or resent.
const runSpan = 1 << 14

// runHistory is how many runs are remembered, for retransmissions: a
// bandwidth probe makes a run every 20 ms for half a second.
const runHistory = 64

// run is one constant mapping of the input packets of one layer.
type run struct {
	layer    int
	seqDelta uint16 // out = in + seqDelta
	tsDelta  uint32 // out = in + tsDelta
	firstIn  uint16 // first input sequence number of the run
	maxIn    uint16 // highest input sequence number of the run (firstIn-1: none yet)
	valid    bool
}

func (r *rewriter) cur() *run { return &r.runs[r.head] }

func (r *rewriter) push(next run) {
	r.head = (r.head + 1) % runHistory
	r.runs[r.head] = next
}

// restart continues the output after the last packet sent with the input
// packet (seq, ts) of layer: the next output sequence number follows on, and
// the timestamp advances by the wall-clock time since the last packet sent.
func (r *rewriter) restart(layer int, seq uint16, ts uint32, now int64) {
	next := run{layer: layer, firstIn: seq, maxIn: seq - 1, valid: true}
	if r.sent {
		next.seqDelta = r.lastSeq + 1 - seq
		elapsed := uint32(1)
		if d := now - r.lastAt; d > 0 && r.clockRate > 0 {
			elapsed = max(1, uint32(uint64(d)*uint64(r.clockRate)/1e9))
		}
		next.tsDelta = r.lastTS + elapsed - ts
	} // else the first start keeps the publisher's numbering
	r.push(next)
}

// rewrite maps an input packet of layer. It reports false for a packet that
// belongs to no run: older than the last restart, or from a layer left.
func (r *rewriter) rewrite(layer int, seq uint16, ts uint32, now int64) (uint16, uint32, bool) {
	c := r.cur()
	if c.valid && c.layer == layer && int16(seq-c.firstIn) >= 0 {
		outSeq, outTS := seq+c.seqDelta, ts+c.tsDelta
		if int16(seq-c.maxIn) > 0 {
			c.maxIn = seq
			// A run outlives the 16-bit sequence space: its start slides
			// along, so that "older than the start" stays meaningful.
			if seq-c.firstIn > runSpan {
				c.firstIn = seq - runSpan
			}
			r.lastSeq, r.lastTS, r.lastAt = outSeq, outTS, now
			r.sent = true
		}
		return outSeq, outTS, true
	}
	// A late packet of an earlier run (reordered across a probe or a switch).
	for i := 1; i < runHistory; i++ {
		o := &r.runs[(r.head-i+runHistory)%runHistory]
		if o.valid && o.layer == layer && int16(seq-o.firstIn) >= 0 && int16(o.maxIn-seq) >= 0 {
			return seq + o.seqDelta, ts + o.tsDelta, true
		}
	}
	return 0, 0, false
}

// insert makes room for one packet of the server's own (a probe's padding)
// right after the last one sent, and returns its sequence number and
// timestamp. Later packets shift by one.
func (r *rewriter) insert() (uint16, uint32) {
	c := r.cur()
	out := r.lastSeq + 1
	if c.maxIn == c.firstIn-1 {
		c.seqDelta++ // the current run is still empty: shift it
	} else {
		r.push(run{layer: c.layer, seqDelta: c.seqDelta + 1, tsDelta: c.tsDelta, firstIn: c.maxIn + 1, maxIn: c.maxIn, valid: true})
	}
	r.lastSeq = out
	return out, r.lastTS
}

// lookupRuns maps a sequence number the subscriber asks again for to the
// packet it was made from: its layer, input sequence number and timestamp
// offset. It reads a copy of a rewriter's runs (newest at head), taken
// under the forwarding lock (DownTrack.wanted).
func lookupRuns(runs *[runHistory]run, head int, out uint16) (layer int, in uint16, tsDelta uint32, ok bool) {
	for i := range runHistory {
		o := &runs[(head-i+runHistory)%runHistory]
		if !o.valid {
			continue
		}
		in := out - o.seqDelta
		if int16(in-o.firstIn) >= 0 && int16(o.maxIn-in) >= 0 {
			return o.layer, in, o.tsDelta, true
		}
	}
	return 0, 0, 0, false
}
