package signaling_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/signaling/client"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

// feedbackCounter counts the keyframe requests and NACKs a publisher
// receives from the server; its observe is a client.Options.OnRTCP.
type feedbackCounter struct {
	plis, nacks atomic.Int64
}

func (f *feedbackCounter) observe(_ *webrtc.RTPSender, pkts []rtcp.Packet) {
	for _, p := range pkts {
		switch p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			f.plis.Add(1)
		case *rtcp.TransportLayerNack:
			f.nacks.Add(1)
		}
	}
}

// TestRetransmissionUnderLoss puts 5% random loss, both ways, on one
// subscriber's link: the server answers its NACKs from the packet cache, so
// what the subscriber's decoder misses stays under 0.5%, and the publisher
// (on a clean link) is asked for no more than the keyframe cap and no NACK
// at all.
func TestRetransmissionUnderLoss(t *testing.T) {
	ctx := testutil.Context(t)
	vn := st.NewVNet(t)
	srv := st.NewServer(t, st.Options{SFU: sfu.Config{Net: vn.Host("10.0.0.1")}})
	pubNet, subNet := vn.Host("10.0.0.2"), vn.Host("10.0.0.3")

	fb := &feedbackCounter{}
	a := srv.Join(ctx, "loss", client.Options{API: vn.API(pubNet), OnRTCP: fb.observe})
	synth, err := client.NewSynth("video", "v", a.Self.ID, 77, 900)
	if err != nil {
		t.Fatal(err)
	}
	synth.KeyframeEvery = 100 // a keyframe a second at 100 packets/s
	trackID, _, err := a.Publish(ctx, synth.Track)
	if err != nil {
		t.Fatal(err)
	}
	go synth.Run(ctx, 10*time.Millisecond)

	b := srv.Join(ctx, "loss", client.Options{API: vn.API(subNet)})
	r := receiveTracks(t, b, 1)
	var recv *st.Received
	for _, x := range r {
		recv = x
	}
	testutil.Eventually(t, 10*time.Second, "media flows before the loss starts", func() bool { return recv.Packets.Load() > 50 })

	plisBefore := fb.plis.Load()
	vn.SetLoss("10.0.0.3", 0.05)
	start := recv.LastCounter.Load() + 1
	const window = 8 * time.Second
	time.Sleep(window)
	end := recv.LastCounter.Load() - 50 // leave the last half second to its retransmissions
	time.Sleep(700 * time.Millisecond)
	vn.SetLoss("10.0.0.3", 0)

	sent := int(end - start + 1)
	missing := recv.Missing(start, end)
	lost := float64(missing) / float64(sent)
	t.Logf("window: %d packets, %d dropped by the network in all, %d never reached the decoder (%.2f%%)",
		sent, vn.Dropped.Load(), missing, 100*lost)
	if sent < 250 { // 800 at full speed; fewer when the machine is busy
		t.Fatalf("only %d packets in the window", sent)
	}
	if vn.Dropped.Load() < int64(sent)/40 {
		t.Fatalf("the network dropped only %d packets: the impairment is not in effect", vn.Dropped.Load())
	}
	if lost >= 0.005 {
		t.Errorf("decoder-visible loss %.2f%% after retransmission, want < 0.5%%", 100*lost)
	}
	// The repairs came from the server's cache.
	p, err := srv.Registry.Participant(ctx, "loss", b.Self.ID)
	if err != nil {
		t.Fatal(err)
	}
	down, ok := p.Peer().DownTrack(trackID)
	if !ok {
		t.Fatal("no subscription on the server")
	}
	stats := down.Stats()
	t.Logf("server: %d NACKs received, %d packets retransmitted, %d no longer cached", stats.NACKs, stats.Retransmitted, stats.NACKMisses)
	if stats.Retransmitted < uint64(missing) || stats.Retransmitted == 0 {
		t.Errorf("the server retransmitted %d packets", stats.Retransmitted)
	}
	// The publisher is shielded: no NACK reaches it, and keyframe requests
	// stay under the cap of two a second per layer.
	if n := fb.nacks.Load(); n != 0 {
		t.Errorf("the publisher received %d NACKs on a clean link", n)
	}
	capPLI := int64(window/time.Second+1) * 2
	if n := fb.plis.Load() - plisBefore; n > capPLI {
		t.Errorf("the publisher received %d keyframe requests in %s, cap %d", n, window, capPLI)
	}
}

// simulcastPublisher publishes three synthetic layers: q ≈ 100 kbit/s,
// h ≈ 300 kbit/s, f ≈ 900 kbit/s, each with a keyframe a second.
func simulcastPublisher(ctx context.Context, t *testing.T, c *client.Client, base uint32) (string, [3]*client.Synth) {
	t.Helper()
	var layers [3]*client.Synth
	specs := []struct {
		rid      string
		size     int
		interval time.Duration
	}{{"q", 250, 20 * time.Millisecond}, {"h", 750, 20 * time.Millisecond}, {"f", 1100, 10 * time.Millisecond}}
	locals := make([]webrtc.TrackLocal, 3)
	for i, s := range specs {
		synth, err := client.NewSynth("video", "cam", c.Self.ID, base+uint32(i), s.size, s.rid)
		if err != nil {
			t.Fatal(err)
		}
		synth.KeyframeEvery = int(time.Second / s.interval)
		layers[i], locals[i] = synth, synth.Track
	}
	id, tr, err := c.PublishSimulcast(ctx, locals...)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range specs {
		layers[i].UseTransceiver(tr)
		go layers[i].Run(ctx, s.interval)
	}
	return id, layers
}

// TestSimulcastFollowsBandwidth caps a subscriber's downlink at 300 kbit/s:
// within 5 s it is moved to layer q; when the cap is lifted it is back on f
// within 10 s; the sequence numbers it sees stay continuous across both
// switches.
func TestSimulcastFollowsBandwidth(t *testing.T) {
	ctx := testutil.Context(t)
	vn := st.NewVNet(t)
	srv := st.NewServer(t, st.Options{SFU: sfu.Config{Net: vn.Host("10.0.0.1")}})
	pubNet := vn.Host("10.0.0.2")
	subNet, link := vn.LimitedHost("10.0.0.3", 100_000_000)
	sent := vn.Capture("10.0.0.3")

	a := srv.Join(ctx, "bwe", client.Options{API: vn.API(pubNet)})
	trackID, layers := simulcastPublisher(ctx, t, a, 100)
	b := srv.Join(ctx, "bwe", client.Options{API: vn.API(subNet)})
	recv := receiveTracks(t, b, 1)[trackID]
	if recv == nil {
		t.Fatal("subscriber did not get the simulcast track")
	}
	q, f := layers[0].Source, layers[2].Source
	testutil.Eventually(t, 10*time.Second, "an unconstrained subscriber gets layer f", func() bool { return recv.LastSource.Load() == f })

	start := time.Now()
	link.SetRate(300_000)
	testutil.Eventually(t, 5*time.Second, "a subscriber capped at 300 kbit/s is moved to layer q", func() bool { return recv.LastSource.Load() == q })
	t.Logf("down to q after %s", time.Since(start).Round(100*time.Millisecond))
	time.Sleep(2 * time.Second) // it stays there
	if s := recv.LastSource.Load(); s != q {
		t.Errorf("capped subscriber left q for source %d", s)
	}

	start = time.Now()
	link.SetRate(100_000_000)
	testutil.Eventually(t, 10*time.Second, "after the cap is lifted the subscriber is back on f", func() bool { return recv.LastSource.Load() == f })
	t.Logf("back to f after %s", time.Since(start).Round(100*time.Millisecond))

	// What the server sent the subscriber on the track's SSRC never skipped
	// a sequence number, across both switches and the probes between.
	sw := recv.Switches()
	if len(sw) < 2 {
		t.Fatalf("switches = %+v, want at least two", sw)
	}
	skips, n := sent.Skips(uint32(recv.Track.SSRC()))
	if n < 500 || skips != 0 {
		t.Errorf("the server sent %d packets with %d sequence numbers skipped", n, skips)
	}
	// Switching up (the link has room again), the receiver saw the switch
	// land right after the last packet of the previous layer, or recovered
	// (NACK) what was lost in between: no sequence number is missing. A
	// switch down may leave the abandoned layer's last packets missing: the
	// saturated link drops them, and their retransmissions, more often than
	// the server resends a packet (retransmitMax); the decoder moves on to
	// the new layer's keyframe.
	rank := map[uint32]int{layers[0].Source: 0, layers[1].Source: 1, layers[2].Source: 2}
	holes := func(up bool) (out []string) {
		for _, s := range sw {
			if rank[s.To] > rank[s.From] != up {
				continue
			}
			if n := recv.SeqHoles(s.MaxSeq, s.FirstSeq); n != 0 {
				out = append(out, fmt.Sprintf("switch %d→%d at %d: %d packets missing", s.From, s.To, s.FirstSeq, n))
			}
		}
		return out
	}
	deadline := time.Now().Add(3 * time.Second)
	for len(holes(true)) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	for _, h := range holes(true) {
		t.Error(h)
	}
	for _, h := range holes(false) {
		t.Logf("down, on the saturated link: %s", h)
	}
}

// TestActiveSpeakers: of three publishers, the one sending the loudest
// audio levels is first in `speakers` within a second, and the ranking
// follows when another one becomes the loudest.
func TestActiveSpeakers(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{})
	names := []string{"quiet", "loud", "medium"}
	levels := []uint32{70, 20, 40} // -dBov: lower is louder; 70 is below speaking
	synths := map[string]*client.Synth{}
	ids := map[string]string{}
	for i, n := range names {
		c := srv.Join(ctx, "talk", client.Options{Name: n})
		p := st.Publish(ctx, t, c, "audio")
		p.Synth.Level.Store(levels[i])
		synths[n], ids[n] = p.Synth, c.Self.ID
	}
	watcher := srv.Join(ctx, "talk", client.Options{Name: "watcher"})

	start := time.Now()
	ev := waitEvent(t, ctx, watcher, 0, "speakers led by the loudest", func(e client.Event) bool {
		return e.Type == "speakers" && len(e.Speakers) > 0 && e.Speakers[0] == ids["loud"]
	})
	if d := time.Since(start); d > time.Second {
		t.Errorf("the loudest led the speakers after %s, want within 1 s", d)
	}
	// The rest of the ranking is checked on the event that first put the
	// loudest ahead, not waited for.
	if len(ev.Speakers) != 2 || ev.Speakers[1] != ids["medium"] {
		t.Errorf("speakers = %v, want loud then medium (quiet is below the speaking level)", ev.Speakers)
	}

	mark := watcher.Mark()
	synths["quiet"].Level.Store(5)
	start = time.Now()
	waitEvent(t, ctx, watcher, mark, "the new loudest first", func(e client.Event) bool {
		return e.Type == "speakers" && len(e.Speakers) > 0 && e.Speakers[0] == ids["quiet"]
	})
	if d := time.Since(start); d > time.Second {
		t.Errorf("the ranking followed after %s, want within 1 s", d)
	}

	// Only changes are announced, and at most a few a second.
	time.Sleep(time.Second)
	n := 0
	for _, e := range watcher.Events() {
		if e.Type == "speakers" {
			n++
		}
	}
	if n > 6 {
		t.Errorf("%d speakers events for two changes of ranking", n)
	}
}

// TestReports: a subscriber gets sender reports for the stream it
// receives, counting what it was sent; a publisher gets receiver reports
// for what it sends.
func TestReports(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{})
	rrs := make(chan rtcp.ReceptionReport, 1)
	var sender atomic.Pointer[webrtc.RTPSender]
	a := srv.Join(ctx, "sr", client.Options{OnRTCP: func(s *webrtc.RTPSender, pkts []rtcp.Packet) {
		sender.Store(s)
		for _, p := range pkts {
			if rr, ok := p.(*rtcp.ReceiverReport); ok {
				for _, r := range rr.Reports {
					select {
					case rrs <- r:
					default:
					}
				}
			}
		}
	}})
	st.Publish(ctx, t, a, "video")
	b := srv.Join(ctx, "sr")
	var recv *st.Received
	for _, r := range receiveTracks(t, b, 1) {
		recv = r
	}
	var receiver *webrtc.RTPReceiver
	for _, tr := range b.PC().GetTransceivers() {
		if r := tr.Receiver(); r != nil && r.Track() != nil && r.Track().SSRC() == recv.Track.SSRC() {
			receiver = r
		}
	}
	if receiver == nil {
		t.Fatal("no receiver for the track")
	}
	got := make(chan *rtcp.SenderReport, 1)
	go func() {
		for {
			pkts, _, err := receiver.ReadRTCP()
			if err != nil {
				return
			}
			for _, p := range pkts {
				if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == uint32(recv.Track.SSRC()) {
					select {
					case got <- sr:
					default:
					}
				}
			}
		}
	}()
	select {
	case sr := <-got:
		if sr.PacketCount == 0 || int64(sr.PacketCount) > recv.Packets.Load()+50 {
			t.Errorf("report counts %d packets; the subscriber received %d", sr.PacketCount, recv.Packets.Load())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no sender report within 5 s")
	}
	select {
	case rr := <-rrs:
		if rr.SSRC != uint32(sender.Load().GetParameters().Encodings[0].SSRC) || rr.LastSequenceNumber == 0 || rr.TotalLost != 0 {
			t.Errorf("receiver report %+v", rr)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no receiver report within 5 s")
	}
}

// TestLayerPreference: a `layer` request for q is honoured within a
// keyframe interval (1 s here), the other subscriber keeps f, and the
// publisher is told which layers are needed as preferences change.
func TestLayerPreference(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{})
	a := srv.Join(ctx, "pref")
	trackID, layers := simulcastPublisher(ctx, t, a, 200)
	q, h, f := layers[0].Source, layers[1].Source, layers[2].Source
	b := srv.Join(ctx, "pref")
	c := srv.Join(ctx, "pref")
	rb, rc := receiveTracks(t, b, 1)[trackID], receiveTracks(t, c, 1)[trackID]
	testutil.Eventually(t, 5*time.Second, "both get f", func() bool { return rb.LastSource.Load() == f && rc.LastSource.Load() == f })

	start := time.Now()
	if err := b.Call(ctx, protocol.Layer{Track: trackID, RID: "q"}, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 1500*time.Millisecond, "b on q within a keyframe interval", func() bool { return rb.LastSource.Load() == q })
	t.Logf("b on q after %s", time.Since(start).Round(10*time.Millisecond))
	if rc.LastSource.Load() != f {
		t.Error("c left f")
	}

	// c asks for h: nobody needs f any more.
	mark := a.Mark()
	if err := c.Call(ctx, protocol.Layer{Track: trackID, RID: "h"}, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, a, mark, "layers q,h for the publisher", func(e client.Event) bool {
		return e.Type == "layers" && e.TrackID == trackID && slices.Equal(e.Active, []string{"q", "h"})
	})
	testutil.Eventually(t, 2*time.Second, "c on h", func() bool { return rc.LastSource.Load() == h })

	// Back up to f: the publisher is told f is needed again.
	mark = a.Mark()
	if err := b.Call(ctx, protocol.Layer{Track: trackID, RID: "f"}, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, a, mark, "layers q,h,f for the publisher", func(e client.Event) bool {
		return e.Type == "layers" && slices.Equal(e.Active, []string{"q", "h", "f"})
	})
	testutil.Eventually(t, 2*time.Second, "b back on f", func() bool { return rb.LastSource.Load() == f })
}
