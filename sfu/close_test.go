package sfu

import (
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// TestTrackStartAfterClose: pion starts a layer's reader (onTrack) on a
// goroutine of its own, which may first run while the peer closes or just
// after. It must not be counted in the peer's WaitGroup once Close waits on
// it: such an Add, unordered with Close, is reported by the race detector
// (and let a reader outlive Close). The test holds Close in its Wait, then
// lets onTrack run after Close returned, with nothing but time between them.
func TestTrackStartAfterClose(t *testing.T) {
	e := testEngine(t)
	p := newPair(t, e).server
	tr, err := p.pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	if err != nil {
		t.Fatal(err)
	}
	p.wg.Add(1) // holds Close in its Wait
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_ = p.Close()
	}()
	time.Sleep(100 * time.Millisecond) // Close is waiting

	started := make(chan struct{})
	go func() {
		defer close(started)
		time.Sleep(200 * time.Millisecond) // Close has returned; no sync on purpose
		p.onTrack(nil, tr.Receiver())
	}()
	p.wg.Done()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
	<-started
}
