package sfu

import (
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Header extension URIs the forwarder understands.
const (
	uriAudioLevel       = "urn:ietf:params:rtp-hdrext:ssrc-audio-level"
	uriVideoOrientation = "urn:3gpp:video-orientation"
)

// browserHeaderExtensions lists header extensions in the order that gives
// each the id Chromium uses (pion numbers extensions 1, 2, 3... in
// registration order). Matching ids matter: if the server offers first with
// other ids, Chromium's next offer fails with "BUNDLE group contains a codec
// collision for header extension id=N". The ids were read off the offer of
// Chromium 156.
//
// The server offers (sends) only the extensions it writes: audio level,
// transport-wide sequence numbers, mid and video orientation. The others are
// only accepted from publishers: offering them too would take every id from
// 1 to 14, and Firefox, left no one-byte id for its own extensions, numbers
// one 16 and then refuses its own offer ("invalid extension id 16").
var browserHeaderExtensions = []struct {
	uri   string
	audio bool
	video bool
	send  bool // offered to subscribers; else accepted from publishers only
}{
	{uriAudioLevel, true, false, true},                                                // 1
	{"http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time", true, true, false}, // 2
	{sdp.TransportCCURI, true, true, true},                                            // 3
	{sdp.SDESMidURI, true, true, true},                                                // 4
	{"http://www.webrtc.org/experiments/rtp-hdrext/playout-delay", false, true, false},
	{"http://www.webrtc.org/experiments/rtp-hdrext/video-content-type", false, true, false},
	{"http://www.webrtc.org/experiments/rtp-hdrext/video-timing", false, true, false},
	{"http://www.webrtc.org/experiments/rtp-hdrext/color-space", false, true, false},
	{"http://www.webrtc.org/experiments/rtp-hdrext/video-layers-allocation00", false, true, false}, // 9
	{sdp.SDESRTPStreamIDURI, false, true, false},                                                   // 10
	{sdp.SDESRepairRTPStreamIDURI, false, true, false},                                             // 11
	{"https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension", false, true, false},
	{uriVideoOrientation, false, true, true},                   // 13
	{"urn:ietf:params:rtp-hdrext:toffset", false, true, false}, // 14
}

var videoFeedback = []webrtc.RTCPFeedback{
	{Type: webrtc.TypeRTCPFBTransportCC},
	{Type: webrtc.TypeRTCPFBCCM, Parameter: "fir"},
	{Type: webrtc.TypeRTCPFBNACK},
	{Type: webrtc.TypeRTCPFBNACK, Parameter: "pli"},
}

// codecs are registered with the payload types browsers use, for the same
// BUNDLE reason as the header extensions.
func codecs() []struct {
	kind webrtc.RTPCodecType
	c    webrtc.RTPCodecParameters
} {
	type entry = struct {
		kind webrtc.RTPCodecType
		c    webrtc.RTPCodecParameters
	}
	video := func(pt uint8, mime, fmtp string) entry {
		return entry{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{
			PayloadType: webrtc.PayloadType(pt),
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: mime, ClockRate: 90000, SDPFmtpLine: fmtp, RTCPFeedback: videoFeedback,
			},
		}}
	}
	rtx := func(pt, apt uint8) entry {
		return entry{webrtc.RTPCodecTypeVideo, webrtc.RTPCodecParameters{
			PayloadType: webrtc.PayloadType(pt),
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeRTX, ClockRate: 90000, SDPFmtpLine: fmt.Sprintf("apt=%d", apt),
			},
		}}
	}
	return []entry{
		{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecParameters{
			PayloadType: 111,
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2,
				SDPFmtpLine:  "minptime=10;useinbandfec=1",
				RTCPFeedback: []webrtc.RTCPFeedback{{Type: webrtc.TypeRTCPFBTransportCC}},
			},
		}},
		video(96, webrtc.MimeTypeVP8, ""), rtx(97, 96),
		video(98, webrtc.MimeTypeVP9, "profile-id=0"), rtx(99, 98),
		video(100, webrtc.MimeTypeVP9, "profile-id=2"), rtx(101, 100),
		video(103, webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f"), rtx(104, 103),
		video(109, webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"), rtx(114, 109),
		video(117, webrtc.MimeTypeH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=4d001f"), rtx(118, 117),
		video(45, webrtc.MimeTypeAV1, "level-idx=5;profile=0;tier=0"), rtx(46, 45),
	}
}

// newMediaEngine registers the codecs and header extensions of the server.
func newMediaEngine() (*webrtc.MediaEngine, error) {
	m := &webrtc.MediaEngine{}
	for _, e := range codecs() {
		if err := m.RegisterCodec(e.c, e.kind); err != nil {
			return nil, fmt.Errorf("register codec %s: %w", e.c.MimeType, err)
		}
	}
	for _, h := range browserHeaderExtensions {
		for _, k := range []struct {
			on   bool
			kind webrtc.RTPCodecType
		}{{h.audio, webrtc.RTPCodecTypeAudio}, {h.video, webrtc.RTPCodecTypeVideo}} {
			if !k.on {
				continue
			}
			dirs := []webrtc.RTPTransceiverDirection{webrtc.RTPTransceiverDirectionRecvonly}
			if h.send {
				dirs = append(dirs, webrtc.RTPTransceiverDirectionSendonly)
			}
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: h.uri}, k.kind, dirs...); err != nil {
				return nil, fmt.Errorf("register header extension %s: %w", h.uri, err)
			}
		}
	}
	return m, nil
}

// registeredCodec returns the server's registration of codec c.
func registeredCodec(kind webrtc.RTPCodecType, c webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	for _, e := range codecs() {
		if e.kind == kind && strings.EqualFold(e.c.MimeType, c.MimeType) && fmtpCompatible(e.c.MimeType, e.c.SDPFmtpLine, c.SDPFmtpLine) {
			return e.c, true
		}
	}
	return webrtc.RTPCodecParameters{}, false
}

// isMediaCodec reports whether mime names a media codec rather than a
// repair or redundancy format.
func isMediaCodec(mime string) bool {
	switch strings.ToLower(mime) {
	case strings.ToLower(webrtc.MimeTypeRTX), "video/red", "audio/red", "video/ulpfec", "video/flexfec-03",
		"audio/cn", "audio/telephone-event":
		return false
	}
	return true
}

// supported reports whether the server forwards codec c.
func supported(kind webrtc.RTPCodecType, c webrtc.RTPCodecCapability) bool {
	for _, e := range codecs() {
		if e.kind == kind && strings.EqualFold(e.c.MimeType, c.MimeType) && isMediaCodec(c.MimeType) &&
			fmtpCompatible(e.c.MimeType, e.c.SDPFmtpLine, c.SDPFmtpLine) {
			return true
		}
	}
	return false
}

// fmtpCompatible compares the format parameters that distinguish streams of
// one codec: VP9 profile-id, H264 packetization-mode and profile. Other
// parameters do not change how a stream is decoded.
func fmtpCompatible(mime, a, b string) bool {
	pa, pb := parseFmtp(a), parseFmtp(b)
	switch strings.ToLower(mime) {
	case strings.ToLower(webrtc.MimeTypeVP9):
		return orDefault(pa["profile-id"], "0") == orDefault(pb["profile-id"], "0")
	case strings.ToLower(webrtc.MimeTypeH264):
		if orDefault(pa["packetization-mode"], "0") != orDefault(pb["packetization-mode"], "0") {
			return false
		}
		// profile_idc and profile-iop (the first four hex digits) must match;
		// the level may differ.
		la, lb := pa["profile-level-id"], pb["profile-level-id"]
		return len(la) >= 4 && len(lb) >= 4 && strings.EqualFold(la[:4], lb[:4])
	case strings.ToLower(webrtc.MimeTypeAV1):
		return orDefault(pa["profile"], "0") == orDefault(pb["profile"], "0")
	}
	return true
}

func parseFmtp(line string) map[string]string {
	out := map[string]string{}
	for _, kv := range strings.Split(line, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(kv), "=")
		if k != "" {
			out[strings.ToLower(k)] = v
		}
	}
	return out
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}
