package client

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

func TestSynthPayloads(t *testing.T) {
	for _, tc := range []struct {
		kind  string
		codec string
		first []byte // first bytes of a keyframe start, then of another packet
		other []byte
	}{
		{kind: "video", codec: webrtc.MimeTypeVP8, first: []byte{0x10, 0x00}, other: []byte{0x10, 0x01}},
		{kind: "video/vp8", codec: webrtc.MimeTypeVP8, first: []byte{0x10, 0x00}, other: []byte{0x10, 0x01}},
		// An IDR slice (NAL type 5) starts a keyframe, a non-IDR slice (1) does not.
		{kind: webrtc.MimeTypeH264, codec: webrtc.MimeTypeH264, first: []byte{0x65}, other: []byte{0x41}},
		{kind: "audio", codec: webrtc.MimeTypeOpus},
	} {
		t.Run(tc.kind, func(t *testing.T) {
			s, err := NewSynth(tc.kind, "t", "s", 7, 100)
			if err != nil {
				t.Fatal(err)
			}
			if s.Codec() != tc.codec || !strings.EqualFold(s.Track.Codec().MimeType, tc.codec) {
				t.Fatalf("codec %s, track %s, want %s", s.Codec(), s.Track.Codec().MimeType, tc.codec)
			}
			video := tc.first != nil
			now := time.Now()
			for i, want := range []struct {
				key    bool
				prefix []byte
			}{{true, tc.first}, {false, tc.other}, {false, tc.other}} {
				if i == 2 {
					s.RequestKeyframe()
					want.key, want.prefix = true, tc.first
				}
				p := s.Next(now)
				if !slices.Equal(p.Payload[:len(want.prefix)], want.prefix) {
					t.Errorf("packet %d starts % x, want % x", i, p.Payload[:len(want.prefix)], want.prefix)
				}
				st, err := ReadStamp(p.Payload, video)
				if err != nil {
					t.Fatalf("packet %d: %v", i, err)
				}
				if st.Source != 7 || st.Counter != uint32(i) || st.Key != (video && want.key) {
					t.Errorf("packet %d: stamp %+v", i, st)
				}
			}
		})
	}
	if _, err := NewSynth("video/AV1", "t", "s", 1, 100); err == nil {
		t.Error("NewSynth accepted a codec it cannot produce")
	}
	if _, err := ReadStamp([]byte{0x90, 0x00, 0x5e, 0xed}, true); err == nil {
		t.Error("ReadStamp accepted an unknown video payload start")
	}
}

// TestOfferTrackCodecsNumbering: a track whose codec is not the first of
// the client's has its codecs offered first, in the client's numbering.
func TestOfferTrackCodecsNumbering(t *testing.T) {
	for _, tc := range []struct {
		numbering Numbering
		kind      string
		only      bool
		want      []string // the video m-line's first payload types (all of them with only)
	}{
		{NumberingChromium, webrtc.MimeTypeH264, false, []string{"109", "114", "103", "104", "117", "118", "96", "97"}},
		{NumberingChromium, webrtc.MimeTypeH264, true, []string{"109", "114", "103", "104", "117", "118"}},
		{NumberingFirefox, webrtc.MimeTypeH264, false, []string{"126", "127", "97", "98", "120", "124"}},
		{NumberingFirefox, webrtc.MimeTypeH264, true, []string{"126", "127", "97", "98"}},
		{NumberingPion, webrtc.MimeTypeH264, false, []string{"106", "107", "102", "103"}},
		{NumberingFirefox, "video", false, []string{"120", "124", "121", "125"}}, // VP8 comes first: unchanged
		{NumberingFirefox, "video", true, []string{"120", "124"}},
	} {
		t.Run(fmt.Sprintf("%s %s only=%v", tc.numbering, tc.kind, tc.only), func(t *testing.T) {
			api, err := NewAPIWith(APIOptions{Numbering: tc.numbering})
			if err != nil {
				t.Fatal(err)
			}
			pc, err := api.NewPeerConnection(webrtc.Configuration{})
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			s, err := NewSynth(tc.kind, "v", "s", 1, 100)
			if err != nil {
				t.Fatal(err)
			}
			tr, err := pc.AddTransceiverFromTrack(s.Track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
			if err != nil {
				t.Fatal(err)
			}
			if err := offerTrackCodecs(tr, s.Track, tc.only); err != nil {
				t.Fatal(err)
			}
			offer, err := pc.CreateOffer(nil)
			if err != nil {
				t.Fatal(err)
			}
			var sd sdp.SessionDescription
			if err := sd.UnmarshalString(offer.SDP); err != nil {
				t.Fatal(err)
			}
			got := sd.MediaDescriptions[0].MediaName.Formats
			if len(got) < len(tc.want) || !slices.Equal(got[:len(tc.want)], tc.want) || tc.only && len(got) != len(tc.want) {
				t.Errorf("video payload types %v, want %v first", got, tc.want)
			}
		})
	}
}
