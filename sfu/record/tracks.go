package record

import (
	"encoding/binary"

	"github.com/at-wat/ebml-go/webm"
)

// What each codec needs in the file: the track's header entry, what is
// read from its first keyframe, and what makes a frame a keyframe.

// entry describes the track in the file's header.
func (t *trackRec) entry(n uint64) webm.TrackEntry {
	e := webm.TrackEntry{Name: t.up.ID(), TrackNumber: n, TrackUID: n}
	switch t.codec {
	case "audio/opus":
		e.CodecID, e.TrackType = "A_OPUS", 2
		e.Audio = &webm.Audio{SamplingFrequency: 48000, Channels: 2}
		e.CodecPrivate = opusHead()
	case "video/vp8":
		e.CodecID, e.TrackType = "V_VP8", 1
	case "video/vp9":
		e.CodecID, e.TrackType = "V_VP9", 1
	case "video/h264":
		e.CodecID, e.TrackType = "V_MPEG4/ISO/AVC", 1
		e.CodecPrivate = t.private
	case "video/av1":
		e.CodecID, e.TrackType = "V_AV1", 1
		e.CodecPrivate = t.private
	}
	if t.video {
		e.Video = &webm.Video{PixelWidth: t.width, PixelHeight: t.height}
	}
	return e
}

// describe reads what the header needs from a track's first keyframe; it
// reports false when the keyframe lacks it (H264 without its parameter
// sets), and the track waits for another.
func (t *trackRec) describe(frame []byte) bool {
	switch t.codec {
	case "video/vp8":
		if len(frame) >= 10 {
			t.width = uint64(binary.LittleEndian.Uint16(frame[6:8]) & 0x3fff)
			t.height = uint64(binary.LittleEndian.Uint16(frame[8:10]) & 0x3fff)
		}
	case "video/h264":
		var sps, pps []byte
		for _, nal := range avcUnits(frame) {
			switch nal[0] & 0x1f {
			case 7:
				sps = nal
			case 8:
				pps = nal
			}
		}
		if len(sps) < 4 || pps == nil {
			return false
		}
		t.private = avcC(sps, pps)
	case "video/av1":
		c, w, h, ok := av1Config(frame)
		if !ok {
			return false
		}
		t.private, t.width, t.height = c, w, h
	}
	return true
}

// isKeyframe reports whether a frame (as the sample builder assembled it)
// can be decoded alone.
func isKeyframe(codec string, frame []byte) bool {
	if len(frame) == 0 {
		return false
	}
	switch codec {
	case "video/vp8":
		return frame[0]&0x01 == 0
	case "video/vp9":
		// frame_marker(2) profile(2) show_existing_frame(1) frame_type(1),
		// for profiles 0-2; frame_type 0 is a keyframe.
		return frame[0]&0xc0 == 0x80 && frame[0]&0x08 == 0 && frame[0]&0x04 == 0
	case "video/h264":
		for _, nal := range avcUnits(frame) {
			if nal[0]&0x1f == 5 {
				return true
			}
		}
	case "video/av1":
		return av1Keyframe(frame)
	}
	return false
}

// avcUnits splits a frame of length-prefixed NAL units.
func avcUnits(frame []byte) [][]byte {
	var out [][]byte
	for len(frame) >= 4 {
		n := int(binary.BigEndian.Uint32(frame))
		frame = frame[4:]
		if n <= 0 || n > len(frame) {
			break
		}
		out = append(out, frame[:n])
		frame = frame[n:]
	}
	return out
}

// avcC is the AVCDecoderConfigurationRecord (ISO/IEC 14496-15) of one SPS
// and one PPS, with 4-byte NAL lengths.
func avcC(sps, pps []byte) []byte {
	b := []byte{1, sps[1], sps[2], sps[3], 0xff, 0xe1}
	b = binary.BigEndian.AppendUint16(b, uint16(len(sps)))
	b = append(b, sps...)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(pps)))
	return append(b, pps...)
}

// opusHead is the Opus identification header (RFC 7845) Matroska keeps as
// the track's CodecPrivate: stereo, 48 kHz, no pre-skip or gain.
func opusHead() []byte {
	b := []byte("OpusHead")
	b = append(b, 1, 2)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, 48000)
	b = binary.LittleEndian.AppendUint16(b, 0)
	return append(b, 0)
}
