package sfu

import (
	"slices"
	"strings"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// numbering remembers which payload type means which codec in one peer's
// session, so that the server's offers number codecs the way the client
// does.
//
// Browsers number codecs each their own way: Chromium sends VP8 as 96 and
// Opus as 111, Firefox VP8 as 120 and Opus as 109, and Firefox numbers each
// m-line on its own. In a BUNDLE group one payload type must mean one codec
// in every m-line (RFC 8843, section 9.1), so the server's registration
// cannot be offered as it is: its H264 at 109 is Firefox's Opus. A codec the
// client already numbered keeps the client's number; any other gets the
// server's, or else the first number nobody uses.
//
// Owned by the holder of the peer's negMu.
type numbering struct {
	byPT map[webrtc.PayloadType]webrtc.RTPCodecParameters
}

// learn records the payload types of every m-line of a description, the
// client's or the server's. A number already known keeps its first meaning.
func (n *numbering) learn(raw string) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(raw); err != nil {
		return
	}
	if n.byPT == nil {
		n.byPT = map[webrtc.PayloadType]webrtc.RTPCodecParameters{}
	}
	for _, md := range sd.MediaDescriptions {
		codecs, err := mediaCodecs(md)
		if err != nil {
			continue
		}
		for _, c := range codecs {
			if _, ok := n.byPT[c.PayloadType]; !ok {
				n.byPT[c.PayloadType] = c
			}
		}
	}
}

// dynamic payload types, in the order they are handed out when neither the
// client nor the server's registration has a number for a codec.
var dynamicPTs = func() []webrtc.PayloadType {
	var out []webrtc.PayloadType
	for pt := 96; pt <= 127; pt++ {
		out = append(out, webrtc.PayloadType(pt))
	}
	for pt := 35; pt <= 63; pt++ {
		out = append(out, webrtc.PayloadType(pt))
	}
	return out
}()

// number returns c (a codec of the server's registration) as it should be
// offered in this session: as the session already has it (number and
// format parameters) when it does, else under the registration's number
// when free, else under a free dynamic one. It reports false when every
// number is taken.
func (n *numbering) number(c webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	pts := make([]webrtc.PayloadType, 0, len(n.byPT))
	for pt := range n.byPT {
		pts = append(pts, pt)
	}
	slices.Sort(pts)
	for _, pt := range pts {
		known := n.byPT[pt]
		if strings.EqualFold(known.MimeType, c.MimeType) && known.ClockRate == c.ClockRate &&
			fmtpCompatible(c.MimeType, known.SDPFmtpLine, c.SDPFmtpLine) {
			// The client's number with the client's format line: in a
			// BUNDLE group one number is one configuration.
			known.RTCPFeedback = c.RTCPFeedback
			return known, true
		}
	}
	if _, taken := n.byPT[c.PayloadType]; !taken {
		return c, true
	}
	for _, pt := range dynamicPTs {
		if _, taken := n.byPT[pt]; !taken {
			c.PayloadType = pt
			return c, true
		}
	}
	return c, false
}
