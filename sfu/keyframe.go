package sfu

import (
	"strings"

	"github.com/pion/webrtc/v4"
)

// codecKind selects the keyframe parser of a codec.
type codecKind uint8

const (
	codecAudio codecKind = iota // every packet is a decodable start
	codecVP8
	codecVP9
	codecH264
	codecAV1
	codecOtherVideo // unknown video: treated as always decodable
)

func codecKindOf(mime string) codecKind {
	switch strings.ToLower(mime) {
	case strings.ToLower(webrtc.MimeTypeVP8):
		return codecVP8
	case strings.ToLower(webrtc.MimeTypeVP9):
		return codecVP9
	case strings.ToLower(webrtc.MimeTypeH264):
		return codecH264
	case strings.ToLower(webrtc.MimeTypeAV1):
		return codecAV1
	}
	if strings.HasPrefix(strings.ToLower(mime), "audio/") {
		return codecAudio
	}
	return codecOtherVideo
}

// isKeyframeStart reports whether payload is the first packet of a
// keyframe, where a subscriber may start decoding or switch layers.
func isKeyframeStart(k codecKind, payload []byte) bool {
	switch k {
	case codecVP8:
		return vp8Keyframe(payload)
	case codecVP9:
		return vp9Keyframe(payload)
	case codecH264:
		return h264Keyframe(payload)
	case codecAV1:
		return av1Keyframe(payload)
	}
	return true
}

// vp8Keyframe parses the VP8 payload descriptor (RFC 7741 section 4.2) and
// the P bit of the payload header at the start of partition 0.
func vp8Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	x, s, pid := p[0]&0x80 != 0, p[0]&0x10 != 0, p[0]&0x07
	if !s || pid != 0 {
		return false
	}
	i := 1
	if x {
		if len(p) < 2 {
			return false
		}
		ext := p[1]
		i = 2
		if ext&0x80 != 0 { // I: picture id
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 { // M: 15-bit picture id
				i++
			}
			i++
		}
		if ext&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if ext&0x30 != 0 { // T or K
			i++
		}
	}
	return len(p) > i && p[i]&0x01 == 0
}

// vp9Keyframe reads the VP9 payload descriptor (RFC 9628 section 4.2): the
// start of a frame (B) not predicted from an earlier picture (P clear), in
// the lowest spatial layer.
func vp9Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	b0 := p[0]
	iFlag, pFlag, lFlag, bFlag := b0&0x80 != 0, b0&0x40 != 0, b0&0x20 != 0, b0&0x08 != 0
	if pFlag || !bFlag {
		return false
	}
	if !lFlag {
		return true
	}
	i := 1
	if iFlag {
		if len(p) <= i {
			return false
		}
		if p[i]&0x80 != 0 {
			i++
		}
		i++
	}
	if len(p) <= i {
		return false
	}
	sid := (p[i] >> 1) & 0x07
	return sid == 0
}

// h264Keyframe finds an IDR slice or a sequence parameter set (which
// browsers send right before an IDR) at the start of the payload
// (RFC 6184: single NAL unit, STAP-A or the first fragment of an FU-A).
func h264Keyframe(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	isKey := func(t byte) bool { return t == 5 || t == 7 }
	switch t := p[0] & 0x1f; {
	case t >= 1 && t <= 23:
		return isKey(t)
	case t == 24: // STAP-A
		for i := 1; i+2 < len(p); {
			size := int(p[i])<<8 | int(p[i+1])
			i += 2
			if size == 0 || i+size > len(p) {
				return false
			}
			if isKey(p[i] & 0x1f) {
				return true
			}
			i += size
		}
	case t == 28: // FU-A
		return len(p) >= 2 && p[1]&0x80 != 0 && isKey(p[1]&0x1f)
	}
	return false
}

// av1Keyframe reads the N bit of the AV1 aggregation header: the first
// packet of a new coded video sequence, which starts with a keyframe.
func av1Keyframe(p []byte) bool {
	return len(p) >= 1 && p[0]&0x08 != 0
}
