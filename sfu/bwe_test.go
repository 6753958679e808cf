package sfu

import (
	"testing"
	"time"
)

// feedbackFor reports packets [from, from+n) of b's send history as
// received 1 ms apart (or lost where lost says so).
func feedbackFor(from uint16, n int, lost func(i int) bool) *twccFeedback {
	return feedbackAt(from, n, 1_000_000, lost)
}

// feedbackAt is feedbackFor with the first arrival at ref µs.
func feedbackAt(from uint16, n int, ref int64, lost func(i int) bool) *twccFeedback {
	fb := &twccFeedback{base: from, refTime: ref}
	for i := range n {
		if lost != nil && lost(i) {
			fb.statuses = append(fb.statuses, twccNotReceived)
			continue
		}
		fb.statuses = append(fb.statuses, twccSmallDelta)
		fb.deltas = append(fb.deltas, 1000)
	}
	return fb
}

// sendPackets records n packets of size bytes sent 1 ms apart from start.
func sendPackets(b *bwe, n, size int, start int64) int64 {
	for i := range n {
		b.onSent(size, start+int64(i)*int64(time.Millisecond), false)
	}
	return start + int64(n)*int64(time.Millisecond)
}

// TestBWEFeedbackCountedOnce: a feedback repeated (by a client that means
// harm, or overlapping an earlier one) adds no observation, and a feedback
// claiming more packets than were ever sent costs no more than the history.
func TestBWEFeedbackCountedOnce(t *testing.T) {
	b := newBWE()
	now := sendPackets(b, 500, 1000, time.Now().UnixNano())
	fb := feedbackFor(0, 500, func(i int) bool { return i%10 == 0 })
	for range 200 {
		b.onFeedback(fb, now)
	}
	if got := len(b.st.obs); got != 500 {
		t.Fatalf("%d observations after 200 copies of one feedback of 500 packets, want 500", got)
	}
	// The estimate saw 10% loss once, not 200 times over.
	before := b.Estimate()
	b.onFeedback(feedbackFor(100, 300, nil), now) // overlaps: all reported already
	if got := len(b.st.obs); got != 500 || b.Estimate() != before {
		t.Errorf("an overlapping feedback changed the state: %d observations, estimate %d -> %d", got, before, b.Estimate())
	}

	// 65535 statuses in one feedback (run-length chunks make that a few
	// bytes): at most the history is walked.
	huge := &twccFeedback{base: 500, refTime: 1_000_000, statuses: make([]uint8, 65535)}
	start := time.Now()
	for range 1000 {
		b.onFeedback(huge, now)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("1000 feedbacks of 65535 statuses took %v", d)
	}
}

// TestBWEFollowsFeedback feeds the estimator synthetic feedback of bursts
// of 8 Mbit/s (4 Mbit/s on average) sent, starting from an estimate of 20 Mbit/s: a clean link keeps it, a
// link losing a third brings it under what was delivered, and garbage
// (feedback about packets never sent) changes nothing.
func TestBWEFollowsFeedback(t *testing.T) {
	for _, tc := range []struct {
		name string
		lost func(i int) bool
		want func(before, after int) bool
		what string
	}{
		{"steady", nil, func(b, a int) bool { return a >= b }, "not lower"},
		{"congested", func(i int) bool { return i%3 == 0 }, func(b, a int) bool { return a <= 8_000_000*2/3*85/100*105/100 }, "at most 85% of the 5.3 Mbit/s delivered"},
		{"garbage", nil, func(b, a int) bool { return a == b }, "unchanged"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBWE()
			b.est.Store(20_000_000)
			now := time.Now().UnixNano()
			before := b.Estimate()
			var seq uint16
			for range 30 { // 6 s of 100 packets in 100 ms every 200 ms
				sentAt := now
				now = sendPackets(b, 100, 1000, now)
				from := seq
				if tc.name == "garbage" {
					from += 30000 // never sent
				}
				// Arrivals 20 ms after sending, in the receiver's clock.
				b.onFeedback(feedbackAt(from, 100, sentAt/1000+20_000, tc.lost), now)
				seq += 100
				now += int64(100 * time.Millisecond)
			}
			if after := b.Estimate(); !tc.want(before, after) {
				t.Errorf("estimate %d -> %d, want %s", before, after, tc.what)
			}
		})
	}
}

// TestBWECongestionNeverRaises: a link that loses a third of what it is
// sent lowers the estimate or leaves it; it never raises it to the share
// of the (much larger) delivered rate that congestion keeps, even when the
// server sent far above the estimate (a probe, audio, a keyframe burst).
func TestBWECongestionNeverRaises(t *testing.T) {
	b := newBWE()
	b.est.Store(300_000)
	now := time.Now().UnixNano()
	var seq uint16
	for range 30 { // 6 s of bursts of 8 Mbit/s, a third lost
		sentAt := now
		now = sendPackets(b, 100, 1000, now)
		b.onFeedback(feedbackAt(seq, 100, sentAt/1000+20_000, func(i int) bool { return i%3 == 0 }), now)
		seq += 100
		now += int64(100 * time.Millisecond)
	}
	if got := b.Estimate(); got > 300_000 {
		t.Errorf("under 33%% loss the estimate went from 300 kbit/s to %d", got)
	}
}

// TestSentRecord: a send-history record gives back its packet's number,
// size (up to 2047 bytes), probe flag and send time (to the microsecond),
// read up to hours later or earlier, across the wrap of its time bits.
func TestSentRecord(t *testing.T) {
	const us = int64(time.Microsecond)
	wrap := int64(1<<sentTimeBits) * us
	for _, tc := range []struct {
		at, readAt int64
		size       int
		probe      bool
	}{
		{at: 1e9, readAt: 1e9, size: 1200},
		{at: 1_767_225_600 * 1e9, readAt: 1_767_225_600*1e9 + 3e9, size: 80, probe: true},
		{at: 7*wrap - 5*us, readAt: 7*wrap + 2e9, size: 1500}, // the time bits wrapped between
		{at: 7*wrap + 5*us, readAt: 7*wrap - 1e6, size: 3000}, // read a little before (another goroutine's clock)
		{at: 123_456_789_123, readAt: 123_456_789_123 + 2*int64(time.Hour), size: 0},
	} {
		m := packSent(65535, tc.size, tc.probe, tc.at)
		if got := uint16(m&sentSeqMask - 1); got != 65535 {
			t.Errorf("seq %d, want 65535", got)
		}
		if got, want := int(m>>sentSizeShift&sentSizeMax), min(tc.size, sentSizeMax); got != want {
			t.Errorf("size %d, want %d", got, want)
		}
		if got := m&sentProbe != 0; got != tc.probe {
			t.Errorf("probe %v, want %v", got, tc.probe)
		}
		if m&sentReported != 0 {
			t.Error("a new record is reported")
		}
		if got, want := sentTime(m, tc.readAt), tc.at/us*us; got != want {
			t.Errorf("sent at %d read at %d: got %d (off by %d ns)", tc.at, tc.readAt, got, got-want)
		}
	}
}
