package sfu

import (
	"testing"

	"github.com/pion/webrtc/v4"
)

func TestChooseCodec(t *testing.T) {
	codec := func(pt int, mime, fmtp string) webrtc.RTPCodecParameters {
		return webrtc.RTPCodecParameters{PayloadType: webrtc.PayloadType(pt),
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000, SDPFmtpLine: fmtp}}
	}
	const h264 = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
	vp8, vp9, h, rtx := codec(96, webrtc.MimeTypeVP8, ""), codec(98, webrtc.MimeTypeVP9, "profile-id=0"),
		codec(109, webrtc.MimeTypeH264, h264), codec(97, webrtc.MimeTypeRTX, "apt=96")
	chromium := []webrtc.RTPCodecParameters{vp8, rtx, vp9, h}
	decodes := func(cs ...webrtc.RTPCodecParameters) Codecs {
		out := Codecs{}
		for _, c := range cs {
			out = append(out, c.RTPCodecCapability)
		}
		return out
	}
	h264Only, vp8Only := decodes(codec(0, "video/h264", h264)), decodes(vp8)
	firefox := decodes(vp8, vp9, codec(0, webrtc.MimeTypeAV1, ""))
	tests := []struct {
		name     string
		offered  []webrtc.RTPCodecParameters
		audience []Codecs
		want     string
		n        int
	}{
		{"nobody yet: the publisher's choice", chromium, nil, webrtc.MimeTypeVP8, 0},
		{"clients that did not say decode anything", chromium, []Codecs{nil, nil}, webrtc.MimeTypeVP8, 2},
		{"an H264-only subscriber", chromium, []Codecs{nil, h264Only}, webrtc.MimeTypeH264, 2},
		{"what every subscriber decodes, even late in the list", chromium, []Codecs{firefox, h264Only, nil}, webrtc.MimeTypeVP8, 2},
		{"nothing fits all: the most, then the publisher's order", chromium, []Codecs{vp8Only, h264Only}, webrtc.MimeTypeVP8, 1},
		{"nothing fits all: the most", chromium, []Codecs{vp8Only, h264Only, h264Only}, webrtc.MimeTypeH264, 2},
		{"H264 of another profile is not decoded", []webrtc.RTPCodecParameters{codec(102, webrtc.MimeTypeH264, "packetization-mode=1;profile-level-id=640c1f"), vp8},
			[]Codecs{h264Only}, webrtc.MimeTypeVP8, 0},
		{"RTX is never chosen", []webrtc.RTPCodecParameters{rtx, h}, []Codecs{vp8Only}, webrtc.MimeTypeH264, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, n, ok := chooseCodec(videoKind, tt.offered, tt.audience)
			if !ok || got.MimeType != tt.want || n != tt.n {
				t.Errorf("chooseCodec = %s decoded by %d (ok %v), want %s by %d", got.MimeType, n, ok, tt.want, tt.n)
			}
		})
	}
}

func TestDecodes(t *testing.T) {
	vp9p2 := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP9, SDPFmtpLine: "profile-id=2"}
	if !Codecs(nil).Decodes(vp9p2) {
		t.Error("a client that did not say does not decode VP9")
	}
	if (Codecs{{MimeType: "video/vp9", SDPFmtpLine: "profile-id=0"}}).Decodes(vp9p2) {
		t.Error("VP9 profile 0 decodes profile 2")
	}
	if !(Codecs{{MimeType: "video/vp9", SDPFmtpLine: "profile-id=2"}}).Decodes(vp9p2) {
		t.Error("VP9 profile 2 does not decode profile 2 (mime types differ in case)")
	}
	if (Codecs{}).Decodes(vp9p2) {
		t.Error("an empty list decodes something")
	}
}
