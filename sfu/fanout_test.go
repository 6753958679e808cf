package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtp"
)

// TestFanoutPoolCloseWhileForwarding: the engine may close while a reader
// still forwards a large fan-out (a peer outlived the shutdown deadline):
// forwarding goes on in the reader, with no panic and no hang.
func TestFanoutPoolCloseWhileForwarding(t *testing.T) {
	pool := newFanoutPool()
	u := &UpTrack{publisher: &Peer{e: &Engine{fanout: pool}}}
	downs := make([]*DownTrack, 3*fanoutChunk)
	for i := range downs {
		downs[i] = &DownTrack{up: u}
	}
	started, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var p rtp.Packet
		for i := range 20000 {
			if i == 10 {
				close(started)
			}
			u.fwdMu.Lock()
			u.fanout(downs, 0, &p, false, 0)
			u.fwdMu.Unlock()
		}
	}()
	<-started
	pool.close()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("fan-out hung after the pool closed")
	}
}
