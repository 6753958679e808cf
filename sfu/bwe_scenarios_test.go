package sfu

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// The estimator against simulated paths: TWCC feedback built the way a
// receiver builds it, through the real parser.

// bweTestSize is the size of the packets of the scenarios, in bytes.
const bweTestSize = 1000

// twccWire marshals, as a subscriber sends it, a TWCC feedback about
// packets base, base+1, ...: arrivals[i] is when packet i arrived in the
// subscriber's clock (µs, positive), or -1 if it did not. Arrival times are
// rounded to the 250 µs of the format, and a gap between two arrivals
// beyond what a delta can say (±8 s) is cut to that.
func twccWire(t testing.TB, base uint16, arrivals []int64) []byte {
	t.Helper()
	tcc := &rtcp.TransportLayerCC{SenderSSRC: 1, MediaSSRC: 2, BaseSequenceNumber: base, PacketStatusCount: uint16(len(arrivals))}
	var prev int64 = -1
	var symbols []uint16
	for _, a := range arrivals {
		if a < 0 {
			symbols = append(symbols, rtcp.TypeTCCPacketNotReceived)
			continue
		}
		if prev < 0 {
			tcc.ReferenceTime = uint32(a/64_000) & 0xffffff
			prev = a / 64_000 * 64_000
		}
		d := min(max((a-prev)/250, math.MinInt16), math.MaxInt16) * 250
		prev += d
		typ := uint16(rtcp.TypeTCCPacketReceivedSmallDelta)
		if d < 0 || d > 255*250 {
			typ = rtcp.TypeTCCPacketReceivedLargeDelta
		}
		symbols = append(symbols, typ)
		tcc.RecvDeltas = append(tcc.RecvDeltas, &rtcp.RecvDelta{Type: typ, Delta: d})
	}
	for len(symbols)%7 != 0 {
		symbols = append(symbols, rtcp.TypeTCCPacketNotReceived)
	}
	for i := 0; i < len(symbols); i += 7 {
		tcc.PacketChunks = append(tcc.PacketChunks, &rtcp.StatusVectorChunk{SymbolSize: rtcp.TypeTCCSymbolSizeTwoBit, SymbolList: symbols[i : i+7]})
	}
	size := tcc.MarshalSize()
	tcc.Header = rtcp.Header{Count: rtcp.FormatTCC, Type: rtcp.TypeTransportSpecificFeedback, Length: uint16(size/4 - 1)}
	raw, err := tcc.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// deliverRTCP hands a compound RTCP packet to b the way readRTCP does.
func deliverRTCP(b *bwe, raw []byte, now int64) {
	var fb feedback
	var tw twccFeedback
	if !parseFeedback(raw, &fb) {
		return
	}
	for _, fci := range fb.twcc {
		if parseTWCC(fci, &tw) {
			b.onFeedback(&tw, now)
		}
	}
}

// bwePath is a simulated path from the server to one subscriber: random
// loss, then a bottleneck of capacity bits/s (0: none) behind a drop-tail
// queue of at most maxQueue, then a propagation delay plus up to jitter
// (which reorders packets).
type bwePath struct {
	loss     float64
	capacity int
	maxQueue time.Duration
	prop     time.Duration
	jitter   time.Duration
	rng      *rand.Rand
	free     int64 // when the bottleneck is done with what it holds
}

// carry is when a packet sent at sentAt arrives (ok false: lost).
func (p *bwePath) carry(sentAt int64, size int) (arrival int64, ok bool) {
	if p.loss > 0 && p.rng.Float64() < p.loss {
		return 0, false
	}
	arrival = sentAt
	if p.capacity > 0 {
		start := max(sentAt, p.free)
		if start-sentAt > int64(p.maxQueue) {
			return 0, false
		}
		p.free = start + int64(size)*8*int64(time.Second)/int64(p.capacity)
		arrival = p.free
	}
	arrival += int64(p.prop)
	if p.jitter > 0 {
		arrival += p.rng.Int64N(int64(p.jitter))
	}
	return arrival, true
}

// bweFeed delivers the feedback about packets base, base+1, ... (arrivals
// as in twccWire) to the simulation's estimator: how a subscriber's
// feedback reaches the server, or what a client sends instead.
type bweFeed func(s *bweSim, base uint16, arrivals []int64)

// bweSim sends packets over a bwePath and feeds back to a bwe what the
// subscriber reports, one feedback per 100 ms of packets.
type bweSim struct {
	t     testing.TB
	b     *bwe
	path  bwePath
	start int64 // the sender's clock at the start (ns)
	now   int64
	rng   *rand.Rand
	held  []byte // a feedback held back, to deliver after the next one

	low, high int // the lowest and highest estimate seen
}

func newBWESim(t testing.TB, path bwePath, estimate int) *bweSim {
	const start = 1_000_000 * int64(time.Second)
	s := &bweSim{t: t, b: newBWE(), path: path, start: start, now: start, rng: rand.New(rand.NewPCG(7, 8))}
	s.path.rng = rand.New(rand.NewPCG(1, 2))
	s.b.est.Store(int64(estimate))
	s.low, s.high = estimate, estimate
	return s
}

// deliver hands raw to the estimator now.
func (s *bweSim) deliver(raw []byte) { deliverRTCP(s.b, raw, s.now) }

// send sends rate bits/s for d, and feeds back with feed (nil: feedOnce).
func (s *bweSim) send(rate int, d time.Duration, feed bweFeed) {
	if feed == nil {
		feed = feedOnce
	}
	const tick = int64(100 * time.Millisecond)
	n := max(1, rate/(bweTestSize*8)/10)
	for end := s.now + int64(d); s.now < end; {
		base := uint16(s.b.next.Load())
		arrivals := make([]int64, n)
		for i := range arrivals {
			at := s.now + int64(i)*tick/int64(n)
			s.b.onSent(bweTestSize, at, false)
			arrivals[i] = -1
			if a, ok := s.path.carry(at, bweTestSize); ok {
				arrivals[i] = (a-s.start)/1000 + 100_000_000 // the subscriber's clock, µs
			}
		}
		s.now += tick
		feed(s, base, arrivals)
		est := s.b.Estimate()
		s.low, s.high = min(s.low, est), max(s.high, est)
	}
	if s.held != nil {
		s.deliver(s.held)
		s.held = nil
	}
}

func feedOnce(s *bweSim, base uint16, arrivals []int64) {
	s.deliver(twccWire(s.t, base, arrivals))
}

// feedTwice delivers every feedback twice (a network duplicating packets).
func feedTwice(s *bweSim, base uint16, arrivals []int64) {
	raw := twccWire(s.t, base, arrivals)
	s.deliver(raw)
	s.deliver(raw)
}

// feedSwapped delivers feedbacks in pairs, the second of each first.
func feedSwapped(s *bweSim, base uint16, arrivals []int64) {
	raw := twccWire(s.t, base, arrivals)
	if s.held == nil {
		s.held = raw
		return
	}
	s.deliver(raw)
	s.deliver(s.held)
	s.held = nil
}

// feedRepeatOld delivers each feedback, then again the one before it.
func feedRepeatOld(s *bweSim, base uint16, arrivals []int64) {
	raw := twccWire(s.t, base, arrivals)
	s.deliver(raw)
	if s.held != nil {
		s.deliver(s.held)
	}
	s.held = raw
}

// feedNeverSent reports packets far from any the server sent.
func feedNeverSent(s *bweSim, base uint16, arrivals []int64) {
	s.deliver(twccWire(s.t, base+30000, arrivals))
}

// feedEmpty reports no packet at all.
func feedEmpty(s *bweSim, base uint16, _ []int64) {
	s.deliver(twccWire(s.t, base, nil))
}

// feedAbsurd reports the right packets with arrival times jumping by the
// largest deltas the format allows, backwards and forwards.
func feedAbsurd(s *bweSim, base uint16, arrivals []int64) {
	absurd := make([]int64, len(arrivals))
	for i := range absurd {
		absurd[i] = 10_000_000_000 // µs
		if i%2 == 1 {
			absurd[i] += 8_000_000
		}
	}
	s.deliver(twccWire(s.t, base, absurd))
}

// feedOneEarly reports the first packet 5 s earlier than it arrived.
func feedOneEarly(s *bweSim, base uint16, arrivals []int64) {
	if arrivals[0] >= 0 {
		arrivals[0] -= 5_000_000
	}
	feedOnce(s, base, arrivals)
}

// feedRandom sends a TWCC feedback header followed by random bytes.
func feedRandom(s *bweSim, base uint16, arrivals []int64) {
	raw := twccWire(s.t, base, arrivals)
	for i := 12 + 4; i < len(raw); i++ { // after the base sequence number and count
		raw[i] = byte(s.rng.Uint32())
	}
	s.deliver(raw)
}

// bweCeiling is the most the estimate may reach from what a clean path
// delivers of rate bits/s: 1.5 times it, and 5% for measuring the rate over
// a window (a packet more than the time it spans, jitter).
func bweCeiling(rate int) int { return rate * 3 / 2 * 105 / 100 }

// bwePhase is rate bits/s sent for d, with the feedback fed by feed.
type bwePhase struct {
	rate int
	d    time.Duration
	feed bweFeed
}

// TestBWEScenarios runs the estimator against simulated paths and
// subscribers: where the estimate goes, within what the estimator's rules
// (see bwe) allow.
func TestBWEScenarios(t *testing.T) {
	const (
		mbps = 1_000_000
		sec  = time.Second
	)
	clean := bwePath{prop: 20 * time.Millisecond}
	bottleneck := bwePath{capacity: 4 * mbps, maxQueue: 2 * sec, prop: 20 * time.Millisecond}
	dropTail := bwePath{capacity: 4 * mbps, maxQueue: 150 * time.Millisecond, prop: 20 * time.Millisecond}
	tests := []struct {
		name     string
		path     bwePath
		estimate int // at the start
		phases   []bwePhase
		// check judges the estimates at the end of each phase; ref is the
		// same run with every feedback delivered once, in order.
		check func(t *testing.T, s *bweSim, ests, ref []int, refObs int)
	}{
		{
			name: "steady: rises to the ceiling above what is delivered", path: clean, estimate: bweInitial,
			phases: []bwePhase{{rate: 2 * mbps, d: 15 * sec}},
			check: func(t *testing.T, s *bweSim, ests, _ []int, _ int) {
				if ests[0] < 2*mbps || ests[0] > bweCeiling(2*mbps) {
					t.Errorf("estimate %d, want between the 2 Mbit/s sent and 1.5 times that", ests[0])
				}
				if s.low < bweInitial {
					t.Errorf("estimate fell to %d on a clean path", s.low)
				}
			},
		},
		{
			name: "steady: an estimate above the ceiling holds", path: clean, estimate: 20 * mbps,
			phases: []bwePhase{{rate: 2 * mbps, d: 5 * sec}},
			check: func(t *testing.T, s *bweSim, ests, _ []int, _ int) {
				if s.low != 20*mbps || s.high != 20*mbps {
					t.Errorf("estimate moved within [%d, %d] on a clean path, want it held at 20 Mbit/s", s.low, s.high)
				}
			},
		},
		{
			name: "congested: queueing at a bottleneck", path: bottleneck, estimate: 20 * mbps,
			phases: []bwePhase{{rate: 5 * mbps, d: 3 * sec}},
			check: func(t *testing.T, s *bweSim, ests, _ []int, _ int) {
				// 85% of the 4 Mbit/s delivered, give or take.
				if ests[0] > 4*mbps*85/100*105/100 || ests[0] < 4*mbps*85/100*90/100 {
					t.Errorf("estimate %d, want about 85%% of the 4 Mbit/s bottleneck", ests[0])
				}
			},
		},
		{
			name: "congested: drop-tail queue", path: dropTail, estimate: 20 * mbps,
			phases: []bwePhase{{rate: 8 * mbps, d: 3 * sec}},
			check: func(t *testing.T, s *bweSim, ests, _ []int, _ int) {
				if ests[0] > 4*mbps*85/100*105/100 || ests[0] < 4*mbps*85/100*90/100 {
					t.Errorf("estimate %d, want about 85%% of the 4 Mbit/s bottleneck", ests[0])
				}
			},
		},
		{
			name: "congested: random loss", path: bwePath{loss: 0.2, prop: 20 * time.Millisecond}, estimate: 20 * mbps,
			phases: []bwePhase{{rate: 8 * mbps, d: 3 * sec}},
			check: func(t *testing.T, s *bweSim, ests, _ []int, _ int) {
				delivered := 8 * mbps * 8 / 10
				if ests[0] > delivered*85/100*105/100 || ests[0] < delivered*85/100*85/100 {
					t.Errorf("estimate %d, want about 85%% of the %d delivered", ests[0], delivered)
				}
			},
		},
		{
			name: "recovering: climbs back once the queue drains", path: dropTail, estimate: 20 * mbps,
			phases: []bwePhase{{rate: 8 * mbps, d: 3 * sec}, {rate: 3 * mbps, d: 12 * sec}},
			check: func(t *testing.T, s *bweSim, ests, _ []int, _ int) {
				if ests[0] >= 4*mbps {
					t.Fatalf("estimate %d after congestion, want under the 4 Mbit/s bottleneck", ests[0])
				}
				if ests[1] < ests[0]*12/10 || ests[1] > bweCeiling(3*mbps) {
					t.Errorf("estimate %d -> %d after recovery, want up by a fifth at least, at most 1.5 times the 3 Mbit/s sent", ests[0], ests[1])
				}
			},
		},
		{
			name: "duplicated feedback: as if once", path: dropTail, estimate: 20 * mbps,
			phases: []bwePhase{{rate: 8 * mbps, d: 3 * sec, feed: feedTwice}, {rate: 3 * mbps, d: 5 * sec, feed: feedTwice}},
			check: func(t *testing.T, s *bweSim, ests, ref []int, refObs int) {
				if !slices.Equal(ests, ref) || len(s.b.st.obs) != refObs {
					t.Errorf("estimates %v, %d observations; once: %v, %d", ests, len(s.b.st.obs), ref, refObs)
				}
			},
		},
		{
			name: "duplicated feedback: an old one again after each", path: dropTail, estimate: 20 * mbps,
			phases: []bwePhase{{rate: 8 * mbps, d: 3 * sec, feed: feedRepeatOld}, {rate: 3 * mbps, d: 5 * sec, feed: feedRepeatOld}},
			check: func(t *testing.T, s *bweSim, ests, ref []int, refObs int) {
				if !slices.Equal(ests, ref) || len(s.b.st.obs) != refObs {
					t.Errorf("estimates %v, %d observations; once: %v, %d", ests, len(s.b.st.obs), ref, refObs)
				}
			},
		},
		{
			// A feedback overtaken by the next one leaves a hole in the
			// window the delivery rate is measured over, until it comes:
			// the estimate may come out lower, by up to the share of one
			// feedback in the window (a fifth), not higher.
			name: "reordered feedback", path: dropTail, estimate: 20 * mbps,
			phases: []bwePhase{{rate: 8 * mbps, d: 3 * sec, feed: feedSwapped}, {rate: 3 * mbps, d: 12 * sec, feed: feedSwapped}},
			check: func(t *testing.T, s *bweSim, ests, ref []int, refObs int) {
				if len(s.b.st.obs) != refObs {
					t.Errorf("%d observations, in order %d", len(s.b.st.obs), refObs)
				}
				for i := range ests {
					if ests[i] < ref[i]*7/10 || ests[i] > ref[i]*105/100 {
						t.Errorf("phase %d: estimate %d, in order %d", i, ests[i], ref[i])
					}
				}
				if !slices.IsSorted(sentTimes(s.b)) {
					t.Error("observations not in the order they were sent")
				}
			},
		},
		{
			name: "reordered packets", path: bwePath{prop: 20 * time.Millisecond, jitter: 20 * time.Millisecond}, estimate: bweInitial,
			phases: []bwePhase{{rate: 2 * mbps, d: 10 * sec}},
			check: func(t *testing.T, s *bweSim, ests, _ []int, _ int) {
				if s.low < bweInitial || ests[0] > bweCeiling(2*mbps) {
					t.Errorf("estimate within [%d, %d], want not below the start nor above 1.5 times the 2 Mbit/s sent", s.low, s.high)
				}
			},
		},
		{
			name: "garbage: packets never sent", path: clean, estimate: 5 * mbps,
			phases: []bwePhase{{rate: 2 * mbps, d: 3 * sec, feed: feedNeverSent}},
			check: func(t *testing.T, s *bweSim, _, _ []int, _ int) {
				if s.low != 5*mbps || s.high != 5*mbps || len(s.b.st.obs) != 0 {
					t.Errorf("estimate within [%d, %d], %d observations; want 5 Mbit/s held, none", s.low, s.high, len(s.b.st.obs))
				}
			},
		},
		{
			name: "garbage: empty feedback", path: clean, estimate: 5 * mbps,
			phases: []bwePhase{{rate: 2 * mbps, d: 3 * sec, feed: feedEmpty}},
			check: func(t *testing.T, s *bweSim, _, _ []int, _ int) {
				if s.low != 5*mbps || s.high != 5*mbps || len(s.b.st.obs) != 0 {
					t.Errorf("estimate within [%d, %d], %d observations; want 5 Mbit/s held, none", s.low, s.high, len(s.b.st.obs))
				}
			},
		},
		{
			// Arrivals 8 s apart: a delivery rate near nothing, and the
			// estimate at its floor; once the feedback is sane again it
			// climbs (without probes, 8% a second).
			name: "garbage: absurd deltas, then a clean path", path: clean, estimate: 5 * mbps,
			phases: []bwePhase{{rate: 2 * mbps, d: 3 * sec, feed: feedAbsurd}, {rate: 2 * mbps, d: 15 * sec}},
			check: func(t *testing.T, s *bweSim, ests, _ []int, _ int) {
				if s.low < bweMin || s.high > bweMax {
					t.Errorf("estimate within [%d, %d], out of [%d, %d]", s.low, s.high, bweMin, bweMax)
				}
				if ests[1] < 2*ests[0] {
					t.Errorf("estimate %d -> %d after 15 s of a clean path, want at least doubled", ests[0], ests[1])
				}
			},
		},
		{
			// One arrival time far too early: the window holding it spans
			// 5 s of arrivals, a delivery rate near nothing, and the
			// estimate dips; then every other packet looks queued for as
			// long as the base delay remembers the outlier (10 s), and the
			// estimate stays at most 85% of what is delivered (congestion
			// never raises it); then it climbs.
			name: "garbage: one arrival 5 s early", path: clean, estimate: 5 * mbps,
			phases: []bwePhase{{rate: 2 * mbps, d: 3 * sec}, {rate: 2 * mbps, d: 100 * time.Millisecond, feed: feedOneEarly},
				{rate: 2 * mbps, d: 5 * sec}, {rate: 2 * mbps, d: 10 * sec}},
			check: func(t *testing.T, s *bweSim, ests, _ []int, _ int) {
				if ests[2] > 2*mbps*85/100*105/100 {
					t.Errorf("estimate %d 5 s after, want at most 85%% of the 2 Mbit/s delivered", ests[2])
				}
				if ests[3] <= ests[2] {
					t.Errorf("estimate %d -> %d once the early arrival is forgotten, want it climbing", ests[2], ests[3])
				}
			},
		},
		{
			// Random statuses say most packets were lost: the estimate
			// may fall as far as its floor, no further.
			name: "garbage: random statuses and deltas", path: clean, estimate: 5 * mbps,
			phases: []bwePhase{{rate: 2 * mbps, d: 3 * sec, feed: feedRandom}},
			check: func(t *testing.T, s *bweSim, _, _ []int, _ int) {
				if s.low < bweMin || s.high > bweMax {
					t.Errorf("estimate within [%d, %d], out of [%d, %d]", s.low, s.high, bweMin, bweMax)
				}
				if n := len(s.b.st.obs); n > 2*mbps/(bweTestSize*8) {
					t.Errorf("%d observations, more than the packets of the last second", n)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			run := func(once bool) (*bweSim, []int) {
				s := newBWESim(t, tc.path, tc.estimate)
				var ests []int
				for _, ph := range tc.phases {
					if once {
						ph.feed = nil
					}
					s.send(ph.rate, ph.d, ph.feed)
					ests = append(ests, s.b.Estimate())
				}
				return s, ests
			}
			ref, refEsts := run(true)
			s, ests := run(false)
			if s.low < bweMin || s.high > bweMax {
				t.Errorf("estimate within [%d, %d], out of [%d, %d]", s.low, s.high, bweMin, bweMax)
			}
			tc.check(t, s, ests, refEsts, len(ref.b.st.obs))
			if t.Failed() {
				t.Logf("estimates %v (in order, once: %v), within [%d, %d]", ests, refEsts, s.low, s.high)
			}
		})
	}
}

// sentTimes lists the send times of b's observations, in their order.
func sentTimes(b *bwe) []int64 {
	var at []int64
	for _, o := range b.st.obs {
		at = append(at, o.sentAt)
	}
	return at
}
