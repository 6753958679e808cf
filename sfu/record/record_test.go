package record

import (
	"bytes"
	"testing"
	"time"
)

func TestSafeName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"Ann", "Ann"},
		{"..", "__"},
		{"../../etc/passwd", "______etc_passwd"},
		{"a b/c\\d", "a_b_c_d"},
		{"", "_"},
		{"Zoë", "Zo_"},
		{string(bytes.Repeat([]byte("x"), 100)), string(bytes.Repeat([]byte("x"), 48))},
	} {
		if got := safeName(tc.in); got != tc.want {
			t.Errorf("safeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestIsKeyframe(t *testing.T) {
	avc := func(nals ...[]byte) []byte {
		var b []byte
		for _, n := range nals {
			b = append(b, 0, 0, 0, byte(len(n)))
			b = append(b, n...)
		}
		return b
	}
	for _, tc := range []struct {
		name, codec string
		frame       []byte
		want        bool
	}{
		{"vp8 key", "video/vp8", []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a}, true},
		{"vp8 inter", "video/vp8", []byte{0x11, 0x02, 0x00}, false},
		{"vp9 key", "video/vp9", []byte{0x82, 0x49, 0x83, 0x42}, true},
		{"vp9 inter", "video/vp9", []byte{0x86}, false},
		{"h264 sps pps idr", "video/h264", avc([]byte{0x67, 0x42, 0xc0, 0x1f}, []byte{0x68, 0xce}, []byte{0x65, 0x88}), true},
		{"h264 non-idr", "video/h264", avc([]byte{0x41, 0x9a}), false},
		{"h264 truncated", "video/h264", []byte{0, 0, 0, 9, 0x65}, false},
		{"empty", "video/vp8", nil, false},
	} {
		if got := isKeyframe(tc.codec, tc.frame); got != tc.want {
			t.Errorf("%s: isKeyframe = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestDescribeH264: the track's header carries an avcC built from the
// keyframe's parameter sets; a keyframe without them is not enough.
func TestDescribeH264(t *testing.T) {
	sps, pps := []byte{0x67, 0x42, 0xc0, 0x1f, 0xaa}, []byte{0x68, 0xce, 0x3c}
	frame := []byte{0, 0, 0, 5}
	frame = append(frame, sps...)
	frame = append(frame, 0, 0, 0, 3)
	frame = append(frame, pps...)
	frame = append(frame, 0, 0, 0, 2, 0x65, 0x88)
	tr := &trackRec{codec: "video/h264"}
	if !tr.describe(frame) {
		t.Fatal("a keyframe with SPS and PPS was not enough")
	}
	want := append([]byte{1, 0x42, 0xc0, 0x1f, 0xff, 0xe1, 0, 5}, sps...)
	want = append(want, 1, 0, 3)
	want = append(want, pps...)
	if !bytes.Equal(tr.private, want) {
		t.Errorf("avcC % x, want % x", tr.private, want)
	}
	if (&trackRec{codec: "video/h264"}).describe([]byte{0, 0, 0, 2, 0x65, 0x88}) {
		t.Error("an IDR without parameter sets was taken")
	}
	vp8 := &trackRec{codec: "video/vp8"}
	vp8.describe([]byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01})
	if vp8.width != 640 || vp8.height != 360 {
		t.Errorf("VP8 keyframe read as %dx%d, want 640x360", vp8.width, vp8.height)
	}
}

// TestTimestamp: a track's time in the file is its offset from the file's
// start plus its RTP time, across the RTP clock's wrap.
func TestTimestamp(t *testing.T) {
	start := time.Unix(1000, 0)
	tr := &trackRec{clock: 90000}
	if ms := tr.timestamp(0xffffffff-90000+1, start.Add(250*time.Millisecond), start); ms != 250 {
		t.Fatalf("first sample at %d ms, want 250", ms)
	}
	if ms := tr.timestamp(90000, start, start); ms != 250+2000 {
		t.Errorf("two seconds later, across the wrap: %d ms, want 2250", ms)
	}
	if ms := tr.timestamp(90000-9000, start, start); ms != 250+1900 {
		t.Errorf("a reordered sample: %d ms, want 2150", ms)
	}
}

func TestOpusHead(t *testing.T) {
	h := opusHead()
	if len(h) != 19 || string(h[:8]) != "OpusHead" || h[9] != 2 || h[12] != 0x80 || h[13] != 0xbb {
		t.Errorf("OpusHead % x", h)
	}
}

// TestAV1: a temporal unit as libaom encodes a 640x360 4:2:0 keyframe (a
// temporal delimiter, the sequence header, a frame, here cut short) is a
// keyframe whose sequence header gives the av1C record and the size; the
// block leaves out the temporal delimiter; a unit without a sequence
// header is not a keyframe, and a malformed one is neither.
func TestAV1(t *testing.T) {
	td := []byte{0x12, 0x00}
	seq := []byte{0x0a, 0x0b, 0x00, 0x00, 0x00, 0x0c, 0xc4, 0xff, 0x67, 0x36, 0xbe, 0x40, 0x10}
	frame := []byte{0x32, 0x03, 0x10, 0x00, 0x85}
	tu := append(append(append([]byte{}, td...), seq...), frame...)
	if !isKeyframe("video/av1", tu) || isKeyframe("video/av1", append(append([]byte{}, td...), frame...)) {
		t.Error("keyframes are the units with a sequence header")
	}
	if isKeyframe("video/av1", []byte{0x0a, 0x7f}) {
		t.Error("a truncated OBU read as a keyframe")
	}
	tr := &trackRec{codec: "video/av1", video: true}
	if !tr.describe(tu) {
		t.Fatal("the keyframe's sequence header was not read")
	}
	// Profile 0 (Main), level 1, 8-bit 4:2:0, then the sequence header OBU.
	want := append([]byte{0x81, 0x01, 0x0c, 0x00}, seq...)
	if !bytes.Equal(tr.private, want) || tr.width != 640 || tr.height != 360 {
		t.Errorf("av1C % x, %dx%d; want % x, 640x360", tr.private, tr.width, tr.height, want)
	}
	if got := av1Block(tu); !bytes.Equal(got, tu[len(td):]) {
		t.Errorf("block % x, want the unit without its temporal delimiter", got)
	}
	if (&trackRec{codec: "video/av1"}).describe(frame) {
		t.Error("a unit without a sequence header described the track")
	}
}
