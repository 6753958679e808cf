package sfu

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// subscriber is a peer's receiving side: the estimate of the bandwidth its
// client can take, how that is shared among its subscriptions (allocate),
// and the RTCP reports the peer sends (sendReports). Its goroutine, run,
// owns the fields marked so; downs is replaced (copy-on-write) by
// negotiation, under the peer's negMu, and read by anyone; bwe has its own
// lock and is fed by the subscriptions' RTCP readers.
type subscriber struct {
	peer *Peer // for what it publishes and its PeerConnection (reports); nil in allocator tests
	log  *slog.Logger
	done <-chan struct{} // closed when the peer closes
	bwe  *bwe
	// direct is the peer's direct send path (direct.go); a path of its
	// own, never taken, without a peer.
	direct *directPath
	// downs lists the attached subscriptions.
	downs atomic.Pointer[[]*DownTrack]
	// rtcp bounds the RTCP read for all of the subscriptions together; the
	// subscriptions' RTCP readers share it.
	rtcpMu sync.Mutex
	rtcp   rtcpLimiter

	// Owned by run:
	scratchVideo  []*DownTrack
	scratchRates  []layerRates
	scratchChoice []int
	lastRR        int64  // when receiver reports last went out
	rtcpSSRC      uint32 // the SSRC the server's receiver reports come from
}

func newSubscriber(p *Peer, log *slog.Logger, done <-chan struct{}) *subscriber {
	s := &subscriber{
		peer: p, log: log, done: done, bwe: newBWE(), rtcpSSRC: randUint32(), direct: &directPath{},
		rtcp: newRTCPLimiter(subscriberRTCPRate, subscriberRTCPBurst),
	}
	if p != nil {
		s.direct = &p.direct
	}
	s.downs.Store(&[]*DownTrack{})
	return s
}

// run shares out the subscriber's bandwidth every allocateInterval, and
// sends the reports that are due, until done.
func (s *subscriber) run() {
	t := time.NewTicker(allocateInterval)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case now := <-t.C:
			s.allocate(now.UnixNano())
			s.sendReports(now.UnixNano())
		}
	}
}

// admitRTCP takes a token from the subscriber's RTCP budget: false when its
// subscriptions together are over it. Called once per RTCP packet that a
// subscription's own limit admitted, never per forwarded packet.
func (s *subscriber) admitRTCP(now int64) bool {
	s.rtcpMu.Lock()
	defer s.rtcpMu.Unlock()
	return s.rtcp.allow(now)
}

// subscriptions lists the attached subscriptions.
func (s *subscriber) subscriptions() []*DownTrack { return *s.downs.Load() }

// estimate is the bandwidth estimate in bits/s (0 when the client sends no
// congestion feedback).
func (s *subscriber) estimate() int {
	if !s.bwe.hasFeedback() {
		return 0
	}
	return s.bwe.Estimate()
}
