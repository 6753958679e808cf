package sfu

import (
	"sync"
	"sync/atomic"
	"time"
)

// The bandwidth estimator of one subscriber, from its transport-wide
// congestion control (TWCC) feedback.
//
// pion/interceptor's GCC was not used: it allocates per packet (an
// attribute map) and takes locks on the send path, and it cannot raise its
// estimate past 1.5 times what is being sent, while an SFU that sends only
// what the estimate allows must be able to find out that more would fit.
// This one keeps the send path to a few atomic stores, and raises its
// estimate by probing: it adds padding packets at a quarter above the rate
// the next layer needs, and adopts the rate delivered when the link carries
// it without loss or queueing.
//
// The server numbers the packets it sends to the subscriber (the
// transport-wide sequence number header extension) and remembers when and
// how big each was; the feedback says which arrived and when. From the last
// half second it computes the delivery rate, the loss, and the queueing
// delay (one-way delay above the lowest seen in ten seconds):
//   - loss over 10% or queueing over 100 ms: the estimate drops to 85% of
//     the delivery rate (or stays, if that is lower already);
//   - loss under 2% and queueing under 30 ms: the estimate grows 8% a second,
//     up to 1.5 times the delivery rate (more must be proven by a probe);
//   - otherwise it holds.
type bwe struct {
	next atomic.Uint32 // transport-wide sequence number of the next packet
	sent [bweHistory]sentPacket

	mu  sync.Mutex
	st  bweState // guarded by mu
	est atomic.Int64
}

const (
	bweHistory      = 2048
	bweInitial      = 1_500_000 // bps: optimistic; a congested link corrects it within a second
	bweMin          = 100_000
	bweMax          = 50_000_000
	bweWindow       = 500 * time.Millisecond
	bweProbeLength  = 500 * time.Millisecond
	bweProbeMinGap  = time.Second
	bweProbeBackoff = 4 * time.Second
)

// sentPacket is one record of the send history, one word written by any
// sender with one atomic store: the sequence number + 1 (bits 0-16; 0:
// empty), the size (17-27, at most 2047 bytes), the probe flag (28), the
// reported flag (29), and the send time in microseconds, modulo 2^34 (30-63,
// about 4.8 hours: the history spans seconds).
type sentPacket = atomic.Uint64

const (
	sentSeqMask   = 1<<17 - 1
	sentSizeShift = 17
	sentSizeMax   = 1<<11 - 1
	sentProbe     = 1 << 28
	sentReported  = 1 << 29
	sentTimeShift = 30
	sentTimeBits  = 64 - sentTimeShift
)

func packSent(seq uint16, size int, probe bool, now int64) uint64 {
	m := uint64(seq) + 1 | uint64(min(max(size, 0), sentSizeMax))<<sentSizeShift
	if probe {
		m |= sentProbe
	}
	return m | uint64(now/int64(time.Microsecond))<<sentTimeShift
}

// sentTime is the send time (unix ns) of record m, read at now: the time
// within 2^33 µs of now whose low bits the record holds.
func sentTime(m uint64, now int64) int64 {
	nowUs := now / int64(time.Microsecond)
	d := (uint64(nowUs) - m>>sentTimeShift) & (1<<sentTimeBits - 1)
	back := int64(d)
	if d >= 1<<(sentTimeBits-1) {
		back -= 1 << sentTimeBits
	}
	return (nowUs - back) * int64(time.Microsecond)
}

// observation is one packet of the feedback, with our record of it.
type observation struct {
	sentAt  int64 // ns, our clock
	arrival int64 // ns, the subscriber's clock (0: lost)
	delay   int64 // arrival - sentAt - bweState.offset: one-way delay up to a constant
	size    int
	probe   bool
}

type bweState struct {
	obs       []observation // the last second, by send time
	baseDelay [10]delayMin  // lowest one-way delay of each of the last ten seconds
	lastAct   int64         // last estimate change
	feedbacks int
	offset    int64 // arrival - sentAt of the first packet: the clocks' offset, roughly
	hasOffset bool

	// probing
	probeFrom, probeTo int64 // the probe's send window
	probeTarget        int
	nextProbe          int64 // no probe before
	probeFailures      int
}

type delayMin struct {
	second int64
	min    int64
}

func newBWE() *bwe {
	b := &bwe{}
	b.est.Store(bweInitial)
	return b
}

// Estimate is the available bandwidth in bits per second.
func (b *bwe) Estimate() int { return int(b.est.Load()) }

// onSent records a packet about to be sent and returns its transport-wide
// sequence number. Safe from any goroutine; allocates nothing.
func (b *bwe) onSent(size int, now int64, probe bool) uint16 {
	seq := uint16(b.next.Add(1) - 1)
	b.sent[seq%bweHistory].Store(packSent(seq, size, probe, now))
	return seq
}

// unsent forgets packet seq, numbered but not sent after all (pion drops
// packets until DTLS is up): its absence from the feedback is no loss.
func (b *bwe) unsent(seq uint16) {
	s := &b.sent[seq%bweHistory]
	if m := s.Load(); m&sentSeqMask == uint64(seq)+1 {
		s.CompareAndSwap(m, 0)
	}
}

// onFeedback folds in one TWCC feedback. Each packet counts once: what a
// feedback reports again (a repeat, or an overlap with an earlier one) is
// skipped, and a feedback covers at most the send history, so that no
// feedback costs more than bweHistory steps whatever a client sends.
func (b *bwe) onFeedback(fb *twccFeedback, now int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := &b.st
	st.feedbacks++
	arrival := fb.refTime * int64(time.Microsecond)
	deltas := fb.deltas
	seq := fb.base
	statuses := fb.statuses
	if len(statuses) > bweHistory {
		statuses = statuses[:bweHistory]
	}
	for _, status := range statuses {
		received := status == twccSmallDelta || status == twccLargeDelta
		if received && len(deltas) > 0 {
			arrival += deltas[0] * int64(time.Microsecond)
			deltas = deltas[1:]
		}
		s := &b.sent[seq%bweHistory]
		m := s.Load()
		if m&sentSeqMask == uint64(seq)+1 && m&sentReported == 0 && s.CompareAndSwap(m, m|sentReported) {
			o := observation{sentAt: sentTime(m, now), size: int(m >> sentSizeShift & sentSizeMax), probe: m&sentProbe != 0}
			if received {
				o.arrival = arrival
			}
			st.add(o)
		}
		seq++
	}
	b.update(now)
}

func (st *bweState) add(o observation) {
	if o.arrival != 0 {
		if !st.hasOffset {
			st.offset, st.hasOffset = o.arrival-o.sentAt, true
		}
		o.delay = o.arrival - o.sentAt - st.offset
	}
	// Keep observations ordered by send time; feedback comes in order, so
	// this is an append except for rare reordering.
	i := len(st.obs)
	for i > 0 && st.obs[i-1].sentAt > o.sentAt {
		i--
	}
	st.obs = append(st.obs, observation{})
	copy(st.obs[i+1:], st.obs[i:])
	st.obs[i] = o
	if o.arrival != 0 {
		d := o.delay
		sec := o.sentAt / int64(time.Second)
		m := &st.baseDelay[sec%int64(len(st.baseDelay))]
		if m.second != sec || d < m.min {
			if m.second != sec {
				m.second, m.min = sec, d
			} else {
				m.min = d
			}
		}
	}
}

// windowStats summarizes the observations sent in [from, to).
type windowStats struct {
	packets, lost  int
	ackedBytes     int
	firstArrival   int64
	lastArrival    int64
	delaySum       int64
	delayed        int
	rate           int // bps delivered, 0 if the window is too short to tell
	lossRatio      float64
	queueingDelay  time.Duration
	enoughForRate  bool
	enoughForDelay bool
}

func (st *bweState) stats(from, to int64) windowStats {
	var w windowStats
	for _, o := range st.obs {
		if o.sentAt < from || o.sentAt >= to {
			continue
		}
		w.packets++
		if o.arrival == 0 {
			w.lost++
			continue
		}
		w.ackedBytes += o.size
		if w.firstArrival == 0 || o.arrival < w.firstArrival {
			w.firstArrival = o.arrival
		}
		w.lastArrival = max(w.lastArrival, o.arrival)
		w.delaySum += o.delay
		w.delayed++
	}
	if w.packets > 0 {
		w.lossRatio = float64(w.lost) / float64(w.packets)
	}
	if span := w.lastArrival - w.firstArrival; span >= int64(100*time.Millisecond) {
		w.rate = int(int64(w.ackedBytes) * 8 * int64(time.Second) / span)
		w.enoughForRate = true
	}
	if w.delayed >= 5 {
		base := int64(1<<62 - 1)
		now := to / int64(time.Second)
		for _, m := range st.baseDelay {
			if now-m.second < int64(len(st.baseDelay)) && m.min < base {
				base = m.min
			}
		}
		w.queueingDelay = time.Duration(w.delaySum/int64(w.delayed) - base)
		w.enoughForDelay = true
	}
	return w
}

// update recomputes the estimate. Called with mu held.
func (b *bwe) update(now int64) {
	st := &b.st
	// Forget observations older than a second.
	cut := 0
	for cut < len(st.obs) && now-st.obs[cut].sentAt > int64(time.Second) {
		cut++
	}
	st.obs = append(st.obs[:0], st.obs[cut:]...)

	est := int(b.est.Load())
	// A probe that ended (and whose feedback had time to come) is judged.
	if st.probeTo != 0 && now > st.probeTo+int64(200*time.Millisecond) {
		w := st.stats(st.probeFrom, st.probeTo)
		ok := w.enoughForRate && w.lossRatio < 0.05 && w.queueingDelay < 50*time.Millisecond && w.rate >= st.probeTarget*9/10
		if ok {
			est = max(est, min(w.rate, st.probeTarget))
			st.probeFailures = 0
		} else {
			st.probeFailures++
		}
		st.probeFrom, st.probeTo = 0, 0
		gap := bweProbeMinGap
		if !ok {
			gap = min(bweProbeBackoff, time.Duration(st.probeFailures)*bweProbeMinGap)
		}
		st.nextProbe = now + int64(gap)
		st.lastAct = now
		b.est.Store(int64(est))
		return
	}
	if st.probeTo != 0 || now-st.lastAct < int64(100*time.Millisecond) {
		return // judge probes on their own; act at most ten times a second
	}
	w := st.stats(now-int64(bweWindow), now)
	switch {
	case w.packets < 10:
		return
	case w.lossRatio > 0.10 || (w.enoughForDelay && w.queueingDelay > 100*time.Millisecond):
		if w.enoughForRate && now-st.lastAct >= int64(300*time.Millisecond) {
			est = min(est, w.rate*85/100) // congestion never raises it
		} else {
			return
		}
	case w.lossRatio < 0.02 && w.enoughForDelay && w.queueingDelay < 30*time.Millisecond && w.enoughForRate:
		ceiling := w.rate * 3 / 2
		if est < ceiling {
			dt := float64(now-st.lastAct) / float64(time.Second)
			est = min(ceiling, int(float64(est)*(1+0.08*min(dt, 1)))+1000)
		}
	default:
		return
	}
	est = max(bweMin, min(bweMax, est))
	st.lastAct = now
	b.est.Store(int64(est))
}

// startProbe asks for a probe of target bps; it reports whether one may
// start now (the caller then sends the extra packets for bweProbeLength).
func (b *bwe) startProbe(target int, now int64) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := &b.st
	if st.feedbacks == 0 || st.probeTo != 0 || now < st.nextProbe {
		return false
	}
	st.probeFrom, st.probeTo, st.probeTarget = now, now+int64(bweProbeLength), target
	return true
}

// hasFeedback reports whether the subscriber sends TWCC feedback at all.
func (b *bwe) hasFeedback() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st.feedbacks > 0
}
