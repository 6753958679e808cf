package signalingtest

import (
	"slices"
	"strings"
	"testing"

	"github.com/pion/rtp"
)

func TestNumberingBundleCollisions(t *testing.T) {
	const head = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\na=group:BUNDLE a v b\r\n"
	section := func(media, mid, fmts string, lines ...string) string {
		return "m=" + media + " 9 UDP/TLS/RTP/SAVPF " + fmts + "\r\nc=IN IP4 0.0.0.0\r\na=mid:" + mid + "\r\n" +
			strings.Join(lines, "\r\n") + "\r\n"
	}
	for _, tc := range []struct {
		name string
		sdp  string
		want []string
	}{
		{
			name: "consistent",
			sdp: head +
				section("audio", "a", "111", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 minptime=10;useinbandfec=1", "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level") +
				section("video", "v", "96", "a=rtpmap:96 VP8/90000", "a=extmap:3 urn:x:twcc") +
				// the same codec again, parameters in another order
				section("audio", "b", "111 109", "a=rtpmap:111 opus/48000/2", "a=fmtp:111 useinbandfec=1;minptime=10",
					"a=rtpmap:109 opus/48000/2", "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level"),
		},
		{
			name: "payload type of two codecs",
			sdp: head +
				section("audio", "a", "109", "a=rtpmap:109 opus/48000/2") +
				section("video", "v", "109", "a=rtpmap:109 H264/90000"),
			want: []string{`payload type 109 is "audio opus/48000/2" on mids [a], "video H264/90000" on mids [v]`},
		},
		{
			name: "one codec, other parameters",
			sdp: head +
				section("video", "a", "120", "a=rtpmap:120 VP8/90000", "a=fmtp:120 max-fs=12288;max-fr=60") +
				section("video", "v", "120", "a=rtpmap:120 VP8/90000") +
				section("video", "b", "120", "a=rtpmap:120 VP8/90000"),
			want: []string{`payload type 120 is "video VP8/90000 max-fs=12288;max-fr=60" on mids [a], "video VP8/90000" on mids [v b] (one codec, other format parameters)`},
		},
		{
			name: "extension id of two URIs",
			sdp: head +
				section("audio", "a", "111", "a=rtpmap:111 opus/48000/2", "a=extmap:3 urn:ietf:params:rtp-hdrext:sdes:mid") +
				section("video", "v", "96", "a=rtpmap:96 VP8/90000", "a=extmap:3/sendonly urn:x:twcc"),
			want: []string{`header extension id 3 is "urn:ietf:params:rtp-hdrext:sdes:mid" on mids [a], "urn:x:twcc" on mids [v]`},
		},
		{
			name: "rejected m-line and other bundle ignored",
			sdp: head +
				section("audio", "a", "109", "a=rtpmap:109 opus/48000/2") +
				strings.Replace(section("video", "v", "109", "a=rtpmap:109 H264/90000"), " 9 ", " 0 ", 1) +
				section("video", "x", "109", "a=rtpmap:109 VP8/90000"),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := bundleCollisions(tc.sdp); !slices.Equal(got, tc.want) {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestNumberingPacketProblems(t *testing.T) {
	n := &Numbered{mid: "2", neg: &negotiation{
		pts:  map[uint8]string{96: "VP8/90000"},
		exts: map[uint8]string{3: "urn:x:twcc", 13: "urn:3gpp:video-orientation"},
	}}
	packet := func(pt uint8, exts ...uint8) *rtp.Packet {
		p := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: pt}}
		for _, id := range exts {
			if err := p.Header.SetExtension(id, []byte{1}); err != nil {
				t.Fatal(err)
			}
		}
		return p
	}
	for _, tc := range []struct {
		name string
		p    *rtp.Packet
		want []string // parts of the problem; none: no problem
	}{
		{"negotiated", packet(96, 3, 13), nil},
		{"no extensions", packet(96), nil},
		{"payload type", packet(120, 3), []string{"payload type 120 not negotiated on mid 2", "96 VP8/90000"}},
		{"extension id", packet(96, 3, 5), []string{"header extension id 5 not negotiated on mid 2"}},
		{"both", packet(109, 4), []string{"payload type 109", "header extension id 4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := n.problem(tc.p)
			if (got == "") != (tc.want == nil) {
				t.Fatalf("problem %q, want one mentioning %q", got, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("problem %q does not mention %q", got, w)
				}
			}
		})
	}
	n.neg = nil
	if got := n.problem(packet(96)); !strings.Contains(got, "no current description") {
		t.Errorf("without a negotiation: %q", got)
	}
}
