package sfu

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// chromeOffer is a trimmed offer of Chromium 156 publishing audio and
// simulcast video.
const chromeOffer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0 1\r\na=extmap-allow-mixed\r\na=msid-semantic: WMS s\r\n" +
	"m=audio 9 UDP/TLS/RTP/SAVPF 111 63 0\r\nc=IN IP4 0.0.0.0\r\na=rtcp:9 IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijklmn\r\n" +
	"a=ice-options:trickle\r\na=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\na=mid:0\r\n" +
	"a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n" +
	"a=sendonly\r\na=msid:s a\r\na=rtcp-mux\r\na=rtpmap:111 opus/48000/2\r\na=rtcp-fb:111 transport-cc\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n" +
	"a=rtpmap:63 red/48000/2\r\na=fmtp:63 111/111\r\na=rtpmap:0 PCMU/8000\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 98 99 96 97\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijklmn\r\n" +
	"a=fingerprint:sha-256 AA:BB\r\na=setup:actpass\r\na=mid:1\r\na=extmap:13 urn:3gpp:video-orientation\r\na=sendonly\r\na=msid:s v\r\na=rtcp-mux\r\n" +
	"a=rtpmap:98 VP9/90000\r\na=fmtp:98 profile-id=2\r\na=rtpmap:99 rtx/90000\r\na=fmtp:99 apt=98\r\n" +
	"a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack pli\r\na=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n" +
	"a=rid:f send\r\na=rid:h send\r\na=rid:q send\r\na=simulcast:send f;h;q\r\n"

func TestParseDescription(t *testing.T) {
	infos, err := parseDescription(chromeOffer, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 {
		t.Fatalf("%d sections", len(infos))
	}
	audio, video := infos[0], infos[1]
	if !audio.sending || audio.extIDs[uriAudioLevel] != 1 || len(audio.rids) != 0 {
		t.Errorf("audio = %+v", audio)
	}
	c, ok := pickCodec(audio.kind, audio.codecs)
	if !ok || c.MimeType != "audio/opus" || c.PayloadType != 111 || c.Channels != 2 {
		t.Errorf("audio codec = %+v", c)
	}
	if got := orderLayers(video.rids); !slices.Equal(got, []string{"q", "h", "f"}) {
		t.Errorf("layers = %v, want q h f", got)
	}
	// VP9 profile 2 comes first in the client's list, and the server
	// forwards it: it is picked, with its RTX format.
	c, ok = pickCodec(video.kind, video.codecs)
	if !ok || c.MimeType != "video/VP9" || c.PayloadType != 98 {
		t.Fatalf("video codec = %+v", c)
	}
	if rtx := withRTX(c, video.codecs); len(rtx) != 2 || rtx[1].PayloadType != 99 {
		t.Errorf("with rtx = %+v", rtx)
	}
}

func TestParseDescriptionRejects(t *testing.T) {
	swap := func(old, new string) string { return strings.Replace(chromeOffer, old, new, 1) }
	tests := []struct {
		name string
		sdp  string
		want string
		prev []string
		ans  []string
	}{
		{"not sdp", "hello", "", nil, nil},
		{"no mid", swap("a=mid:1\r\n", ""), "has no a=mid", nil, nil},
		{"duplicate mid", swap("a=mid:1\r\n", "a=mid:0\r\n"), "appears twice", nil, nil},
		{"no ufrag anywhere", strings.ReplaceAll(chromeOffer, "a=ice-ufrag:abcd\r\n", ""), "no a=ice-ufrag", nil, nil},
		{"no fingerprint", strings.ReplaceAll(chromeOffer, "a=fingerprint:sha-256 AA:BB\r\n", ""), "no a=fingerprint", nil, nil},
		{"unsupported media", swap("m=video", "m=text"), "unsupported media", nil, nil},
		{"no codec the server forwards", swap("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 speex/48000"), "no codec the server forwards", nil, nil},
		{"bad rid", swap("a=rid:f send", "a=rid:f$ send"), "bad rid", nil, nil},
		{"four layers", swap("a=rid:q send\r\n", "a=rid:q send\r\na=rid:x send\r\n"), "at most 3", nil, nil},
		{"bad rtpmap", swap("a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP8"), "bad a=rtpmap", nil, nil},
		{"sections dropped", chromeOffer, "fewer than", []string{"0", "1", "2"}, nil},
		{"sections reordered", chromeOffer, "changed its mid", []string{"1"}, nil},
		{"answer with other sections", chromeOffer, "the offer had", nil, []string{"0", "x"}},
		{"answer with fewer sections", chromeOffer, "answer has 2", nil, []string{"0", "1", "2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseDescription(tc.sdp, tc.ans, tc.prev)
			if !errors.Is(err, ErrBadSDP) {
				t.Fatalf("err = %v, want ErrBadSDP", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func FuzzParseDescription(f *testing.F) {
	f.Add(chromeOffer)
	f.Add("v=0\r\n")
	f.Fuzz(func(t *testing.T, s string) {
		infos, err := parseDescription(s, nil, nil)
		if err == nil && len(infos) == 0 {
			t.Fatal("accepted a description without sections")
		}
	})
}
