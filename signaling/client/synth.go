package client

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Synth is a synthetic media source: it sends RTP packets whose payloads a
// receiver can verify (source, counter, send time and a checksum), so that
// tests and the load tool can tell that media arrived intact and how late.
//
// Video packets start as the codec's do, a VP8 payload descriptor or an
// H264 NAL unit header (one NAL unit per packet: an IDR slice for a
// keyframe, a non-IDR slice otherwise), and mark a keyframe every
// KeyframeEvery packets, so that the server's keyframe logic works on them.
type Synth struct {
	Track *webrtc.TrackLocalStaticRTP
	// Source identifies the stream in every payload.
	Source uint32
	// Size is the payload size in bytes (at least MinSynthSize).
	Size int
	// KeyframeEvery makes every n-th video packet a keyframe start.
	KeyframeEvery int

	video   bool
	h264    bool        // the payload format: H264 rather than VP8 (video)
	keyNext atomic.Bool // the next video packet starts a keyframe
	rid     string
	seq     uint16
	count   uint32
	buf     []byte

	// Header extensions a simulcast layer carries so that the receiver can
	// tell the layers apart (pion's sender does not add them itself).
	midID, ridID uint8
	mid          string

	// Level is the audio level (RFC 6464) audio packets carry, in -dBov:
	// 0 is the loudest, 127 silence. Sent once UseTransceiver found the
	// extension negotiated.
	Level        atomic.Uint32
	audioLevelID uint8
	levelBuf     [1]byte
}

// MinSynthSize is the smallest payload a Synth sends.
const MinSynthSize = 2 + synthHeader

// synthHeader: magic(2) source(4) counter(4) sent-at ns(8) crc(4).
const synthHeader = 22

const synthMagic = 0x5eed

// SynthH264Fmtp is the format of the H264 a Synth sends: constrained
// baseline, packetization mode 1, which every browser numbering has.
const SynthH264Fmtp = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"

// NewSynth makes a source of the given kind whose track has stream id
// streamID: "audio" (Opus at 48 kHz), "video" (VP8 at 90 kHz), or a mime
// type, webrtc.MimeTypeOpus, webrtc.MimeTypeVP8 or webrtc.MimeTypeH264. A
// video source may name a simulcast layer: rid.
func NewSynth(kind, trackID, streamID string, source uint32, size int, rid ...string) (*Synth, error) {
	var capab webrtc.RTPCodecCapability
	switch strings.ToLower(kind) {
	case "audio", strings.ToLower(webrtc.MimeTypeOpus):
		capab = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
	case "video", strings.ToLower(webrtc.MimeTypeVP8):
		capab = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	case strings.ToLower(webrtc.MimeTypeH264):
		capab = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000, SDPFmtpLine: SynthH264Fmtp}
	default:
		return nil, fmt.Errorf("synth: unsupported kind %q", kind)
	}
	var opts []func(*webrtc.TrackLocalStaticRTP)
	if len(rid) > 0 && rid[0] != "" {
		opts = append(opts, webrtc.WithRTPStreamID(rid[0]))
	}
	t, err := webrtc.NewTrackLocalStaticRTP(capab, trackID, streamID, opts...)
	if err != nil {
		return nil, err
	}
	s := &Synth{
		Track: t, Source: source, Size: max(size, MinSynthSize), KeyframeEvery: 30,
		seq: uint16(source * 7919),
	}
	s.setCodec(capab.MimeType)
	if len(rid) > 0 {
		s.rid = rid[0]
	}
	s.Level.Store(127)
	return s, nil
}

// Next builds the next packet; the payload slice is reused by the next call.
func (s *Synth) Next(now time.Time) *rtp.Packet {
	if cap(s.buf) < s.Size {
		s.buf = make([]byte, s.Size)
	}
	b := s.buf[:s.Size]
	off := 0
	if s.video {
		key := s.keyNext.Swap(false) || s.KeyframeEvery > 0 && s.count%uint32(s.KeyframeEvery) == 0
		switch {
		case s.h264 && key:
			b[0] = h264IDR
		case s.h264:
			b[0] = h264NonIDR
		default:
			b[0] = vp8Start
		}
		b[1] = 0x01 // VP8: interframe
		if s.h264 {
			b[1] = 0x88 // slice header: first_mb_in_slice 0, ...
		} else if key {
			b[1] = 0x00 // VP8: keyframe
		}
		off = 2
	}
	body := b[off:]
	binary.BigEndian.PutUint16(body[0:], synthMagic)
	binary.BigEndian.PutUint32(body[2:], s.Source)
	binary.BigEndian.PutUint32(body[6:], s.count)
	binary.BigEndian.PutUint64(body[10:], uint64(now.UnixNano()))
	for i := synthHeader; i < len(body); i++ {
		body[i] = byte(s.count) + byte(i)
	}
	binary.BigEndian.PutUint32(body[18:], 0)
	binary.BigEndian.PutUint32(body[18:], crc32.ChecksumIEEE(body))

	clock := uint32(90000)
	if !s.video {
		clock = 48000
	}
	p := &rtp.Packet{
		Header: rtp.Header{
			Version: 2, Marker: true, SequenceNumber: s.seq,
			Timestamp: uint32(now.UnixNano() / int64(time.Second/time.Duration(clock))),
		},
		Payload: b,
	}
	if s.audioLevelID != 0 && !s.video {
		s.levelBuf[0] = byte(s.Level.Load() & 0x7f)
		_ = p.Header.SetExtension(s.audioLevelID, s.levelBuf[:])
	}
	if s.rid != "" && s.ridID != 0 {
		_ = p.Header.SetExtension(s.ridID, []byte(s.rid))
		if s.midID != 0 {
			_ = p.Header.SetExtension(s.midID, []byte(s.mid))
		}
	}
	s.seq++
	s.count++
	return p
}

// First bytes of a video payload. A VP8 payload descriptor with S set and
// partition 0 (0x10) is, read as an H264 NAL unit header, a reserved NAL
// type (16) that the H264 source never sends: ReadStamp tells them apart.
const (
	vp8Start   = 0x10 // VP8 payload descriptor: S=1, partition 0
	h264IDR    = 0x65 // NAL unit header: nal_ref_idc 3, type 5 (IDR slice)
	h264NonIDR = 0x41 // NAL unit header: nal_ref_idc 2, type 1 (non-IDR slice)
)

// Codec returns the mime type of the payloads the source sends.
func (s *Synth) Codec() string {
	switch {
	case !s.video:
		return webrtc.MimeTypeOpus
	case s.h264:
		return webrtc.MimeTypeH264
	}
	return webrtc.MimeTypeVP8
}

func (s *Synth) setCodec(mime string) {
	s.video = strings.HasPrefix(strings.ToLower(mime), "video/")
	s.h264 = strings.EqualFold(mime, webrtc.MimeTypeH264)
}

// RequestKeyframe makes the next video packet start a keyframe, as an
// encoder does on a PLI or FIR.
func (s *Synth) RequestKeyframe() { s.keyNext.Store(true) }

// WantsKeyframe reports whether pkts (RTCP from the server) ask for a
// keyframe: a PLI or a FIR.
func WantsKeyframe(pkts []rtcp.Packet) bool {
	for _, p := range pkts {
		switch p.(type) {
		case *rtcp.PictureLossIndication, *rtcp.FullIntraRequest:
			return true
		}
	}
	return false
}

// UseTransceiver makes the source send what was negotiated on tr: payloads
// of the codec negotiated for its track (pion sets the payload type on
// write), and the header extensions pion's sender does not add itself: mid
// and rid for a simulcast layer (so that the server can tell the layers
// apart), the audio level for audio.
func (s *Synth) UseTransceiver(tr *webrtc.RTPTransceiver) {
	s.mid = tr.Mid()
	params := tr.Sender().GetParameters()
	for _, c := range params.Codecs {
		// pion binds the track to the first negotiated codec of its mime type.
		if strings.EqualFold(c.MimeType, s.Track.Codec().MimeType) {
			s.setCodec(c.MimeType)
			break
		}
	}
	for _, h := range params.HeaderExtensions {
		switch h.URI {
		case sdp.SDESMidURI:
			s.midID = uint8(h.ID)
		case sdp.SDESRTPStreamIDURI:
			s.ridID = uint8(h.ID)
		case sdp.AudioLevelURI:
			s.audioLevelID = uint8(h.ID)
		}
	}
}

// Run sends packets every interval until ctx ends.
func (s *Synth) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			_ = s.Track.WriteRTP(s.Next(now))
		}
	}
}

// Stamp is what a receiver reads back from a Synth payload.
type Stamp struct {
	Source  uint32
	Counter uint32
	SentAt  time.Time
	Key     bool // a video keyframe start
}

var zero4 [4]byte

// ErrNotSynth reports a payload that is not an intact Synth payload.
var ErrNotSynth = errors.New("payload is not an intact synthetic payload")

// ReadStamp verifies a Synth payload (video payloads start with the VP8
// descriptor or the H264 NAL unit header, two bytes) and returns its stamp.
func ReadStamp(payload []byte, video bool) (Stamp, error) {
	var st Stamp
	if video {
		if len(payload) < 2 {
			return st, ErrNotSynth
		}
		switch payload[0] {
		case vp8Start:
			st.Key = payload[1]&0x01 == 0
		case h264IDR, h264NonIDR:
			st.Key = payload[0] == h264IDR
		default:
			return st, ErrNotSynth
		}
		payload = payload[2:]
	}
	if len(payload) < synthHeader || binary.BigEndian.Uint16(payload) != synthMagic {
		return st, ErrNotSynth
	}
	want := binary.BigEndian.Uint32(payload[18:])
	crc := crc32.Update(0, crc32.IEEETable, payload[:18])
	crc = crc32.Update(crc, crc32.IEEETable, zero4[:])
	crc = crc32.Update(crc, crc32.IEEETable, payload[22:])
	if crc != want {
		return st, ErrNotSynth
	}
	st.Source = binary.BigEndian.Uint32(payload[2:])
	st.Counter = binary.BigEndian.Uint32(payload[6:])
	st.SentAt = time.Unix(0, int64(binary.BigEndian.Uint64(payload[10:])))
	return st, nil
}
