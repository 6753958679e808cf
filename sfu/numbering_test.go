package sfu

import (
	"cmp"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"
)

// firefoxOffer reads the first offer of Firefox 153 publishing audio and
// simulcast video: every m-line after the first is bundle-only (port 0).
func firefoxOffer(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/firefox153-offer.sdp")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestParseDescriptionBundleOnly(t *testing.T) {
	infos, err := parseDescription(firefoxOffer(t), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 {
		t.Fatalf("%d sections, want 2", len(infos))
	}
	for _, m := range infos {
		if !m.sending {
			t.Errorf("section %s (%s) not read as sending", m.mid, m.kind)
		}
	}
	video := infos[1]
	if got := strings.Join(video.rids, " "); got != "q h f" {
		t.Errorf("rids = %q, want q h f", got)
	}
	if c, ok := pickCodec(video.kind, video.codecs); !ok || c.MimeType != webrtc.MimeTypeVP8 || c.PayloadType != 120 {
		t.Errorf("video codec = %+v, want Firefox's VP8 at 120", c)
	}
	// A port of 0 without bundle-only still rejects the section.
	rejected := strings.Replace(firefoxOffer(t), "a=bundle-only\r\n", "", 1)
	infos, err = parseDescription(rejected, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if infos[1].sending {
		t.Error("a rejected section (port 0, no bundle-only) read as sending")
	}
}

func TestNumbering(t *testing.T) {
	reg := func(kind webrtc.RTPCodecType, mime, fmtp string) webrtc.RTPCodecParameters {
		c, ok := registeredCodec(kind, webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mime, SDPFmtpLine: fmtp}})
		if !ok {
			t.Fatalf("%s %s not registered", mime, fmtp)
		}
		return c
	}
	vp8 := reg(videoKind, webrtc.MimeTypeVP8, "")
	opus := reg(webrtc.RTPCodecTypeAudio, webrtc.MimeTypeOpus, "")
	h264 := reg(videoKind, webrtc.MimeTypeH264, "packetization-mode=1;profile-level-id=42e01f")
	vp9 := reg(videoKind, webrtc.MimeTypeVP9, "profile-id=0")
	h264Baseline := reg(videoKind, webrtc.MimeTypeH264, "packetization-mode=1;profile-level-id=42001f")
	tests := []struct {
		name    string
		session []string // descriptions of the session so far
		codec   webrtc.RTPCodecParameters
		want    webrtc.PayloadType
		fmtp    string // the format line offered, when not the registration's
	}{
		{"new session: the registration", nil, vp8, 96, ""},
		{"Chromium numbering: the registration", []string{chromeOffer}, vp8, 96, ""},
		{"Firefox's VP8 keeps Firefox's number", []string{firefoxOffer(t)}, vp8, 120, "max-fs=12288;max-fr=60"},
		{"Firefox's Opus keeps Firefox's number", []string{firefoxOffer(t)}, opus, 109, "maxplaybackrate=48000;stereo=1;useinbandfec=1"},
		// Firefox offered no H264, and the registration's 109 is its Opus.
		{"a number the client gave another codec is not reused", []string{firefoxOffer(t)}, h264, 96, ""},
		{"Firefox's VP9 keeps Firefox's number", []string{firefoxOffer(t)}, vp9, 121, "max-fs=12288;max-fr=60"},
		// The registration's 103 means nothing in Firefox's session.
		{"a free registration is kept", []string{firefoxOffer(t)}, h264Baseline, 103, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var n numbering
			for _, s := range tt.session {
				n.learn(s)
			}
			got, ok := n.number(tt.codec)
			if !ok || got.PayloadType != tt.want {
				t.Fatalf("number(%s) = %d (ok %v), want %d", tt.codec.MimeType, got.PayloadType, ok, tt.want)
			}
			if want := cmp.Or(tt.fmtp, tt.codec.SDPFmtpLine); got.SDPFmtpLine != want {
				t.Errorf("format line %q, want %q (one number, one configuration)", got.SDPFmtpLine, want)
			}
			if !strings.EqualFold(got.MimeType, tt.codec.MimeType) || !fmtpCompatible(got.MimeType, got.SDPFmtpLine, tt.codec.SDPFmtpLine) {
				t.Errorf("another codec: %+v", got)
			}
			// Once offered, the number stays: a later subscription to the
			// same codec gets the same one.
			kind, name, _ := strings.Cut(got.MimeType, "/")
			n.learn(fmt.Sprintf("v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\nm=%s 9 UDP/TLS/RTP/SAVPF %d\r\na=mid:x\r\na=rtpmap:%d %s/%d\r\na=fmtp:%d %s\r\n",
				kind, got.PayloadType, got.PayloadType, name, got.ClockRate, got.PayloadType, got.SDPFmtpLine))
			if again, _ := n.number(tt.codec); again.PayloadType != got.PayloadType {
				t.Errorf("numbered again as %d, first as %d", again.PayloadType, got.PayloadType)
			}
		})
	}
}

// bindContext is what pion hands a track it binds to a sender.
type bindContext struct{ codecs []webrtc.RTPCodecParameters }

func (c bindContext) CodecParameters() []webrtc.RTPCodecParameters           { return c.codecs }
func (c bindContext) HeaderExtensions() []webrtc.RTPHeaderExtensionParameter { return nil }
func (c bindContext) SSRC() webrtc.SSRC                                      { return 1234 }
func (c bindContext) SSRCRetransmission() webrtc.SSRC                        { return 0 }
func (c bindContext) SSRCForwardErrorCorrection() webrtc.SSRC                { return 0 }
func (c bindContext) WriteStream() webrtc.TrackLocalWriter                   { return nil }
func (c bindContext) ID() string                                             { return "ctx" }
func (c bindContext) RTCPReader() interceptor.RTCPReader                     { return nil }

// TestBindTakesTheOfferedNumber: pion binds a sender with every number its
// session gave the codec, in the order it learned them (Opus as 111 from
// the server's first offer, then as 109 from Firefox's). A subscription
// forwards under the number its own m-line was offered with: Firefox reads
// an m-line's packets only under that m-line's numbers, and heard none of
// the audio of people offered to it after it had published.
func TestBindTakesTheOfferedNumber(t *testing.T) {
	opus := func(pt webrtc.PayloadType) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{PayloadType: pt, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}}
	}
	pub := &Peer{}
	ctx := bindContext{codecs: []webrtc.RTPCodecParameters{opus(111), opus(109)}}
	for _, tc := range []struct {
		offered webrtc.PayloadType // 0: not set
		want    uint8
	}{{109, 109}, {111, 111}, {0, 111}, {100, 111}} {
		up := newUpTrack(pub, mediaInfo{mid: "a", kind: webrtc.RTPCodecTypeAudio}, opus(111))
		d := newDownTrack(up, newSubscriber(nil, slog.Default(), nil))
		if tc.offered != 0 {
			d.offeredPT.Store(uint32(tc.offered) + 1)
		}
		c, err := d.Bind(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if b := d.bound.Load(); b == nil || b.pt != tc.want || uint8(c.PayloadType) != tc.want {
			t.Errorf("offered %d: bound as %d (binding %+v), want %d", tc.offered, c.PayloadType, b, tc.want)
		}
	}
}
