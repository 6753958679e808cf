package sfu

// rewriter maps the sequence numbers and timestamps of the packets a
// subscriber is sent, so that it sees one continuous stream across the
// points where forwarding (re)starts: the first keyframe, a simulcast layer
// switch, an unmute. Between restarts the mapping is a constant offset, so
// real loss stays visible as a gap (and is NACKed), reordering is kept, and
// nothing is invented.
type rewriter struct {
	clockRate uint32 // of the stream's codec; timestamps advance at this rate

	cur, prev run // the mapping since the last restart, and the one before

	sent    bool   // a packet has been sent
	lastSeq uint16 // highest output sequence number sent
	lastTS  uint32 // output timestamp of lastSeq
	lastAt  int64  // when lastSeq was sent, unix nanoseconds
}

// run is one constant mapping: the packets of one layer between restarts.
type run struct {
	layer    int
	seqDelta uint16 // out = in + seqDelta
	tsDelta  uint32 // out = in + tsDelta
	firstIn  uint16 // first input sequence number of the run
	maxIn    uint16 // highest input sequence number of the run
	valid    bool
}

// holds reports whether output sequence number out belongs to the run, and
// the input sequence number it came from.
func (r *run) holds(out uint16) (uint16, bool) {
	in := out - r.seqDelta
	return in, r.valid && int16(in-r.firstIn) >= 0 && int16(r.maxIn-in) >= 0
}

// restart continues the output after the last packet sent with the input
// packet (seq, ts): the next output sequence number follows on, and the
// timestamp advances by the wall-clock time since the last packet sent.
func (r *rewriter) restart(layer int, seq uint16, ts uint32, now int64) {
	if r.cur.valid {
		r.prev = r.cur
	}
	r.cur = run{layer: layer, firstIn: seq, maxIn: seq, valid: true}
	if r.sent {
		r.cur.seqDelta = r.lastSeq + 1 - seq
		elapsed := uint32(1)
		if d := now - r.lastAt; d > 0 && r.clockRate > 0 {
			elapsed = max(1, uint32(uint64(d)*uint64(r.clockRate)/1e9))
		}
		r.cur.tsDelta = r.lastTS + elapsed - ts
	} // else the first start keeps the publisher's numbering
}

// rewrite maps an input packet. It reports false for a packet older than the
// last restart, which belongs to what the subscriber was not sent.
func (r *rewriter) rewrite(seq uint16, ts uint32, now int64) (uint16, uint32, bool) {
	c := &r.cur
	newest := int16(seq-c.maxIn) >= 0
	if !newest && int16(seq-c.firstIn) < 0 {
		return 0, 0, false
	}
	outSeq, outTS := seq+c.seqDelta, ts+c.tsDelta
	if newest {
		c.maxIn = seq
		r.lastSeq, r.lastTS, r.lastAt = outSeq, outTS, now
		r.sent = true
	}
	return outSeq, outTS, true
}

// lookup maps a sequence number the subscriber asks again for to the packet
// it was made from: its layer, input sequence number and timestamp offset.
func (r *rewriter) lookup(out uint16) (layer int, in uint16, tsDelta uint32, ok bool) {
	for _, run := range []*run{&r.cur, &r.prev} {
		if in, ok := run.holds(out); ok {
			return run.layer, in, run.tsDelta, true
		}
	}
	return 0, 0, 0, false
}
