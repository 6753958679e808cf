package sfu

import "testing"

func TestKeyframeDetection(t *testing.T) {
	tests := []struct {
		name    string
		codec   string
		payload []byte
		want    bool
	}{
		{"vp8 keyframe", "video/VP8", []byte{0x10, 0x00, 0x9d}, true},
		{"vp8 interframe", "video/VP8", []byte{0x10, 0x01, 0x9d}, false},
		{"vp8 not the partition start", "video/VP8", []byte{0x00, 0x00}, false},
		{"vp8 keyframe with 15-bit picture id", "video/VP8", []byte{0x90, 0x80, 0x81, 0x23, 0x00}, true},
		{"vp8 interframe with picture id, tl0picidx and tid", "video/VP8", []byte{0x90, 0xe0, 0x05, 0x07, 0x20, 0x01}, false},
		{"vp8 keyframe with picture id, tl0picidx and tid", "video/VP8", []byte{0x90, 0xe0, 0x05, 0x07, 0x20, 0x00}, true},
		{"vp8 truncated", "video/VP8", []byte{0x90}, false},
		{"vp8 empty", "video/VP8", nil, false},
		{"vp9 keyframe start", "video/VP9", []byte{0x08, 0x00}, true},
		{"vp9 inter frame", "video/VP9", []byte{0x48}, false},
		{"vp9 keyframe, not the first packet", "video/VP9", []byte{0x00}, false},
		{"vp9 keyframe with layer index, spatial layer 0", "video/VP9", []byte{0xa8, 0x80, 0x01, 0x00}, true},
		{"vp9 keyframe with layer index, spatial layer 1", "video/VP9", []byte{0xa8, 0x80, 0x01, 0x02}, false},
		{"h264 idr", "video/H264", []byte{0x65, 0x88}, true},
		{"h264 sps", "video/H264", []byte{0x67, 0x42}, true},
		{"h264 non-idr slice", "video/H264", []byte{0x41, 0x9a}, false},
		{"h264 stap-a with sps", "video/H264", []byte{0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce}, true},
		{"h264 stap-a without key", "video/H264", []byte{0x78, 0x00, 0x02, 0x41, 0x9a}, false},
		{"h264 stap-a truncated", "video/H264", []byte{0x78, 0x00, 0x09, 0x67}, false},
		{"h264 fu-a idr start", "video/H264", []byte{0x7c, 0x85, 0x88}, true},
		{"h264 fu-a idr continuation", "video/H264", []byte{0x7c, 0x05, 0x88}, false},
		{"h264 fu-a non-idr start", "video/H264", []byte{0x7c, 0x81}, false},
		{"av1 new coded video sequence", "video/AV1", []byte{0x18, 0x0a}, true},
		{"av1 other", "video/AV1", []byte{0x10, 0x0a}, false},
		{"opus", "audio/opus", []byte{0xfc}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := isKeyframeStart(codecKindOf(tc.codec), tc.payload); got != tc.want {
				t.Errorf("isKeyframeStart(%s, % x) = %v, want %v", tc.codec, tc.payload, got, tc.want)
			}
		})
	}
}

func FuzzKeyframe(f *testing.F) {
	f.Add(uint8(codecVP8), []byte{0x90, 0x80, 0x81})
	f.Add(uint8(codecVP9), []byte{0xa8, 0x80})
	f.Add(uint8(codecH264), []byte{0x78, 0x00, 0x02, 0x67})
	f.Add(uint8(codecAV1), []byte{0x18})
	f.Fuzz(func(t *testing.T, k uint8, payload []byte) {
		_ = isKeyframeStart(codecKind(k%6), payload) // must not panic
	})
}
