package client_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/signaling/client"
)

// section is what an offer's m-line says about numbering: its payload types
// in order, each as "pt name/rate[/channels]", and its extmaps as "id uri".
type section struct {
	formats []string
	extmaps []string
}

func offerSections(t *testing.T, api *webrtc.API, dir webrtc.RTPTransceiverDirection) map[string]section {
	t.Helper()
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(offerText(t, api, dir)); err != nil {
		t.Fatal(err)
	}
	out := map[string]section{}
	for _, md := range sd.MediaDescriptions {
		rtpmap := map[string]string{}
		var s section
		for _, a := range md.Attributes {
			switch a.Key {
			case "rtpmap":
				pt, v, _ := strings.Cut(a.Value, " ")
				rtpmap[pt] = v
			case "extmap":
				s.extmaps = append(s.extmaps, a.Value)
			}
		}
		for _, f := range md.MediaName.Formats {
			s.formats = append(s.formats, f+" "+rtpmap[f])
		}
		slices.Sort(s.extmaps)
		out[md.MediaName.Media] = s
	}
	return out
}

// extmaps renders ids and URIs as the offer's a=extmap values, sorted.
func extmaps(m map[int]string) []string {
	out := make([]string, 0, len(m))
	for id, uri := range m {
		out = append(out, fmt.Sprintf("%d %s", id, uri))
	}
	slices.Sort(out)
	return out
}

const (
	audioLevel  = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
	csrcLevel   = "urn:ietf:params:rtp-hdrext:csrc-audio-level"
	absSendTime = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
	twcc        = "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01"
	mid         = "urn:ietf:params:rtp-hdrext:sdes:mid"
	rid         = "urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id"
	rrid        = "urn:ietf:params:rtp-hdrext:sdes:repaired-rtp-stream-id"
	toffset     = "urn:ietf:params:rtp-hdrext:toffset"
	playout     = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
	depDesc     = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
)

var pionVideo = []string{
	"96 VP8/90000", "97 rtx/90000", "102 H264/90000", "103 rtx/90000", "104 H264/90000", "105 rtx/90000",
	"106 H264/90000", "107 rtx/90000", "108 H264/90000", "109 rtx/90000", "127 H264/90000", "125 rtx/90000",
	"39 H264/90000", "40 rtx/90000", "116 H265/90000", "117 rtx/90000", "45 AV1/90000", "46 rtx/90000",
	"98 VP9/90000", "99 rtx/90000", "100 VP9/90000", "101 rtx/90000", "112 H264/90000", "113 rtx/90000",
}

// chromiumAudio and chromiumVideo are Chromium 156's codecs, in its order.
var (
	chromiumAudio = []string{
		"111 opus/48000/2", "63 red/48000/2", "9 G722/8000", "0 PCMU/8000", "8 PCMA/8000",
		"13 CN/8000", "110 telephone-event/48000", "126 telephone-event/8000",
	}
	chromiumVideo = []string{
		"96 VP8/90000", "97 rtx/90000", "98 VP9/90000", "99 rtx/90000", "100 VP9/90000", "101 rtx/90000",
		"103 H264/90000", "104 rtx/90000", "109 H264/90000", "114 rtx/90000", "117 H264/90000", "118 rtx/90000",
		"45 AV1/90000", "46 rtx/90000",
	}
)

var chromiumVideoExt = map[int]string{
	2: absSendTime, 3: twcc, 4: mid, 5: playout,
	6:  "http://www.webrtc.org/experiments/rtp-hdrext/video-content-type",
	7:  "http://www.webrtc.org/experiments/rtp-hdrext/video-timing",
	8:  "http://www.webrtc.org/experiments/rtp-hdrext/color-space",
	9:  "http://www.webrtc.org/experiments/rtp-hdrext/video-layers-allocation00",
	10: rid, 11: rrid, 12: depDesc, 13: "urn:3gpp:video-orientation", 14: toffset,
}

func TestNewAPIWithNumbering(t *testing.T) {
	sendrecv, sendonly := webrtc.RTPTransceiverDirectionSendrecv, webrtc.RTPTransceiverDirectionSendonly
	for _, tc := range []struct {
		name       string
		opt        client.APIOptions
		dir        webrtc.RTPTransceiverDirection
		audio      []string
		video      []string
		audioExt   map[int]string
		videoExt   map[int]string
		sameAsPion bool
	}{
		{
			name: "pion", opt: client.APIOptions{}, dir: sendrecv,
			audio:    []string{"111 opus/48000/2", "9 G722/8000", "0 PCMU/8000", "8 PCMA/8000"},
			video:    pionVideo,
			audioExt: map[int]string{1: audioLevel, 5: twcc},
			videoExt: map[int]string{2: mid, 3: rid, 4: rrid, 5: twcc},
		},
		{
			name: "pion, every video codec listed", dir: sendrecv,
			opt: client.APIOptions{VideoCodecs: []string{
				webrtc.MimeTypeVP8, webrtc.MimeTypeVP9, webrtc.MimeTypeH264, webrtc.MimeTypeH265, webrtc.MimeTypeAV1,
			}},
			audio:    []string{"111 opus/48000/2", "9 G722/8000", "0 PCMU/8000", "8 PCMA/8000"},
			video:    pionVideo,
			audioExt: map[int]string{1: audioLevel, 5: twcc},
			videoExt: map[int]string{2: mid, 3: rid, 4: rrid, 5: twcc},
			// and every line of the m-sections as NewAPI's
			sameAsPion: true,
		},
		{
			name: "pion, VP8 only", opt: client.APIOptions{VideoCodecs: []string{webrtc.MimeTypeVP8}}, dir: sendonly,
			audio:    []string{"111 opus/48000/2", "9 G722/8000", "0 PCMU/8000", "8 PCMA/8000"},
			video:    []string{"96 VP8/90000", "97 rtx/90000"},
			audioExt: map[int]string{1: audioLevel, 5: twcc},
			videoExt: map[int]string{2: mid, 3: rid, 4: rrid, 5: twcc},
		},
		{
			name: "chromium", opt: client.APIOptions{Numbering: client.NumberingChromium}, dir: sendrecv,
			audio:    chromiumAudio,
			video:    chromiumVideo,
			audioExt: map[int]string{1: audioLevel, 2: absSendTime, 3: twcc, 4: mid},
			videoExt: chromiumVideoExt,
		},
		{
			name: "chromium, sendonly", opt: client.APIOptions{Numbering: client.NumberingChromium}, dir: sendonly,
			audio:    chromiumAudio,
			video:    chromiumVideo,
			audioExt: map[int]string{1: audioLevel, 2: absSendTime, 3: twcc, 4: mid},
			videoExt: chromiumVideoExt,
		},
		{
			name: "chromium, H264 only", opt: client.APIOptions{Numbering: client.NumberingChromium, VideoCodecs: []string{webrtc.MimeTypeH264}},
			dir:      sendonly,
			audio:    chromiumAudio,
			video:    []string{"103 H264/90000", "104 rtx/90000", "109 H264/90000", "114 rtx/90000", "117 H264/90000", "118 rtx/90000"},
			audioExt: map[int]string{1: audioLevel, 2: absSendTime, 3: twcc, 4: mid},
			videoExt: chromiumVideoExt,
		},
		{
			name: "firefox", opt: client.APIOptions{Numbering: client.NumberingFirefox}, dir: sendrecv,
			audio: []string{"109 opus/48000/2", "9 G722/8000/1", "0 PCMU/8000", "8 PCMA/8000", "101 telephone-event/8000/1"},
			video: []string{
				"120 VP8/90000", "124 rtx/90000", "121 VP9/90000", "125 rtx/90000", "126 H264/90000", "127 rtx/90000",
				"97 H264/90000", "98 rtx/90000", "99 AV1/90000", "100 rtx/90000", "123 ulpfec/90000", "122 red/90000",
				"119 rtx/90000",
			},
			audioExt: map[int]string{1: audioLevel, 2: csrcLevel, 3: mid, 7: twcc},
			videoExt: map[int]string{3: mid, 4: absSendTime, 5: toffset, 6: playout, 7: twcc, 8: depDesc, 9: rid, 10: rrid},
		},
		{
			// The recvonly extensions are left out where the client only sends.
			name: "firefox, sendonly", opt: client.APIOptions{Numbering: client.NumberingFirefox}, dir: sendonly,
			audio: []string{"109 opus/48000/2", "9 G722/8000/1", "0 PCMU/8000", "8 PCMA/8000", "101 telephone-event/8000/1"},
			video: []string{
				"120 VP8/90000", "124 rtx/90000", "121 VP9/90000", "125 rtx/90000", "126 H264/90000", "127 rtx/90000",
				"97 H264/90000", "98 rtx/90000", "99 AV1/90000", "100 rtx/90000", "123 ulpfec/90000", "122 red/90000",
				"119 rtx/90000",
			},
			audioExt: map[int]string{1: audioLevel, 3: mid, 7: twcc},
			videoExt: map[int]string{3: mid, 4: absSendTime, 5: toffset, 7: twcc, 8: depDesc, 9: rid, 10: rrid},
		},
		{
			name: "firefox, H264 only", opt: client.APIOptions{Numbering: client.NumberingFirefox, VideoCodecs: []string{webrtc.MimeTypeH264}},
			dir:      sendonly,
			audio:    []string{"109 opus/48000/2", "9 G722/8000/1", "0 PCMU/8000", "8 PCMA/8000", "101 telephone-event/8000/1"},
			video:    []string{"126 H264/90000", "127 rtx/90000", "97 H264/90000", "98 rtx/90000"},
			audioExt: map[int]string{1: audioLevel, 3: mid, 7: twcc},
			videoExt: map[int]string{3: mid, 4: absSendTime, 5: toffset, 7: twcc, 8: depDesc, 9: rid, 10: rrid},
		},
		{
			name: "firefox, VP8 and red", opt: client.APIOptions{Numbering: client.NumberingFirefox, VideoCodecs: []string{"video/vp8", "video/red"}},
			dir:      sendonly,
			audio:    []string{"109 opus/48000/2", "9 G722/8000/1", "0 PCMU/8000", "8 PCMA/8000", "101 telephone-event/8000/1"},
			video:    []string{"120 VP8/90000", "124 rtx/90000", "122 red/90000", "119 rtx/90000"},
			audioExt: map[int]string{1: audioLevel, 3: mid, 7: twcc},
			videoExt: map[int]string{3: mid, 4: absSendTime, 5: toffset, 7: twcc, 8: depDesc, 9: rid, 10: rrid},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			api, err := client.NewAPIWith(tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			got := offerSections(t, api, tc.dir)
			for _, c := range []struct {
				kind          string
				formats, exts []string
			}{{"audio", tc.audio, extmaps(tc.audioExt)}, {"video", tc.video, extmaps(tc.videoExt)}} {
				s := got[c.kind]
				if !slices.Equal(s.formats, c.formats) {
					t.Errorf("%s payload types:\n got %q\nwant %q", c.kind, s.formats, c.formats)
				}
				if !slices.Equal(s.extmaps, c.exts) {
					t.Errorf("%s extmaps:\n got %q\nwant %q", c.kind, s.extmaps, c.exts)
				}
			}
			if tc.sameAsPion {
				def, err := client.NewAPI(nil)
				if err != nil {
					t.Fatal(err)
				}
				want := mediaLines(t, offerText(t, def, tc.dir))
				if have := mediaLines(t, offerText(t, api, tc.dir)); !slices.Equal(have, want) {
					t.Errorf("m-sections differ from NewAPI's:\n got %q\nwant %q", have, want)
				}
			}
		})
	}
}

func offerText(t *testing.T, api *webrtc.API, dir webrtc.RTPTransceiverDirection) string {
	t.Helper()
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

// mediaLines keeps the lines of an offer that describe its codecs and
// header extensions, sorted within each m-section (pion writes extmaps in
// map order; the order of payload types is checked above).
func mediaLines(t *testing.T, raw string) []string {
	t.Helper()
	var out []string
	start := 0
	for _, l := range strings.Split(raw, "\r\n") {
		if strings.HasPrefix(l, "m=") {
			slices.Sort(out[start:])
			l, _, _ = strings.Cut(l, " ")
			out = append(out, l)
			start = len(out)
			continue
		}
		for _, p := range []string{"a=rtpmap:", "a=fmtp:", "a=rtcp-fb:", "a=extmap:"} {
			if strings.HasPrefix(l, p) {
				out = append(out, l)
			}
		}
	}
	slices.Sort(out[start:])
	return out
}
