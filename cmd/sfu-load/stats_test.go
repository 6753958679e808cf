package main

import (
	"math"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/tessera-rtc/tessera/signaling/client"
)

func TestBucketsCoverEveryValueOnce(t *testing.T) {
	prevHi := int64(-1)
	for i := range histBuckets {
		lo, hi := bucketBounds(i)
		if int64(lo) != prevHi+1 {
			t.Fatalf("bucket %d starts at %d, the previous ended at %d", i, lo, prevHi)
		}
		if lo >= histSub && float64(hi-lo+1)/float64(lo) > 1.0/16+1e-9 {
			t.Fatalf("bucket %d [%d, %d] is wider than 1/16 of its start", i, lo, hi)
		}
		for _, v := range []uint64{lo, (lo + hi) / 2, hi} {
			if got := bucketOf(v); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, got, i)
			}
		}
		prevHi = int64(hi)
	}
	if got := bucketOf(math.MaxUint64); got != histBuckets-1 {
		t.Fatalf("a huge value lands in bucket %d, want the last (%d)", got, histBuckets-1)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	var h histogram
	c := newHistCounts()
	h.addTo(c)
	if c.quantile(0.5) != 0 || c.maxValue() != 0 {
		t.Fatal("an empty histogram has quantiles")
	}

	// 1..10000 µs once each: the q-quantile is about q*10000.
	for v := uint64(1); v <= 10000; v++ {
		h.Record(v)
	}
	c = newHistCounts()
	h.addTo(c)
	if c.total() != 10000 {
		t.Fatalf("total %d, want 10000", c.total())
	}
	for _, q := range []float64{0.1, 0.5, 0.9, 0.99, 0.999} {
		want := q * 10000
		if got := c.quantile(q); math.Abs(got-want)/want > 0.04 {
			t.Errorf("quantile(%v) = %v, want %v ± 4%%", q, got, want)
		}
	}
	if got := c.maxValue(); got < 10000 || got > 10000*1.07 {
		t.Errorf("max = %v, want 10000 (+ at most a bucket)", got)
	}

	// Small values are exact.
	var small histogram
	for range 3 {
		small.Record(7)
	}
	small.Record(9)
	c = newHistCounts()
	small.addTo(c)
	if got := c.quantile(0.5); got != 7 {
		t.Errorf("median of 7,7,7,9 = %v, want 7", got)
	}
	if got := c.quantile(1); got != 9 {
		t.Errorf("quantile(1) of 7,7,7,9 = %v, want 9", got)
	}

	// A difference of two moments holds only what came between them.
	before := newHistCounts()
	small.addTo(before)
	small.Record(1000)
	after := newHistCounts()
	small.addTo(after)
	d := after.sub(before)
	if d.total() != 1 || math.Abs(d.quantile(0.5)-1000) > 1000.0/16 {
		t.Errorf("difference: total %d, median %v; want 1 sample of about 1000", d.total(), d.quantile(0.5))
	}
}

// synthPackets returns marshaled packets of a video Synth with the given
// sequence numbers.
func synthPackets(t *testing.T, seqs ...uint16) [][]byte {
	t.Helper()
	s, err := client.NewSynth("video", "v", "p", 1, 300)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, seq := range seqs {
		p := s.Next(time.Now().Add(-2 * time.Millisecond))
		p.SequenceNumber = seq
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func TestRecordClassifiesPackets(t *testing.T) {
	rx := &rxStream{video: true}
	var p rtp.Packet
	// Counters 0..5 sent; sequence numbers rewritten by a server. Packet
	// 2 (seq 12) is lost, 4 arrives after 5, 1 arrives twice; then a
	// corrupt payload, a read that is not RTP and a padding packet.
	pkts := synthPackets(t, 10, 11, 12, 13, 14, 15)
	for _, i := range []int{0, 1, 3, 5, 4, 1} {
		rx.record(pkts[i], &p, time.Now())
	}
	bad := synthPackets(t, 16)[0]
	bad[len(bad)-1] ^= 0xff // the CRC no longer matches
	rx.record(bad, &p, time.Now())
	rx.record([]byte{1, 2, 3}, &p, time.Now()) // not RTP
	probe := rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, PaddingSize: 200, SequenceNumber: 17}}
	pad, err := probe.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	rx.record(pad, &p, time.Now())

	for name, c := range map[string]struct {
		got  *atomic.Uint64
		want uint64
	}{
		"packets":             {&rx.packets, 8},
		"padding":             {&rx.padding, 1},
		"corrupt":             {&rx.corrupt, 2},
		"verified":            {&rx.verified, 6},
		"sequence span":       {&rx.seqExpected, 8}, // 10..17
		"sequence late":       {&rx.seqLate, 1},
		"sequence duplicates": {&rx.seqDup, 1},
		"counter span":        {&rx.cntExpected, 6}, // 0..5
		"counter duplicates":  {&rx.cntDup, 1},
	} {
		if got := c.got.Load(); got != c.want {
			t.Errorf("%s: %d, want %d", name, got, c.want)
		}
	}
	c := newHistCounts()
	rx.latency.addTo(c)
	if c.total() != 5 || c.quantile(0.5) < 1000 {
		t.Errorf("latency: %d samples, median %v µs; want 5 (no duplicate) of at least 2 ms", c.total(), c.quantile(0.5))
	}
	if rx.source.Load() != 1 {
		t.Errorf("source %d, want 1", rx.source.Load())
	}
}

func TestSeenWindow(t *testing.T) {
	var w seenWindow
	if adv, dup := w.mark(1000); adv != 1 || dup {
		t.Fatalf("first: %d %v", adv, dup)
	}
	seen := map[uint32]bool{1000: true}
	// Advance by steps that cross the words of the bitmap, marking some
	// numbers behind, and check every number behind the top.
	for _, step := range []uint32{1, 63, 64, 65, 3, 130, 255} {
		top := w.top + step
		if adv, dup := w.mark(top); adv != step || dup {
			t.Fatalf("advance to %d: %d %v", top, adv, dup)
		}
		seen[top] = true
		back := top - step/2
		if step > 1 && !seen[back] {
			if adv, dup := w.mark(back); adv != 0 || dup {
				t.Fatalf("late %d: %d %v", back, adv, dup)
			}
			seen[back] = true
		}
		for v := top - seenSpan + 1; v <= top; v++ {
			probe := w // a copy: marking must not change the original
			if _, dup := probe.mark(v); dup != seen[v] {
				t.Fatalf("top %d: %d reported seen=%v, want %v", top, v, dup, seen[v])
			}
		}
	}
	if adv, dup := w.mark(w.top - seenSpan); adv != 0 || dup {
		t.Fatalf("too old: %d %v, want 0 false", adv, dup)
	}
	if _, dup := w.mark(w.top + 1000); dup {
		t.Fatal("a jump reported a duplicate")
	}

	// Sequence numbers wrap.
	var s seenWindow
	s.mark(s.extend(65534))
	if adv, _ := s.mark(s.extend(1)); adv != 3 {
		t.Fatalf("65534 to 1 advanced %d, want 3", adv)
	}
	if _, dup := s.mark(s.extend(65534)); !dup {
		t.Fatal("65534 again is not a duplicate across the wrap")
	}
}

func TestRecordAllocatesNothing(t *testing.T) {
	pkts := synthPackets(t, 1, 2, 3, 4, 5, 6, 7, 8)
	rx := &rxStream{video: true}
	var p rtp.Packet
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		rx.record(pkts[i%len(pkts)], &p, time.Now())
		i++
	})
	if allocs != 0 {
		t.Fatalf("record allocates %v times per packet", allocs)
	}
}

func TestBetweenComputesLossAndRates(t *testing.T) {
	rec := newRecorder(2)
	a, b := &rxStream{sub: 0}, &rxStream{sub: 1}
	rec.addRx(a)
	rec.addRx(b)
	tx := &txStream{}
	rec.addTx(tx)
	s0 := rec.snapshot()
	tx.sent.Add(100)
	a.packets.Add(100)
	a.verified.Add(100)
	a.seqExpected.Add(100)
	a.cntExpected.Add(100)
	b.packets.Add(98)
	b.verified.Add(98)
	b.seqExpected.Add(100)
	b.cntExpected.Add(100)
	s1 := rec.snapshot()
	s1.at = s0.at.Add(2 * time.Second)
	iv := between(s0, s1)
	if iv.packets != 198 || iv.seqLost != 2 || math.Abs(iv.seqLossPct-1) > 1e-9 {
		t.Errorf("packets %d, lost %d (%v%%); want 198, 2 (1%%)", iv.packets, iv.seqLost, iv.seqLossPct)
	}
	if iv.ppsSent != 50 || iv.ppsRecv != 99 {
		t.Errorf("rates sent %v recv %v; want 50 and 99", iv.ppsSent, iv.ppsRecv)
	}
	if iv.perSub[0] != 100 || iv.perSub[1] != 98 {
		t.Errorf("per subscriber %v, want [100 98]", iv.perSub)
	}
}
