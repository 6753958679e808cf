package client

import (
	"fmt"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/sdp/v3"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
)

// Numbering is how a client numbers payload types and RTP header
// extensions in its offers. Browsers differ, and a server must send each
// subscriber only the numbers that subscriber negotiated, whatever the
// publishers use.
type Numbering int

const (
	// NumberingPion is pion's default numbering (what NewAPI gives).
	NumberingPion Numbering = iota
	// NumberingChromium numbers like Chromium 156.
	NumberingChromium
	// NumberingFirefox numbers like Firefox 153 (its real offer).
	NumberingFirefox
)

func (n Numbering) String() string {
	switch n {
	case NumberingPion:
		return "pion"
	case NumberingChromium:
		return "chromium"
	case NumberingFirefox:
		return "firefox"
	}
	return fmt.Sprintf("Numbering(%d)", int(n))
}

// APIOptions configure NewAPIWith.
type APIOptions struct {
	// Net is the network (nil: the operating system's), e.g. a host of
	// pion's virtual network.
	Net transport.Net
	// Numbering selects the payload types and header extension ids.
	Numbering Numbering
	// VideoCodecs, when not nil, are the video codecs (mime types, e.g.
	// webrtc.MimeTypeH264) the client supports; the others of the numbering
	// are not registered. Retransmission formats follow their codec; red and
	// ulpfec are kept only when listed.
	VideoCodecs []string
	// NetworkTypes are the ICE networks gathered (nil: UDP over IPv4).
	NetworkTypes []webrtc.NetworkType
}

// NewAPIWith returns an API numbering as o.Numbering, with pion's default
// interceptors, offering loopback candidates. NewAPIWith(APIOptions{Net: n})
// is NewAPI(n).
func NewAPIWith(o APIOptions) (*webrtc.API, error) {
	m := &webrtc.MediaEngine{}
	if err := registerCodecs(m, o.Numbering, o.VideoCodecs); err != nil {
		return nil, err
	}
	// pion gives each header extension the first id (1 to 14) free when it
	// is registered, in registration order, one id per URI for both kinds:
	// registering in the browser's order, before the interceptors register
	// theirs (which keeps ids already given), yields the browser's ids.
	for _, h := range headerExtensions(o.Numbering) {
		for _, k := range []struct {
			on   bool
			kind webrtc.RTPCodecType
		}{{h.audio, webrtc.RTPCodecTypeAudio}, {h.video, webrtc.RTPCodecTypeVideo}} {
			if !k.on {
				continue
			}
			var dirs []webrtc.RTPTransceiverDirection
			if h.recvOnly {
				dirs = []webrtc.RTPTransceiverDirection{webrtc.RTPTransceiverDirectionRecvonly}
			}
			if err := m.RegisterHeaderExtension(webrtc.RTPHeaderExtensionCapability{URI: h.uri}, k.kind, dirs...); err != nil {
				return nil, fmt.Errorf("register header extension %s: %w", h.uri, err)
			}
		}
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	networks := o.NetworkTypes
	if networks == nil {
		networks = []webrtc.NetworkType{webrtc.NetworkTypeUDP4}
	}
	se.SetNetworkTypes(networks)
	if o.Net != nil {
		se.SetNet(o.Net)
		se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	}
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}

// codecEntry is one payload type of a numbering.
type codecEntry struct {
	kind webrtc.RTPCodecType
	pt   uint8
	mime string
	rate uint32
	ch   uint16
	fmtp string
}

func registerCodecs(m *webrtc.MediaEngine, n Numbering, video []string) error {
	if n == NumberingPion && video == nil {
		return m.RegisterDefaultCodecs() // exactly NewAPI's
	}
	entries, err := numberingCodecs(n)
	if err != nil {
		return err
	}
	for _, e := range filterVideo(entries, video) {
		var fb []webrtc.RTCPFeedback
		if e.kind == webrtc.RTPCodecTypeVideo && isMedia(e.mime) {
			fb = []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}}
		}
		c := webrtc.RTPCodecParameters{
			PayloadType: webrtc.PayloadType(e.pt),
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: e.mime, ClockRate: e.rate, Channels: e.ch, SDPFmtpLine: e.fmtp, RTCPFeedback: fb,
			},
		}
		if err := m.RegisterCodec(c, e.kind); err != nil {
			return fmt.Errorf("register codec %s %d: %w", e.mime, e.pt, err)
		}
	}
	return nil
}

// isMedia reports whether mime names a codec that carries media, rather
// than repair or redundancy.
func isMedia(mime string) bool {
	switch strings.ToLower(mime) {
	case "video/rtx", "video/red", "video/ulpfec", "video/flexfec-03", "audio/red", "audio/cn", "audio/telephone-event":
		return false
	}
	return true
}

// filterVideo keeps the audio entries and the video codecs listed (all of
// them when video is nil), with the retransmission formats of those kept.
func filterVideo(entries []codecEntry, video []string) []codecEntry {
	if video == nil {
		return entries
	}
	want := func(mime string) bool {
		for _, v := range video {
			if strings.EqualFold(v, mime) {
				return true
			}
		}
		return false
	}
	kept := map[uint8]bool{}
	for _, e := range entries {
		if e.kind == webrtc.RTPCodecTypeVideo && !strings.EqualFold(e.mime, webrtc.MimeTypeRTX) && want(e.mime) {
			kept[e.pt] = true
		}
	}
	out := make([]codecEntry, 0, len(entries))
	for _, e := range entries {
		switch {
		case e.kind != webrtc.RTPCodecTypeVideo:
		case strings.EqualFold(e.mime, webrtc.MimeTypeRTX):
			var apt uint8
			if _, err := fmt.Sscanf(e.fmtp, "apt=%d", &apt); err != nil || !kept[apt] {
				continue
			}
		case !kept[e.pt]:
			continue
		}
		out = append(out, e)
	}
	return out
}

func numberingCodecs(n Numbering) ([]codecEntry, error) {
	const a, v = webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo
	vid := func(pt uint8, mime, fmtp string) codecEntry {
		return codecEntry{kind: v, pt: pt, mime: mime, rate: 90000, fmtp: fmtp}
	}
	rtx := func(pt, apt uint8) codecEntry {
		return vid(pt, webrtc.MimeTypeRTX, fmt.Sprintf("apt=%d", apt))
	}
	switch n {
	case NumberingPion:
		// pion's RegisterDefaultCodecs, in its order.
		const h264 = "level-asymmetry-allowed=1;packetization-mode=%d;profile-level-id=%s"
		return []codecEntry{
			{a, 111, webrtc.MimeTypeOpus, 48000, 2, "minptime=10;useinbandfec=1"},
			{a, 9, webrtc.MimeTypeG722, 8000, 0, ""},
			{a, 0, webrtc.MimeTypePCMU, 8000, 0, ""},
			{a, 8, webrtc.MimeTypePCMA, 8000, 0, ""},
			vid(96, webrtc.MimeTypeVP8, ""), rtx(97, 96),
			vid(102, webrtc.MimeTypeH264, fmt.Sprintf(h264, 1, "42001f")), rtx(103, 102),
			vid(104, webrtc.MimeTypeH264, fmt.Sprintf(h264, 0, "42001f")), rtx(105, 104),
			vid(106, webrtc.MimeTypeH264, fmt.Sprintf(h264, 1, "42e01f")), rtx(107, 106),
			vid(108, webrtc.MimeTypeH264, fmt.Sprintf(h264, 0, "42e01f")), rtx(109, 108),
			vid(127, webrtc.MimeTypeH264, fmt.Sprintf(h264, 1, "4d001f")), rtx(125, 127),
			vid(39, webrtc.MimeTypeH264, fmt.Sprintf(h264, 0, "4d001f")), rtx(40, 39),
			vid(116, webrtc.MimeTypeH265, ""), rtx(117, 116),
			vid(45, webrtc.MimeTypeAV1, ""), rtx(46, 45),
			vid(98, webrtc.MimeTypeVP9, "profile-id=0"), rtx(99, 98),
			vid(100, webrtc.MimeTypeVP9, "profile-id=2"), rtx(101, 100),
			vid(112, webrtc.MimeTypeH264, fmt.Sprintf(h264, 1, "64001f")), rtx(113, 112),
		}, nil
	case NumberingChromium:
		// Chromium 156's offer: m=audio 111 63 9 0 8 13 110 126; the video
		// codecs it shares with the server.
		const h264 = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id="
		return []codecEntry{
			{a, 111, webrtc.MimeTypeOpus, 48000, 2, "minptime=10;useinbandfec=1"},
			{a, 63, "audio/red", 48000, 2, "111/111"},
			{a, 9, webrtc.MimeTypeG722, 8000, 0, ""},
			{a, 0, webrtc.MimeTypePCMU, 8000, 0, ""},
			{a, 8, webrtc.MimeTypePCMA, 8000, 0, ""},
			{a, 13, "audio/CN", 8000, 0, ""},
			{a, 110, "audio/telephone-event", 48000, 0, ""},
			{a, 126, "audio/telephone-event", 8000, 0, ""},
			vid(96, webrtc.MimeTypeVP8, ""), rtx(97, 96),
			vid(98, webrtc.MimeTypeVP9, "profile-id=0"), rtx(99, 98),
			vid(100, webrtc.MimeTypeVP9, "profile-id=2"), rtx(101, 100),
			vid(103, webrtc.MimeTypeH264, h264+"42001f"), rtx(104, 103),
			vid(109, webrtc.MimeTypeH264, h264+"42e01f"), rtx(114, 109),
			vid(117, webrtc.MimeTypeH264, h264+"4d001f"), rtx(118, 117),
			vid(45, webrtc.MimeTypeAV1, "level-idx=5;profile=0;tier=0"), rtx(46, 45),
		}, nil
	case NumberingFirefox:
		// Firefox 153's offer: m=audio 109 9 0 8 101,
		// m=video 120 124 121 125 126 127 97 98 99 100 123 122 119.
		return []codecEntry{
			{a, 109, webrtc.MimeTypeOpus, 48000, 2, "maxplaybackrate=48000;stereo=1;useinbandfec=1"},
			{a, 9, webrtc.MimeTypeG722, 8000, 1, ""},
			{a, 0, webrtc.MimeTypePCMU, 8000, 0, ""},
			{a, 8, webrtc.MimeTypePCMA, 8000, 0, ""},
			{a, 101, "audio/telephone-event", 8000, 1, "0-15"},
			vid(120, webrtc.MimeTypeVP8, "max-fs=12288;max-fr=60"), rtx(124, 120),
			vid(121, webrtc.MimeTypeVP9, "max-fs=12288;max-fr=60"), rtx(125, 121),
			vid(126, webrtc.MimeTypeH264, "profile-level-id=42e01f;level-asymmetry-allowed=1;packetization-mode=1"), rtx(127, 126),
			vid(97, webrtc.MimeTypeH264, "profile-level-id=42e01f;level-asymmetry-allowed=1"), rtx(98, 97),
			vid(99, webrtc.MimeTypeAV1, ""), rtx(100, 99),
			vid(123, "video/ulpfec", ""),
			vid(122, "video/red", ""), rtx(119, 122),
		}, nil
	}
	return nil, fmt.Errorf("unknown numbering %d", int(n))
}

// headerExtension is one RTP header extension of a numbering, in the
// order that gives it the numbering's id.
type headerExtension struct {
	uri          string
	audio, video bool
	recvOnly     bool // offered only where the client receives
}

const (
	uriAbsSendTime   = "http://www.webrtc.org/experiments/rtp-hdrext/abs-send-time"
	uriPlayoutDelay  = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"
	uriToffset       = "urn:ietf:params:rtp-hdrext:toffset"
	uriDependencyDsc = "https://aomediacodec.github.io/av1-rtp-spec/#dependency-descriptor-rtp-header-extension"
)

func headerExtensions(n Numbering) []headerExtension {
	switch n {
	case NumberingChromium:
		return []headerExtension{
			{uri: sdp.AudioLevelURI, audio: true},                                                        // 1
			{uri: uriAbsSendTime, audio: true, video: true},                                              // 2
			{uri: sdp.TransportCCURI, audio: true, video: true},                                          // 3
			{uri: sdp.SDESMidURI, audio: true, video: true},                                              // 4
			{uri: uriPlayoutDelay, video: true},                                                          // 5
			{uri: "http://www.webrtc.org/experiments/rtp-hdrext/video-content-type", video: true},        // 6
			{uri: "http://www.webrtc.org/experiments/rtp-hdrext/video-timing", video: true},              // 7
			{uri: "http://www.webrtc.org/experiments/rtp-hdrext/color-space", video: true},               // 8
			{uri: "http://www.webrtc.org/experiments/rtp-hdrext/video-layers-allocation00", video: true}, // 9
			{uri: sdp.SDESRTPStreamIDURI, video: true},                                                   // 10
			{uri: sdp.SDESRepairRTPStreamIDURI, video: true},                                             // 11
			{uri: uriDependencyDsc, video: true},                                                         // 12
			{uri: "urn:3gpp:video-orientation", video: true},                                             // 13
			{uri: uriToffset, video: true},                                                               // 14
		}
	case NumberingFirefox:
		return []headerExtension{
			{uri: sdp.AudioLevelURI, audio: true},                                             // 1
			{uri: "urn:ietf:params:rtp-hdrext:csrc-audio-level", audio: true, recvOnly: true}, // 2
			{uri: sdp.SDESMidURI, audio: true, video: true},                                   // 3
			{uri: uriAbsSendTime, video: true},                                                // 4
			{uri: uriToffset, video: true},                                                    // 5
			{uri: uriPlayoutDelay, video: true, recvOnly: true},                               // 6
			{uri: sdp.TransportCCURI, audio: true, video: true},                               // 7
			{uri: uriDependencyDsc, video: true},                                              // 8
			{uri: sdp.SDESRTPStreamIDURI, video: true},                                        // 9
			{uri: sdp.SDESRepairRTPStreamIDURI, video: true},                                  // 10
		}
	}
	// pion: the audio level, then what the default interceptors register
	// (mid 2, rid 3, repaired rid 4 for video, transport-cc 5 for both).
	return []headerExtension{{uri: sdp.AudioLevelURI, audio: true}}
}
