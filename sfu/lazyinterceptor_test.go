package sfu

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// countingFactory makes interceptors that record what was bound to them.
type countingFactory struct {
	made   atomic.Int32
	last   atomic.Pointer[countingInterceptor]
	closed atomic.Int32
}

type countingInterceptor struct {
	interceptor.NoOp
	f              *countingFactory
	writer         interceptor.RTCPWriter
	remote, unbind atomic.Int32
}

func (f *countingFactory) NewInterceptor(string) (interceptor.Interceptor, error) {
	f.made.Add(1)
	c := &countingInterceptor{f: f}
	f.last.Store(c)
	return c, nil
}

func (c *countingInterceptor) BindRTCPWriter(w interceptor.RTCPWriter) interceptor.RTCPWriter {
	c.writer = w
	return w
}

func (c *countingInterceptor) BindRemoteStream(_ *interceptor.StreamInfo, r interceptor.RTPReader) interceptor.RTPReader {
	c.remote.Add(1)
	return r
}

func (c *countingInterceptor) UnbindRemoteStream(*interceptor.StreamInfo) { c.unbind.Add(1) }

func (c *countingInterceptor) Close() error {
	c.f.closed.Add(1)
	return nil
}

// TestPublisherOnly: a peer that never receives a stream never gets the
// wrapped interceptor; the first remote stream makes it, bound to the
// peer's RTCP writer, and later streams and Close reach the same one.
func TestPublisherOnly(t *testing.T) {
	f := &countingFactory{}
	w := interceptor.RTCPWriterFunc(func([]rtcp.Packet, interceptor.Attributes) (int, error) { return 0, nil })

	sub, _ := publisherOnly{f}.NewInterceptor("sub")
	sub.BindRTCPWriter(w)
	_ = sub.Close()
	if n := f.made.Load(); n != 0 {
		t.Fatalf("a peer without remote streams made %d interceptors", n)
	}

	pub, _ := publisherOnly{f}.NewInterceptor("pub")
	pub.BindRTCPWriter(w)
	info := &interceptor.StreamInfo{SSRC: 1}
	pub.BindRemoteStream(info, nil)
	pub.BindRemoteStream(&interceptor.StreamInfo{SSRC: 2}, nil)
	pub.UnbindRemoteStream(info)
	in := f.last.Load()
	if f.made.Load() != 1 || in == nil || in.writer == nil || in.remote.Load() != 2 || in.unbind.Load() != 1 {
		t.Fatalf("made %d, bound %+v", f.made.Load(), in)
	}
	_ = pub.Close()
	if f.closed.Load() != 1 {
		t.Fatalf("closed %d interceptors, want 1", f.closed.Load())
	}
	pub.BindRemoteStream(&interceptor.StreamInfo{SSRC: 3}, nil)
	if f.made.Load() != 1 {
		t.Fatal("a closed peer made a new interceptor")
	}
}

// TestPublisherGetsNACKs: with NACK generation made lazily, a publisher
// whose packets go missing is still asked for them.
func TestPublisherGetsNACKs(t *testing.T) {
	e := testEngine(t)
	pub := newPair(t, e)
	local, _ := pub.publish(webrtc.MimeTypeVP8)
	sender := pub.client.GetSenders()[0]

	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for seq := uint16(1000); ; seq++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if seq%10 == 5 {
				continue // lost on the way
			}
			_ = local.WriteRTP(&rtp.Packet{
				Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Marker: true},
				Payload: vp8Packet(seq, seq%50 == 0),
			})
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	_ = sender.SetReadDeadline(deadline)
	for time.Now().Before(deadline) {
		pkts, _, err := sender.ReadRTCP()
		if err != nil {
			t.Fatalf("no NACK from the server: %v", err)
		}
		for _, p := range pkts {
			if n, ok := p.(*rtcp.TransportLayerNack); ok {
				for _, pair := range n.Nacks {
					if pair.PacketID%10 == 5 {
						return
					}
				}
			}
		}
	}
	t.Fatal("no NACK for the missing packets")
}
