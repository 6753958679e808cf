package record

import "errors"

// AV1 in Matroska (the AV1-in-Matroska codec mapping): each block is a
// temporal unit of OBUs in the low-overhead format (every OBU with its
// size), without temporal delimiters, tile lists or padding; the track's
// CodecPrivate is an AV1CodecConfigurationRecord (av1C) read from the
// sequence header, which is also in it.

// OBU types (AV1 specification, section 6.2.2).
const (
	obuSequenceHeader    = 1
	obuTemporalDelimiter = 2
	obuTileList          = 8
	obuPadding           = 15
)

// obu is one OBU of a temporal unit: its type, all its bytes (header,
// size and payload), and its payload.
type obu struct {
	typ          byte
	raw, payload []byte
}

var errOBU = errors.New("malformed OBU")

// obus splits a temporal unit in the low-overhead format.
func obus(tu []byte) ([]obu, error) {
	var out []obu
	for len(tu) > 0 {
		h := tu[0]
		if h&0x80 != 0 || h&0x02 == 0 {
			return nil, errOBU // forbidden bit, or no size field
		}
		n := 1
		if h&0x04 != 0 { // extension header
			n++
		}
		size, k := leb128(tu[min(n, len(tu)):])
		if k == 0 || uint64(len(tu)-n-k) < size {
			return nil, errOBU
		}
		end := n + k + int(size)
		out = append(out, obu{typ: h >> 3 & 0x0f, raw: tu[:end], payload: tu[n+k : end]})
		tu = tu[end:]
	}
	return out, nil
}

// leb128 reads an unsigned LEB128 number; k is its length, 0 if invalid.
func leb128(b []byte) (v uint64, k int) {
	for i := 0; i < 8 && i < len(b); i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

// av1Block is what a temporal unit becomes in a block: its OBUs less
// temporal delimiters, tile lists and padding.
func av1Block(tu []byte) []byte {
	units, err := obus(tu)
	if err != nil {
		return tu
	}
	out := make([]byte, 0, len(tu))
	for _, o := range units {
		switch o.typ {
		case obuTemporalDelimiter, obuTileList, obuPadding:
			continue
		}
		out = append(out, o.raw...)
	}
	return out
}

// av1Keyframe reports whether a temporal unit starts a coded video
// sequence: it carries the sequence header, which encoders send with
// every keyframe (and a decoder needs first).
func av1Keyframe(tu []byte) bool {
	units, err := obus(tu)
	if err != nil {
		return false
	}
	for _, o := range units {
		if o.typ == obuSequenceHeader {
			return true
		}
	}
	return false
}

// av1Config reads a temporal unit's sequence header: the av1C record
// with the header in its configOBUs, and the largest frame size. ok is
// false without a sequence header it can read.
func av1Config(tu []byte) (av1C []byte, width, height uint64, ok bool) {
	units, err := obus(tu)
	if err != nil {
		return nil, 0, 0, false
	}
	for _, o := range units {
		if o.typ != obuSequenceHeader {
			continue
		}
		sh, err := parseSequenceHeader(o.payload)
		if err != nil {
			return nil, 0, 0, false
		}
		c := []byte{
			0x81, // marker, version 1
			sh.profile<<5 | sh.level,
			sh.tier<<7 | b2u(sh.bitDepth > 8)<<6 | b2u(sh.bitDepth == 12)<<5 | b2u(sh.mono)<<4 |
				sh.subX<<3 | sh.subY<<2 | sh.chromaPos,
			0, // no initial presentation delay
		}
		return append(c, o.raw...), sh.width, sh.height, true
	}
	return nil, 0, 0, false
}

func b2u(b bool) byte {
	if b {
		return 1
	}
	return 0
}

// sequenceHeader is what av1C and the track's header need of a sequence
// header OBU.
type sequenceHeader struct {
	profile, level, tier byte
	bitDepth             int
	mono                 bool
	subX, subY           byte
	chromaPos            byte
	width, height        uint64
}

// bits reads a big-endian bit string.
type bits struct {
	b   []byte
	pos int
	err error
}

func (r *bits) f(n int) uint64 {
	var v uint64
	for range n {
		if r.pos >= 8*len(r.b) {
			r.err = errOBU
			return 0
		}
		v = v<<1 | uint64(r.b[r.pos/8]>>(7-r.pos%8)&1)
		r.pos++
	}
	return v
}

func (r *bits) flag() bool { return r.f(1) == 1 }

// uvlc reads a variable-length number (section 4.10.3).
func (r *bits) uvlc() uint64 {
	zeros := 0
	for !r.flag() {
		if r.err != nil {
			return 0
		}
		zeros++
	}
	if zeros >= 32 {
		return 1<<32 - 1
	}
	return r.f(zeros) + 1<<zeros - 1
}

// parseSequenceHeader reads a sequence header OBU's payload (section
// 5.5) as far as the color configuration.
func parseSequenceHeader(p []byte) (sequenceHeader, error) {
	var sh sequenceHeader
	r := &bits{b: p}
	sh.profile = byte(r.f(3))
	r.f(1) // still_picture
	reduced := r.flag()
	if reduced {
		sh.level = byte(r.f(5))
	} else {
		decoderModel, delayLen := false, 0
		if r.flag() { // timing_info_present_flag
			r.f(32) // num_units_in_display_tick
			r.f(32) // time_scale
			if r.flag() {
				r.uvlc() // num_ticks_per_picture_minus_1
			}
			if decoderModel = r.flag(); decoderModel {
				delayLen = int(r.f(5)) + 1
				r.f(32) // num_units_in_decoding_tick
				r.f(5)  // buffer_removal_time_length_minus_1
				r.f(5)  // frame_presentation_time_length_minus_1
			}
		}
		initialDelay := r.flag()
		points := int(r.f(5)) + 1
		for i := range points {
			r.f(12) // operating_point_idc
			level := byte(r.f(5))
			tier := byte(0)
			if level > 7 {
				tier = byte(r.f(1))
			}
			if i == 0 {
				sh.level, sh.tier = level, tier
			}
			if decoderModel && r.flag() {
				r.f(delayLen) // decoder_buffer_delay
				r.f(delayLen) // encoder_buffer_delay
				r.f(1)        // low_delay_mode_flag
			}
			if initialDelay && r.flag() {
				r.f(4) // initial_display_delay_minus_1
			}
		}
	}
	wBits, hBits := int(r.f(4))+1, int(r.f(4))+1
	sh.width, sh.height = r.f(wBits)+1, r.f(hBits)+1
	if !reduced && r.flag() { // frame_id_numbers_present_flag
		r.f(4)
		r.f(3)
	}
	r.f(3) // use_128x128_superblock, enable_filter_intra, enable_intra_edge_filter
	if !reduced {
		r.f(4) // interintra compound, masked compound, warped motion, dual filter
		orderHint := r.flag()
		if orderHint {
			r.f(2) // enable_jnt_comp, enable_ref_frame_mvs
		}
		forceScreen := uint64(2) // SELECT_SCREEN_CONTENT_TOOLS
		if !r.flag() {           // seq_choose_screen_content_tools
			forceScreen = r.f(1)
		}
		if forceScreen > 0 && !r.flag() { // seq_choose_integer_mv
			r.f(1) // seq_force_integer_mv
		}
		if orderHint {
			r.f(3) // order_hint_bits_minus_1
		}
	}
	r.f(3) // enable_superres, enable_cdef, enable_restoration
	// color_config (section 5.5.2)
	sh.bitDepth = 8
	if r.flag() { // high_bitdepth
		sh.bitDepth = 10
		if sh.profile == 2 && r.flag() {
			sh.bitDepth = 12
		}
	}
	if sh.profile != 1 {
		sh.mono = r.flag()
	}
	cp, tc, mc := uint64(2), uint64(2), uint64(2)
	if r.flag() { // color_description_present_flag
		cp, tc, mc = r.f(8), r.f(8), r.f(8)
	}
	switch {
	case sh.mono:
		sh.subX, sh.subY = 1, 1
	case cp == 1 && tc == 13 && mc == 0: // sRGB
	default:
		r.f(1) // color_range
		switch {
		case sh.profile == 0:
			sh.subX, sh.subY = 1, 1
		case sh.profile == 2 && sh.bitDepth == 12:
			sh.subX = byte(r.f(1))
			if sh.subX == 1 {
				sh.subY = byte(r.f(1))
			}
		case sh.profile == 2:
			sh.subX = 1
		}
		if sh.subX == 1 && sh.subY == 1 {
			sh.chromaPos = byte(r.f(2))
		}
	}
	return sh, r.err
}
