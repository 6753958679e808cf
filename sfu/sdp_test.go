package sfu

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
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
		{"empty ufrag", strings.ReplaceAll(chromeOffer, "a=ice-ufrag:abcd\r\n", "a=ice-ufrag:\r\n"), "no a=ice-ufrag", nil, nil},
		{"only unreadable candidates", swap("a=mid:0\r\n", "a=mid:0\r\na=candidate:1 1 udp nonsense 10.0.0.1 9 typ host\r\n"), "a=candidate", nil, nil},
		{"fingerprint without a value", strings.ReplaceAll(chromeOffer, "a=fingerprint:sha-256 AA:BB\r\n", "a=fingerprint:sha-256\r\n"), "not an algorithm and a value", nil, nil},
		{"fingerprint in three parts", strings.ReplaceAll(chromeOffer, "a=fingerprint:sha-256 AA:BB\r\n", "a=fingerprint:sha-256 AA BB\r\n"), "not an algorithm and a value", nil, nil},
		{"unsupported media", swap("m=video", "m=text"), "unsupported media", nil, nil},
		{"no codec the server forwards", swap("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 speex/48000"), "no codec the server forwards", nil, nil},
		{"bad rid", swap("a=rid:f send", "a=rid:f$ send"), "bad rid", nil, nil},
		{"four layers", swap("a=rid:q send\r\n", "a=rid:q send\r\na=rid:x send\r\n"), "at most 3", nil, nil},
		{"simulcast audio", swap("a=sendonly\r\na=msid:s a\r\n", "a=sendonly\r\na=msid:s a\r\na=rid:x send\r\na=rid:y send\r\na=simulcast:send x;y\r\n"), "simulcast layers on audio", nil, nil},
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
	if b, err := os.ReadFile("testdata/firefox153-offer.sdp"); err == nil {
		f.Add(string(b))
	}
	// Variants that reach the other branches: a data channel, video
	// received only, a single rid, a section rejected with port 0.
	f.Add(chromeOffer + "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789abcdefghijklmn\r\n" +
		"a=fingerprint:sha-256 AA:BB\r\na=mid:2\r\n")
	f.Add(strings.Replace(chromeOffer, "a=sendonly\r\na=msid:s v", "a=recvonly\r\na=msid:s v", 1))
	f.Add(strings.Replace(chromeOffer, "a=rid:h send\r\na=rid:q send\r\n", "", 1))
	f.Add(strings.Replace(chromeOffer, "m=video 9", "m=video 0", 1))
	f.Fuzz(func(t *testing.T, s string) {
		infos, err := parseDescription(s, nil, nil)
		if err != nil {
			if !errors.Is(err, ErrBadSDP) {
				t.Fatalf("error %v is not ErrBadSDP", err)
			}
			return
		}
		checkParsed(t, s, infos)
		again, err := parseDescription(s, nil, nil)
		if err != nil || !reflect.DeepEqual(again, infos) {
			t.Fatalf("parsed twice, different results: %v", err)
		}
		// The same sections are a valid answer to an offer of them, and a
		// valid next offer after them or after any prefix of them.
		mids := make([]string, len(infos))
		for i, m := range infos {
			mids[i] = m.mid
		}
		if got, err := parseDescription(s, mids, nil); err != nil || !reflect.DeepEqual(got, infos) {
			t.Fatalf("not accepted as the answer to its own mids %q: %v", mids, err)
		}
		if got, err := parseDescription(s, nil, mids[:len(mids)/2]); err != nil || !reflect.DeepEqual(got, infos) {
			t.Fatalf("not accepted after its own first mids %q: %v", mids[:len(mids)/2], err)
		}
		// An answer or a renegotiation that does not match is refused.
		other := slices.Clone(mids)
		other[len(other)-1] += "x"
		if _, err := parseDescription(s, other, nil); err == nil {
			t.Fatalf("accepted as the answer to mids %q", other)
		}
		if _, err := parseDescription(s, nil, other); err == nil {
			t.Fatalf("accepted as a renegotiation of mids %q", other)
		}
		if _, err := parseDescription(s, nil, append(mids, "extra")); err == nil {
			t.Fatal("accepted as a renegotiation with a section dropped")
		}
	})
}

// checkParsed checks what parseDescription returned for s against s and
// the limits parseDescription enforces.
func checkParsed(t *testing.T, s string, infos []mediaInfo) {
	t.Helper()
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(s); err != nil {
		t.Fatalf("accepted, but pion does not parse it: %v", err)
	}
	if len(infos) == 0 || len(infos) > maxMediaSections || len(infos) != len(sd.MediaDescriptions) {
		t.Fatalf("%d media infos for %d sections (limit %d)", len(infos), len(sd.MediaDescriptions), maxMediaSections)
	}
	seen := map[string]bool{}
	for i, m := range infos {
		md := sd.MediaDescriptions[i]
		if mid, _ := md.Attribute(sdp.AttrKeyMID); m.mid != mid || !strings.Contains(s, "mid:"+mid) {
			t.Errorf("section %d: mid %q, the description says %q", i, m.mid, mid)
		}
		if m.mid == "" || len(m.mid) > 32 || seen[m.mid] {
			t.Errorf("section %d: mid %q empty, too long or seen before", i, m.mid)
		}
		seen[m.mid] = true
		wantKind := map[string]webrtc.RTPCodecType{"audio": webrtc.RTPCodecTypeAudio, "video": webrtc.RTPCodecTypeVideo, "application": 0}
		if k, ok := wantKind[md.MediaName.Media]; !ok || k != m.kind {
			t.Errorf("section %d: kind %v for media %q", i, m.kind, md.MediaName.Media)
		}
		if m.kind == 0 {
			if m.sending || m.rids != nil || m.codecs != nil || m.extIDs != nil {
				t.Errorf("section %d: a data section with media: %+v", i, m)
			}
			continue
		}
		checkCodecs(t, i, m)
		if m.sending {
			if _, ok := pickCodec(m.kind, m.codecs); !ok {
				t.Errorf("section %d: sending without a codec the server forwards", i)
			}
		}
		if len(m.rids) == 1 || len(m.rids) > maxLayers || (len(m.rids) > 0 && (!m.sending || m.kind != webrtc.RTPCodecTypeVideo)) {
			t.Errorf("section %d: rids %q (sending %v, %v), want none or 2 to %d when sending video", i, m.rids, m.sending, m.kind, maxLayers)
		}
		for j, r := range m.rids {
			if !validRID(r) || slices.Contains(m.rids[:j], r) || !strings.Contains(s, "rid:"+r) {
				t.Errorf("section %d: rid %q invalid, repeated or not in the description", i, r)
			}
		}
		for uri, id := range m.extIDs {
			if id < 1 || id > 255 || !strings.Contains(s, uri) {
				t.Errorf("section %d: extension %q with id %d", i, uri, id)
			}
		}
	}
}

// checkCodecs checks the codecs read from section i.
func checkCodecs(t *testing.T, i int, m mediaInfo) {
	t.Helper()
	prefix := "audio/"
	if m.kind == webrtc.RTPCodecTypeVideo {
		prefix = "video/"
	}
	pts := map[webrtc.PayloadType]bool{}
	for _, c := range m.codecs {
		if c.PayloadType > 127 || pts[c.PayloadType] || !strings.HasPrefix(c.MimeType, prefix) {
			t.Errorf("section %d: codec %+v: payload type over 127 or repeated, or MIME type not %s...", i, c, prefix)
		}
		pts[c.PayloadType] = true
	}
}
