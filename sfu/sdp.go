package sfu

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pion/ice/v4"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// maxMediaSections bounds the m-sections of one description; a conference
// client needs a few per participant, never thousands.
const maxMediaSections = 512

// mediaInfo is what the server reads from one m-section of a client's description.
type mediaInfo struct {
	mid     string
	kind    webrtc.RTPCodecType // 0 for data channels
	sending bool                // the client sends media on it
	// receiving: the client receives media on it
	receiving bool
	rids      []string // simulcast layers the client sends, in its order
	codecs    []webrtc.RTPCodecParameters
	extIDs    map[string]int // header extension URI -> id
}

// parseDescription checks a client's description thoroughly before pion
// sees it: pion changes the signaling state before some of its own checks,
// so a description it rejects half-way could leave the connection stuck.
// want lists the mids an answer must carry, in order (nil for an offer);
// prev lists the mids of the previous remote description (an offer may add
// sections but not drop or reorder them).
func parseDescription(raw string, want, prev []string) ([]mediaInfo, error) {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(raw); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSDP, err)
	}
	if len(sd.MediaDescriptions) == 0 {
		return nil, fmt.Errorf("%w: no media sections", ErrBadSDP)
	}
	if len(sd.MediaDescriptions) > maxMediaSections {
		return nil, fmt.Errorf("%w: %d media sections (at most %d)", ErrBadSDP, len(sd.MediaDescriptions), maxMediaSections)
	}
	if want != nil && len(sd.MediaDescriptions) != len(want) {
		return nil, fmt.Errorf("%w: answer has %d media sections, the offer had %d", ErrBadSDP, len(sd.MediaDescriptions), len(want))
	}
	if len(sd.MediaDescriptions) < len(prev) {
		return nil, fmt.Errorf("%w: offer has %d media sections, fewer than the %d negotiated before", ErrBadSDP, len(sd.MediaDescriptions), len(prev))
	}
	// pion reads an empty ice-ufrag or ice-pwd as none.
	sessUfrag, sessPwd := nonEmpty(sd.Attribute("ice-ufrag")), nonEmpty(sd.Attribute("ice-pwd"))
	fp, sessFP := sd.Attribute("fingerprint")
	if sessFP && !validFingerprint(fp) {
		return nil, fmt.Errorf("%w: a=fingerprint:%.40q is not an algorithm and a value", ErrBadSDP, fp)
	}

	out := make([]mediaInfo, 0, len(sd.MediaDescriptions))
	seen := map[string]bool{}
	for i, md := range sd.MediaDescriptions {
		mid, _ := md.Attribute(sdp.AttrKeyMID)
		switch {
		case mid == "":
			return nil, fmt.Errorf("%w: media section %d has no a=mid", ErrBadSDP, i)
		case len(mid) > 32:
			return nil, fmt.Errorf("%w: media section %d: mid %.32q... is too long", ErrBadSDP, i, mid)
		case seen[mid]:
			return nil, fmt.Errorf("%w: mid %q appears twice", ErrBadSDP, mid)
		case want != nil && want[i] != mid:
			return nil, fmt.Errorf("%w: media section %d has mid %q, the offer had %q", ErrBadSDP, i, mid, want[i])
		case i < len(prev) && prev[i] != mid:
			return nil, fmt.Errorf("%w: media section %d changed its mid from %q to %q", ErrBadSDP, i, prev[i], mid)
		}
		seen[mid] = true

		info := mediaInfo{mid: mid}
		switch md.MediaName.Media {
		case "audio":
			info.kind = webrtc.RTPCodecTypeAudio
		case "video":
			info.kind = webrtc.RTPCodecTypeVideo
		case "application":
		default:
			return nil, fmt.Errorf("%w: media section %q has unsupported media %q", ErrBadSDP, mid, md.MediaName.Media)
		}
		// Port 0 rejects a section, except with a=bundle-only (RFC 9143):
		// Firefox offers every section after the first that way.
		_, bundleOnly := md.Attribute("bundle-only")
		rejected := md.MediaName.Port.Value == 0 && !bundleOnly
		if !rejected {
			if !nonEmpty(md.Attribute("ice-ufrag")) && !sessUfrag {
				return nil, fmt.Errorf("%w: media section %q has no a=ice-ufrag", ErrBadSDP, mid)
			}
			if !nonEmpty(md.Attribute("ice-pwd")) && !sessPwd {
				return nil, fmt.Errorf("%w: media section %q has no a=ice-pwd", ErrBadSDP, mid)
			}
			if err := someCandidate(md); err != nil {
				return nil, fmt.Errorf("%w: media section %q: %v", ErrBadSDP, mid, err)
			}
			fp, ok := md.Attribute("fingerprint")
			switch {
			case !ok && !sessFP:
				return nil, fmt.Errorf("%w: media section %q has no a=fingerprint", ErrBadSDP, mid)
			case ok && !validFingerprint(fp):
				return nil, fmt.Errorf("%w: media section %q: a=fingerprint:%.40q is not an algorithm and a value", ErrBadSDP, mid, fp)
			}
		}
		if info.kind == 0 {
			out = append(out, info)
			continue
		}
		codecs, err := mediaCodecs(md)
		if err != nil {
			return nil, fmt.Errorf("%w: media section %q: %v", ErrBadSDP, mid, err)
		}
		info.codecs = codecs
		info.extIDs = extmaps(md)
		sends, receives := direction(md)
		info.sending, info.receiving = !rejected && sends, !rejected && receives
		if info.sending {
			if _, ok := pickCodec(info.kind, codecs); !ok {
				return nil, fmt.Errorf("%w: media section %q offers no codec the server forwards", ErrBadSDP, mid)
			}
			if info.rids, err = sendRIDs(md); err != nil {
				return nil, fmt.Errorf("%w: media section %q: %v", ErrBadSDP, mid, err)
			}
			// Simulcast is for video: an audio track has one reader,
			// which alone measures its loudness.
			if info.kind == webrtc.RTPCodecTypeAudio && len(info.rids) > 0 {
				return nil, fmt.Errorf("%w: media section %q: simulcast layers on audio", ErrBadSDP, mid)
			}
		}
		out = append(out, info)
	}
	return out, nil
}

func nonEmpty(v string, ok bool) bool { return ok && v != "" }

// someCandidate fails when md lists candidates and none of them can be
// read: pion then refuses the description, after it has changed the
// signaling state. Candidates of a type or network it does not know it
// skips, and so does this.
func someCandidate(md *sdp.MediaDescription) error {
	var last error
	for _, a := range md.Attributes {
		if !a.IsICECandidate() {
			continue
		}
		_, err := ice.UnmarshalCandidate(a.Value)
		switch {
		case err == nil:
			return nil
		case errors.Is(err, ice.ErrUnknownCandidateTyp), errors.Is(err, ice.ErrDetermineNetworkType):
		default:
			last = fmt.Errorf("a=candidate:%.40q: %w", a.Value, err)
		}
	}
	return last
}

// validFingerprint reports whether an a=fingerprint value has the shape
// pion reads: an algorithm and a value, one space apart. pion checks it
// only after it has changed the signaling state, when refusing it leaves
// the connection broken.
func validFingerprint(v string) bool {
	alg, value, ok := strings.Cut(v, " ")
	return ok && alg != "" && value != "" && !strings.Contains(value, " ")
}

// direction reports whether the client sends and receives on md (its
// direction from the client's point of view).
func direction(md *sdp.MediaDescription) (sends, receives bool) {
	for _, a := range md.Attributes {
		switch a.Key {
		case "sendrecv":
			return true, true
		case "sendonly":
			return true, false
		case "recvonly":
			return false, true
		case "inactive":
			return false, false
		}
	}
	return true, true // sendrecv is the default
}

// maxLayers is the most simulcast layers a track may have.
const maxLayers = 3

func sendRIDs(md *sdp.MediaDescription) ([]string, error) {
	var rids []string
	for _, a := range md.Attributes {
		if a.Key != "rid" {
			continue
		}
		id, dir, _ := strings.Cut(a.Value, " ")
		if dir, _, _ = strings.Cut(dir, " "); dir != "send" {
			continue
		}
		if !validRID(id) {
			return nil, fmt.Errorf("bad rid %q", id)
		}
		for _, r := range rids {
			if r == id {
				return nil, fmt.Errorf("rid %q appears twice", id)
			}
		}
		rids = append(rids, id)
	}
	if len(rids) > maxLayers {
		return nil, fmt.Errorf("%d simulcast layers (at most %d)", len(rids), maxLayers)
	}
	if len(rids) == 1 {
		return nil, nil // one layer is no simulcast
	}
	return rids, nil
}

func validRID(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

// mediaCodecs reads the codecs of md in the order of its m= line.
func mediaCodecs(md *sdp.MediaDescription) ([]webrtc.RTPCodecParameters, error) {
	byPT := map[uint8]*webrtc.RTPCodecParameters{}
	order := make([]uint8, 0, len(md.MediaName.Formats))
	for _, f := range md.MediaName.Formats {
		pt, err := strconv.ParseUint(f, 10, 7)
		if err != nil {
			return nil, fmt.Errorf("bad payload type %q", f)
		}
		if _, dup := byPT[uint8(pt)]; dup {
			continue
		}
		byPT[uint8(pt)] = &webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(pt)}
		order = append(order, uint8(pt))
	}
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" && a.Key != "fmtp" && a.Key != "rtcp-fb" {
			continue
		}
		ptStr, rest, _ := strings.Cut(a.Value, " ")
		pt, err := strconv.ParseUint(ptStr, 10, 7)
		if err != nil {
			if a.Key == "rtcp-fb" && ptStr == "*" {
				continue
			}
			return nil, fmt.Errorf("bad a=%s:%s", a.Key, a.Value)
		}
		c := byPT[uint8(pt)]
		if c == nil {
			continue // attribute for a format not on the m= line: ignored
		}
		switch a.Key {
		case "rtpmap":
			parts := strings.Split(rest, "/")
			if len(parts) < 2 {
				return nil, fmt.Errorf("bad a=rtpmap:%s", a.Value)
			}
			clock, err := strconv.ParseUint(parts[1], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("bad clock rate in a=rtpmap:%s", a.Value)
			}
			c.ClockRate = uint32(clock)
			if len(parts) > 2 {
				ch, err := strconv.ParseUint(parts[2], 10, 16)
				if err != nil {
					return nil, fmt.Errorf("bad channels in a=rtpmap:%s", a.Value)
				}
				c.Channels = uint16(ch)
			}
			kind := strings.ToLower(md.MediaName.Media)
			c.MimeType = kind + "/" + parts[0]
		case "fmtp":
			c.SDPFmtpLine = rest
		case "rtcp-fb":
			typ, param, _ := strings.Cut(rest, " ")
			c.RTCPFeedback = append(c.RTCPFeedback, webrtc.RTCPFeedback{Type: typ, Parameter: param})
		}
	}
	out := make([]webrtc.RTPCodecParameters, 0, len(order))
	for _, pt := range order {
		if c := byPT[pt]; c.MimeType != "" {
			out = append(out, *c)
		}
	}
	return out, nil
}

// pickCodec returns the first codec of the client's list that the server
// forwards: the client's preference.
func pickCodec(kind webrtc.RTPCodecType, codecs []webrtc.RTPCodecParameters) (webrtc.RTPCodecParameters, bool) {
	for _, c := range codecs {
		if supported(kind, c.RTPCodecCapability) {
			return c, true
		}
	}
	return webrtc.RTPCodecParameters{}, false
}

// withRTX returns c and, when the list has one, its retransmission format.
func withRTX(c webrtc.RTPCodecParameters, codecs []webrtc.RTPCodecParameters) []webrtc.RTPCodecParameters {
	out := []webrtc.RTPCodecParameters{c}
	apt := fmt.Sprintf("apt=%d", c.PayloadType)
	for _, r := range codecs {
		if strings.EqualFold(r.MimeType, webrtc.MimeTypeRTX) && strings.TrimSpace(r.SDPFmtpLine) == apt {
			out = append(out, r)
			break
		}
	}
	return out
}

func extmaps(md *sdp.MediaDescription) map[string]int {
	out := map[string]int{}
	for _, a := range md.Attributes {
		if a.Key != "extmap" {
			continue
		}
		idDir, rest, _ := strings.Cut(a.Value, " ")
		idStr, _, _ := strings.Cut(idDir, "/")
		uri, _, _ := strings.Cut(rest, " ")
		id, err := strconv.Atoi(idStr)
		if err != nil || id < 1 || id > 255 {
			continue
		}
		out[uri] = id
	}
	return out
}

// mids lists the mids of a description the server produced or accepted.
// It parses the text: pion's SessionDescription.Unmarshal caches into the
// struct, which pion shares with its own goroutines.
func mids(desc *webrtc.SessionDescription) []string {
	if desc == nil {
		return nil
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(desc.SDP); err != nil {
		return nil
	}
	out := make([]string, 0, len(sd.MediaDescriptions))
	for _, md := range sd.MediaDescriptions {
		mid, _ := md.Attribute(sdp.AttrKeyMID)
		out = append(out, mid)
	}
	return out
}
