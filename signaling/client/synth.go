package client

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
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
// Video packets carry a VP8 payload descriptor and mark a keyframe every
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

// NewSynth makes a source of the given kind ("audio": Opus at 48 kHz,
// "video": VP8 at 90 kHz) whose track has stream id streamID. A video
// source may name a simulcast layer: rid.
func NewSynth(kind, trackID, streamID string, source uint32, size int, rid ...string) (*Synth, error) {
	capab := webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}
	if kind == "audio" {
		capab = webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}
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
		video: kind != "audio", seq: uint16(source * 7919),
	}
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
		b[0] = 0x10 // S=1, partition 0
		b[1] = 0x01 // interframe
		if s.keyNext.Swap(false) || s.KeyframeEvery > 0 && s.count%uint32(s.KeyframeEvery) == 0 {
			b[1] = 0x00
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

// UseTransceiver makes the source carry the header extensions negotiated on
// tr that pion's sender does not add itself: mid and rid for a simulcast
// layer (so that the server can tell the layers apart), the audio level for
// audio.
func (s *Synth) UseTransceiver(tr *webrtc.RTPTransceiver) {
	s.mid = tr.Mid()
	for _, h := range tr.Sender().GetParameters().HeaderExtensions {
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
// descriptor) and returns its stamp.
func ReadStamp(payload []byte, video bool) (Stamp, error) {
	var st Stamp
	if video {
		if len(payload) < 2 {
			return st, ErrNotSynth
		}
		st.Key = payload[1]&0x01 == 0
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
