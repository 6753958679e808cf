package signaling_test

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/internal/testutil"
)

// TestPaddingNotCharged: a publisher probing its uplink pads its stream
// (Chromium pads its lowest simulcast layer up to what the link takes).
// Subscribers are forwarded none of the padding, so the track's rate, which
// the server charges against each subscriber's bandwidth, leaves it out:
// counted, it kept subscribers on the lowest layer of another publisher.
func TestPaddingNotCharged(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{})
	pub := srv.Join(ctx, "pad")
	track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video", "pad")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := pub.Publish(ctx, track); err != nil {
		t.Fatal(err)
	}
	// 100 packets/s of 1000-byte VP8 payloads (800 kbit/s), and four
	// padding-only packets of 255 bytes after each (another 816 kbit/s).
	go func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		payload := make([]byte, 1000)
		payload[0] = 0x10 // VP8 descriptor: start of a partition
		var seq uint16
		var ts uint32
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			ts += 900
			_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Marker: true, SequenceNumber: seq, Timestamp: ts}, Payload: payload})
			seq++
			for range 4 {
				_ = track.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, Padding: true, PaddingSize: 255, SequenceNumber: seq, Timestamp: ts}})
				seq++
			}
		}
	}()
	parts, err := srv.Registry.Participants(ctx, "pad")
	if err != nil || len(parts) != 1 {
		t.Fatalf("participants: %v, %v", parts, err)
	}
	var rate int
	testutil.Eventually(t, 10*time.Second, "the track's rate measured", func() bool {
		for _, u := range parts[0].Peer().Published() {
			if s := u.Stats(); len(s) > 0 && s[0].Packets > 500 {
				rate = s[0].Bitrate
				return rate > 0
			}
		}
		return false
	})
	// Media and RTP headers: about 850 kbit/s; with the padding, 1.7 Mbit/s.
	if rate < 700_000 || rate > 1_000_000 {
		t.Errorf("the track's rate is %d bit/s, want about 850 000 (media without its padding)", rate)
	}
}
