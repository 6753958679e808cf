package main

import (
	"math"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tessera-rtc/tessera/signaling/client"
)

// Latency histogram: fixed log-linear buckets over microseconds. Values
// below 16 µs have a bucket each; above, every power of two is split into
// 16 buckets, so a bucket is at most 1/16 (6.25 %) of its lower bound wide.
// Recording is one atomic add; percentiles come from bucket counts, so no
// sample is ever stored.
const (
	histSub     = 16 // buckets per power of two
	histSubBits = 4  // log2(histSub)
	histOctaves = 32 // 16 µs .. 2^36 µs (about 19 h)
	histBuckets = histSub * (1 + histOctaves)
	histMaxUs   = 1<<(histOctaves+histSubBits) - 1
)

// bucketOf returns the bucket of a value in µs.
func bucketOf(us uint64) int {
	if us < histSub {
		return int(us)
	}
	if us > histMaxUs {
		us = histMaxUs
	}
	shift := bits.Len64(us) - histSubBits - 1 // us>>shift is in [16, 32)
	return histSub*(shift+1) + int(us>>shift) - histSub
}

// bucketBounds returns the smallest and largest value of bucket i.
func bucketBounds(i int) (lo, hi uint64) {
	if i < histSub {
		return uint64(i), uint64(i)
	}
	shift := i/histSub - 1
	m := uint64(i%histSub + histSub)
	return m << shift, (m+1)<<shift - 1
}

// histogram counts latencies; Record may run concurrently with snapshots.
type histogram struct {
	counts [histBuckets]atomic.Uint64
}

func (h *histogram) Record(us uint64) { h.counts[bucketOf(us)].Add(1) }

// histCounts is a histogram's state at one moment (or the difference of
// two moments).
type histCounts []uint64

func (h *histogram) addTo(c histCounts) {
	for i := range h.counts {
		c[i] += h.counts[i].Load()
	}
}

func newHistCounts() histCounts { return make(histCounts, histBuckets) }

// sub returns c - old.
func (c histCounts) sub(old histCounts) histCounts {
	out := newHistCounts()
	for i := range c {
		out[i] = c[i] - old[i]
	}
	return out
}

func (c histCounts) total() uint64 {
	var n uint64
	for _, v := range c {
		n += v
	}
	return n
}

// quantile returns the value below which a fraction q of the samples lie,
// as the middle of its bucket; 0 without samples.
func (c histCounts) quantile(q float64) float64 {
	n := c.total()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var cum uint64
	for i, v := range c {
		cum += v
		if cum >= rank {
			lo, hi := bucketBounds(i)
			return float64(lo+hi) / 2
		}
	}
	return 0
}

// maxValue returns the upper bound of the highest non-empty bucket.
func (c histCounts) maxValue() float64 {
	for i := len(c) - 1; i >= 0; i-- {
		if c[i] > 0 {
			_, hi := bucketBounds(i)
			return float64(hi)
		}
	}
	return 0
}

// txStream is one synthetic stream a publisher sends.
type txStream struct {
	synth *client.Synth
	pps   float64 // packets per second
	// Header extension ids and values for simulcast layers (0: none).
	midID, ridID uint8
	mid, rid     []byte

	sent   atomic.Uint64
	errors atomic.Uint64 // writes that failed
	slips  atomic.Uint64 // times the sender fell behind and skipped packets
}

// recorder holds every stream of the run.
type recorder struct {
	mu  sync.Mutex
	rx  []*rxStream
	tx  []*txStream
	nsb int // subscribers (for per-subscriber totals)
}

func newRecorder(subscribers int) *recorder { return &recorder{nsb: subscribers} }

func (r *recorder) addRx(s *rxStream) {
	r.mu.Lock()
	r.rx = append(r.rx, s)
	r.mu.Unlock()
}

func (r *recorder) addTx(s *txStream) {
	r.mu.Lock()
	r.tx = append(r.tx, s)
	r.mu.Unlock()
}

// layers counts the received simulcast streams by the layer (rid) they
// carry now.
func (r *recorder) layers() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	rid := map[uint32]string{}
	for _, t := range r.tx {
		if len(t.rid) > 0 {
			rid[t.synth.Source] = string(t.rid)
		}
	}
	out := map[string]int{}
	for _, x := range r.rx {
		if l, ok := rid[x.source.Load()]; ok {
			out[l]++
		}
	}
	return out
}

// counters are the sums of the streams' counters.
type counters struct {
	sent, sendErrors, slips  uint64
	packets, bytes, verified uint64
	corrupt, padding         uint64
	seqExpected, seqDup      uint64
	seqLate                  uint64
	cntExpected, cntDup      uint64
	latencySum               uint64
}

func (c counters) sub(o counters) counters {
	return counters{
		sent: c.sent - o.sent, sendErrors: c.sendErrors - o.sendErrors, slips: c.slips - o.slips,
		packets: c.packets - o.packets, bytes: c.bytes - o.bytes, verified: c.verified - o.verified,
		corrupt: c.corrupt - o.corrupt, padding: c.padding - o.padding,
		seqExpected: c.seqExpected - o.seqExpected, seqDup: c.seqDup - o.seqDup, seqLate: c.seqLate - o.seqLate,
		cntExpected: c.cntExpected - o.cntExpected, cntDup: c.cntDup - o.cntDup,
		latencySum: c.latencySum - o.latencySum,
	}
}

// snapshot is the state of every counter at one moment; the difference
// of two snapshots describes the interval between them.
type snapshot struct {
	at time.Time
	counters
	latency histCounts
	perSub  []uint64 // packets per subscriber

	// Current RFC 3550 jitter over the streams that have one (not a
	// counter: meaningful in a snapshot, not in a difference).
	jitterSum, jitterMax float64
	jitterN              int
}

func (r *recorder) snapshot() snapshot {
	s := snapshot{at: time.Now(), latency: newHistCounts(), perSub: make([]uint64, r.nsb)}
	r.mu.Lock()
	rx, tx := r.rx, r.tx
	r.mu.Unlock()
	c := &s.counters
	for _, t := range tx {
		c.sent += t.sent.Load()
		c.sendErrors += t.errors.Load()
		c.slips += t.slips.Load()
	}
	for _, x := range rx {
		n := x.packets.Load()
		c.packets += n
		s.perSub[x.sub] += n
		c.bytes += x.bytes.Load()
		c.verified += x.verified.Load()
		c.corrupt += x.corrupt.Load()
		c.padding += x.padding.Load()
		c.seqExpected += x.seqExpected.Load()
		c.seqDup += x.seqDup.Load()
		c.seqLate += x.seqLate.Load()
		c.cntExpected += x.cntExpected.Load()
		c.cntDup += x.cntDup.Load()
		c.latencySum += x.latencySum.Load()
		x.latency.addTo(s.latency)
		if bitsJ := x.jitter.Load(); bitsJ != 0 {
			j := math.Float64frombits(bitsJ)
			s.jitterSum += j
			s.jitterMax = max(s.jitterMax, j)
			s.jitterN++
		}
	}
	return s
}

// interval is what happened between two snapshots.
type interval struct {
	d time.Duration
	counters
	latency                    histCounts
	perSub                     []uint64
	seqLost, cntLost           int64
	seqLossPct, cntLossPct     float64
	ppsSent, ppsRecv, mbitRecv float64
}

func between(a, b snapshot) interval {
	iv := interval{
		d:        b.at.Sub(a.at),
		counters: b.counters.sub(a.counters),
		latency:  b.latency.sub(a.latency),
		perSub:   make([]uint64, len(b.perSub)),
	}
	for i := range b.perSub {
		iv.perSub[i] = b.perSub[i] - a.perSub[i]
	}
	iv.seqLost = int64(iv.seqExpected) - int64(iv.packets-iv.seqDup)
	iv.cntLost = int64(iv.cntExpected) - int64(iv.verified-iv.cntDup)
	iv.seqLossPct = lossPct(iv.seqLost, iv.seqExpected)
	iv.cntLossPct = lossPct(iv.cntLost, iv.cntExpected)
	if secs := iv.d.Seconds(); secs > 0 {
		iv.ppsSent = float64(iv.sent) / secs
		iv.ppsRecv = float64(iv.packets) / secs
		iv.mbitRecv = float64(iv.bytes) * 8 / secs / 1e6
	}
	return iv
}

// lossPct is lost/expected in percent, never negative (packets counted at
// a window's edge can make lost slightly negative).
func lossPct(lost int64, expected uint64) float64 {
	if expected == 0 || lost <= 0 {
		return 0
	}
	return 100 * float64(lost) / float64(expected)
}

// latencyMs returns the quantile q of the interval's latency in ms.
func (iv interval) latencyMs(q float64) float64 { return iv.latency.quantile(q) / 1000 }
