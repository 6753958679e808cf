package sfu

// rewriter maps the sequence numbers and timestamps of the packets a
// subscriber is sent, so that it sees one continuous stream across the
// points where forwarding (re)starts: the first keyframe, a simulcast layer
// switch, an unmute. Between restarts the mapping is a constant offset, so
// real loss stays visible as a gap (and is NACKed), reordering is kept, and
// nothing is invented.
type rewriter struct {
	clockRate uint32 // of the stream's codec; timestamps advance at this rate

	seqDelta uint16 // out = in + seqDelta
	tsDelta  uint32 // out = in + tsDelta
	firstIn  uint16 // first input sequence number since the last restart
	maxIn    uint16 // highest input sequence number since the last restart

	sent    bool   // a packet has been sent
	lastSeq uint16 // highest output sequence number sent
	lastTS  uint32 // output timestamp of lastSeq
	lastAt  int64  // when lastSeq was sent, unix nanoseconds
}

// restart continues the output after the last packet sent with the input
// packet (seq, ts): the next output sequence number follows on, and the
// timestamp advances by the wall-clock time since the last packet sent.
func (r *rewriter) restart(seq uint16, ts uint32, now int64) {
	if !r.sent {
		r.seqDelta, r.tsDelta = 0, 0 // the first start keeps the publisher's numbering
	} else {
		r.seqDelta = r.lastSeq + 1 - seq
		elapsed := uint32(1)
		if d := now - r.lastAt; d > 0 && r.clockRate > 0 {
			elapsed = max(1, uint32(uint64(d)*uint64(r.clockRate)/1e9))
		}
		r.tsDelta = r.lastTS + elapsed - ts
	}
	r.firstIn, r.maxIn = seq, seq
}

// rewrite maps an input packet. It reports false for a packet older than the
// last restart, which belongs to what the subscriber was not sent.
func (r *rewriter) rewrite(seq uint16, ts uint32, now int64) (uint16, uint32, bool) {
	newest := int16(seq-r.maxIn) >= 0
	if !newest && int16(seq-r.firstIn) < 0 {
		return 0, 0, false
	}
	outSeq, outTS := seq+r.seqDelta, ts+r.tsDelta
	if newest {
		r.maxIn = seq
		r.lastSeq, r.lastTS, r.lastAt = outSeq, outTS, now
		r.sent = true
	}
	return outSeq, outTS, true
}
