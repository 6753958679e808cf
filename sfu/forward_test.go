package sfu

import (
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// sinkWriter is a TrackLocalWriter that only counts, standing in for pion's
// SRTP write path.
type sinkWriter struct {
	packets int
	bytes   int
	last    rtp.Header
}

func (w *sinkWriter) WriteRTP(h *rtp.Header, payload []byte) (int, error) {
	w.packets++
	w.bytes += len(payload)
	w.last.SequenceNumber, w.last.Timestamp, w.last.SSRC, w.last.PayloadType = h.SequenceNumber, h.Timestamp, h.SSRC, h.PayloadType
	return h.MarshalSize() + len(payload), nil
}

func (w *sinkWriter) Write(b []byte) (int, error) { return len(b), nil }

// fanout builds one video track forwarded to n bound subscriptions, by one
// goroutine (pool nil) or spread over a worker pool.
func fanout(n int, layers []string, pool ...*fanoutPool) (*UpTrack, []*sinkWriter) {
	e := &Engine{}
	if len(pool) > 0 {
		e.fanout = pool[0]
	}
	pub := &Peer{id: "p-pub", e: e}
	up := newUpTrack(pub, mediaInfo{mid: "0", kind: webrtc.RTPCodecTypeVideo, rids: layers},
		webrtc.RTPCodecParameters{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}})
	sinks := make([]*sinkWriter, n)
	for i := range sinks {
		sinks[i] = &sinkWriter{}
		d := newDownTrack(up, newSubscriber(nil, slog.New(slog.DiscardHandler), nil))
		d.bound.Store(&binding{ssrc: uint32(1000 + i), pt: 100, writer: sinks[i], twccID: 3})
		up.addDown(d)
	}
	return up, sinks
}

func videoPacketTS(seq uint16, ts uint32, key bool) *rtp.Packet {
	p := videoPacket(seq, key)
	p.Timestamp = ts
	return p
}

func videoPacket(seq uint16, key bool) *rtp.Packet {
	payload := make([]byte, 1100)
	payload[0] = 0x10
	payload[1] = 0x01
	if key {
		payload[1] = 0x00
	}
	return &rtp.Packet{
		Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, SSRC: 42},
		Payload: payload,
	}
}

func TestFanoutRewritesPerSubscriber(t *testing.T) {
	up, sinks := fanout(3, nil)
	now := time.Now().UnixNano()
	up.forward(0, videoPacket(100, false), false, now) // before any keyframe: dropped
	for _, s := range sinks {
		if s.packets != 0 {
			t.Fatalf("a delta frame was forwarded before the first keyframe")
		}
	}
	for seq := uint16(101); seq < 111; seq++ {
		up.forward(0, videoPacket(seq, seq == 101), seq == 101, now)
	}
	for i, s := range sinks {
		if s.packets != 10 || s.bytes != 10*1100 {
			t.Errorf("subscriber %d got %d packets (%d bytes), want 10", i, s.packets, s.bytes)
		}
		if s.last.SSRC != uint32(1000+i) || s.last.PayloadType != 100 || s.last.SequenceNumber != 110 {
			t.Errorf("subscriber %d last header %+v: want its own SSRC and PT, seq 110", i, s.last)
		}
	}
}

// TestParallelFanout: past fanoutChunk subscriptions the fan-out is shared
// among workers; every subscriber still gets every packet, rewritten as
// its own, and nothing is allocated.
func TestParallelFanout(t *testing.T) {
	pool := newFanoutPool()
	defer pool.close()
	const n = 3*fanoutChunk + 7
	up, sinks := fanout(n, nil, pool)
	now := time.Now().UnixNano()
	for seq := uint16(0); seq < 50; seq++ {
		up.forward(0, videoPacket(seq, seq == 0), seq == 0, now)
	}
	for i, s := range sinks {
		if s.packets != 50 || s.last.SequenceNumber != 49 || s.last.SSRC != uint32(1000+i) {
			t.Fatalf("subscriber %d: %d packets, last %+v", i, s.packets, s.last)
		}
	}
	p := videoPacket(50, false)
	if a := testing.AllocsPerRun(200, func() {
		p.SequenceNumber++
		up.forward(0, p, false, now)
	}); a != 0 && !raceEnabled {
		t.Errorf("a parallel fan-out allocates %.1f times", a)
	}
}

func TestFanoutAllocatesNothing(t *testing.T) {
	up, _ := fanout(10, nil)
	now := time.Now().UnixNano()
	seq := uint16(0)
	p := videoPacket(seq, true)
	up.forward(0, p, true, now)
	allocs := testing.AllocsPerRun(1000, func() {
		seq++
		p.SequenceNumber = seq
		p.Timestamp += 3000
		up.forward(0, p, false, now)
	})
	if allocs != 0 {
		t.Fatalf("forwarding one packet to 10 subscribers allocates %.1f times, want 0", allocs)
	}
}

// BenchmarkFanout forwards one published video track to N subscriptions,
// down to the TrackLocalWriter (pion's SRTP path is not included); past
// fanoutChunk subscriptions the work is shared among the cores. ns/op is
// per incoming packet (the latency of a fan-out); ns/fwd per forwarded
// packet.
func BenchmarkFanout(b *testing.B) {
	pool := newFanoutPool()
	defer pool.close()
	for _, n := range []int{1, 10, 100, 400} {
		b.Run(fmt.Sprintf("subs=%d", n), func(b *testing.B) {
			up, _ := fanout(n, nil, pool)
			now := time.Now().UnixNano()
			p := videoPacket(0, true)
			up.forward(0, p, true, now)
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				p.SequenceNumber++
				p.Timestamp += 3000
				up.forward(0, p, false, now)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/fwd")
		})
	}
}

// BenchmarkRewrite measures the sequence/timestamp mapping of one packet.
func BenchmarkRewrite(b *testing.B) {
	var r rewriter
	r.clockRate = 90000
	r.restart(0, 0, 0, 0)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_, _, _ = r.rewrite(0, uint16(i), uint32(i)*3000, int64(i))
	}
}

// TestPaddingPacket checks how pion marshals the padding packets of a
// probe: Padding set with PaddingSize zero and the padding in the payload
// gives a valid padding-only packet made of our own bytes.
func TestPaddingPacket(t *testing.T) {
	h := rtp.Header{Version: 2, Padding: true, PayloadType: 96, SequenceNumber: 7, Timestamp: 9, SSRC: 5}
	buf := make([]byte, 1500)
	for i := range buf {
		buf[i] = 0xee // what an earlier packet left
	}
	//lint:ignore SA1019 the header-and-payload marshalling of pion's write path, which this test pins
	n, err := rtp.MarshalPacketTo(buf, &h, padding)
	if err != nil {
		t.Fatal(err)
	}
	var p rtp.Packet
	if err := p.Unmarshal(buf[:n]); err != nil {
		t.Fatal(err)
	}
	if !p.Padding || len(p.Payload) != 0 || p.PaddingSize != 255 || p.SequenceNumber != 7 {
		t.Fatalf("got padding=%v payload=%d paddingSize=%d seq=%d", p.Padding, len(p.Payload), p.PaddingSize, p.SequenceNumber)
	}
	for i, b := range buf[n-255 : n-1] {
		if b != 0 {
			t.Fatalf("padding byte %d is %#x, not ours", i, b)
		}
	}
}
