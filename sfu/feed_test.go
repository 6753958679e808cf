package sfu

import (
	"errors"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// newViewer joins a viewer whose client receives audio and video; the
// tracks it gets arrive on the pair's tracks.
func newViewer(t *testing.T, e *Engine) *pair {
	t.Helper()
	v := newPairWith(t, e, PeerConfig{Viewer: true})
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := v.client.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	if err := v.offer(); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestFeedSwitch: a viewer's video feed follows the source it is switched
// to, each source from a keyframe and whole, with no break in the
// sequence numbers and a rising clock across the switches; the viewer
// never renegotiates.
func TestFeedSwitch(t *testing.T) {
	e := testEngine(t)
	a, b := newPair(t, e), newPair(t, e)
	localA, upA := a.publish(webrtc.MimeTypeVP8)
	localB, upB := b.publish(webrtc.MimeTypeVP8)
	stop := make(chan struct{})
	defer close(stop)
	go sendTagged(localA, 0xa1, 0xa100, stop)
	go sendTagged(localB, 0xb2, 0xb200, stop)

	v := newViewer(t, e)
	feeds := v.server.Feeds()
	if len(feeds) != 2 || feeds[0].Kind() != webrtc.RTPCodecTypeAudio || feeds[1].Kind() != webrtc.RTPCodecTypeVideo {
		t.Fatalf("feeds: %v", feeds)
	}
	video := feeds[1]
	if err := feeds[0].Switch(upA); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("video into the audio feed: %v", err)
	}
	if err := video.Switch(upA); err != nil {
		t.Fatal(err)
	}
	var tr *webrtc.TrackRemote
	select {
	case tr = <-v.tracks:
	case <-time.After(10 * time.Second):
		t.Fatal("the viewer got no track")
	}
	if tr.Kind() != webrtc.RTPCodecTypeVideo {
		t.Fatalf("got a %s track", tr.Kind())
	}

	var last rtp.Packet
	got := 0
	// follow reads until the source tagged tag arrives, then n of its
	// packets: the first a keyframe, all in sequence after what came before.
	follow := func(tag byte, n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		seen := 0
		for seen < n {
			if time.Now().After(deadline) {
				t.Fatalf("source %x: %d packets of %d", tag, seen, n)
			}
			_ = tr.SetReadDeadline(deadline)
			p, _, err := tr.ReadRTP()
			if err != nil {
				t.Fatal(err)
			}
			if got > 0 {
				if p.SequenceNumber != last.SequenceNumber+1 {
					t.Fatalf("sequence %d after %d", p.SequenceNumber, last.SequenceNumber)
				}
				if int32(p.Timestamp-last.Timestamp) <= 0 {
					t.Fatalf("timestamp %d after %d", p.Timestamp, last.Timestamp)
				}
			}
			got++
			last = *p
			if p.Payload[2] != tag {
				if seen > 0 {
					t.Fatalf("a packet of source %x among those of %x", p.Payload[2], tag)
				}
				continue
			}
			if seen == 0 && !vp8Keyframe(p.Payload) {
				t.Fatalf("source %x starts without a keyframe: % x", tag, p.Payload)
			}
			in := uint16(p.Payload[3]) | uint16(p.Payload[4])<<8
			want := vp8Packet(in, in%50 == 0)
			want[2] = tag
			if string(p.Payload) != string(want) {
				t.Fatalf("payload % x, want % x", p.Payload, want)
			}
			seen++
		}
	}
	follow(0xa1, 60)
	if err := video.Switch(upB); err != nil {
		t.Fatal(err)
	}
	follow(0xb2, 60)
	if upA.Subscribers() != 0 || upB.Subscribers() != 1 || video.Source() != upB {
		t.Fatalf("subscribers: A %d, B %d", upA.Subscribers(), upB.Subscribers())
	}
	if err := video.Switch(upA); err != nil {
		t.Fatal(err)
	}
	follow(0xa1, 60)
	if n := len(v.server.Stats().Subscribed); n != 1 {
		t.Fatalf("the viewer's stats list %d subscriptions", n)
	}
	if v.server.pc.SignalingState() != webrtc.SignalingStateStable || v.server.pc.CurrentLocalDescription() == nil {
		t.Fatal("the viewer was renegotiated")
	}

	_ = v.server.Close()
	if upA.Subscribers() != 0 {
		t.Fatal("a closed viewer is still fed")
	}
}

// TestFeedRefusesCodec: a source in a codec the viewer did not take is
// refused, and the feed keeps its source; an offer that receives nothing
// is refused.
func TestFeedRefusesCodec(t *testing.T) {
	e := testEngine(t)
	a, b := newPair(t, e), newPair(t, e)
	_, vp8 := a.publish(webrtc.MimeTypeVP8)
	_, h264 := b.publish(webrtc.MimeTypeH264)

	v := newPairWith(t, e, PeerConfig{Viewer: true})
	tr, err := v.client.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly})
	if err != nil {
		t.Fatal(err)
	}
	onlyVP8 := []webrtc.RTPCodecParameters{{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}}
	if err := tr.SetCodecPreferences(onlyVP8); err != nil {
		t.Fatal(err)
	}
	if err := v.offer(); err != nil {
		t.Fatal(err)
	}
	feeds := v.server.Feeds()
	if len(feeds) != 1 {
		t.Fatalf("%d feeds", len(feeds))
	}
	if err := feeds[0].Switch(vp8); err != nil {
		t.Fatal(err)
	}
	if feeds[0].Accepts(h264) {
		t.Fatal("accepts H264")
	}
	if err := feeds[0].Switch(h264); !errors.Is(err, errFeedCodec) {
		t.Fatalf("H264 to a VP8 viewer: %v", err)
	}
	if feeds[0].Source() != vp8 || h264.Subscribers() != 0 {
		t.Fatal("the refused switch changed the source")
	}

	w := newPairWith(t, e, PeerConfig{Viewer: true})
	if _, err := w.client.CreateDataChannel("x", nil); err != nil {
		t.Fatal(err)
	}
	if err := w.offer(); !errors.Is(err, ErrNoFeed) || !errors.Is(err, ErrBadSDP) {
		t.Fatalf("an offer with nothing to receive: %v", err)
	}
	x := newPairWith(t, e, PeerConfig{Viewer: true})
	local, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "v", "s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x.client.AddTrack(local); err != nil {
		t.Fatal(err)
	}
	if err := x.offer(); !errors.Is(err, ErrNotAllowed) {
		t.Fatalf("a viewer that sends: %v", err)
	}
}
