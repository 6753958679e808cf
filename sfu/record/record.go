// Package record writes what a participant publishes to one file per
// participant: WebM for Opus with VP8, VP9 or AV1, Matroska for H264. Each
// track's packets are put back in order and into frames by pion's sample
// builder; a file starts on a keyframe of every video track, a video track
// that loses a frame waits for the next keyframe (asking the publisher for
// one), and a file stops at its size or duration limit, or when a write
// fails (a full disk), saying why.
//
// The container is written by github.com/at-wat/ebml-go, the muxer pion's
// own examples use: Matroska's EBML is not something to write by hand.
package record

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/at-wat/ebml-go/mkvcore"
	"github.com/at-wat/ebml-go/webm"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/samplebuilder"
	"github.com/tessera-rtc/tessera/sfu"
)

// Config configures recording.
type Config struct {
	// Dir is where recordings go, a directory per room.
	Dir string
	// MaxBytes ends a file at this size (0: 1 GiB).
	MaxBytes int64
	// MaxDuration ends a file at this length (0: 4 hours).
	MaxDuration time.Duration
	Logger      *slog.Logger
	// Create makes a new file at path (nil: a new file, never an existing
	// one). Tests give a device that is always full (/dev/full).
	Create func(path string) (*os.File, error)
}

// Errors that end a recording early.
var (
	ErrLimit    = errors.New("recording limit reached")
	ErrDiskFull = errors.New("disk full")
	ErrCodec    = errors.New("codec not recorded")
)

// Recorder starts recordings and owns their goroutines.
type Recorder struct {
	cfg Config
	log *slog.Logger
	wg  sync.WaitGroup

	mu       sync.Mutex
	sessions map[*Session]struct{} // guarded by mu
	paths    map[string]bool       // the sessions' paths, guarded by mu
	done     []Info                // files finished, newest last (at most keepDone)
}

const keepDone = 100

// lateLimit is how long a recording waits for a missing packet, in media
// time: a retransmission comes within a round trip; a packet that does not
// would hold the file back by as many packets as the sample builder keeps.
const lateLimit = 500 * time.Millisecond

// cuesReserved is the space kept in each file for its index: a cue per
// cluster (one every 32 s at least, about 20 bytes each).
const cuesReserved = 64 << 10

// New creates a Recorder writing under cfg.Dir.
func New(cfg Config) *Recorder {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 30
	}
	if cfg.MaxDuration <= 0 {
		cfg.MaxDuration = 4 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Create == nil {
		cfg.Create = func(path string) (*os.File, error) {
			return os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o640)
		}
	}
	return &Recorder{cfg: cfg, log: cfg.Logger, sessions: map[*Session]struct{}{}, paths: map[string]bool{}}
}

// Info describes a recording.
type Info struct {
	Room        string    `json:"room"`
	Participant string    `json:"participant"`
	Path        string    `json:"path"`
	Started     time.Time `json:"started"`
	Bytes       int64     `json:"bytes"`
	DurationMs  int64     `json:"durationMs"`
	Active      bool      `json:"active"`
	// Dropped counts packets the file's writer could not take in time.
	Dropped int64 `json:"dropped,omitempty"`
	// Error says why the file ended early; empty for a file that ended
	// because its participant or the recording stopped.
	Error string `json:"error,omitempty"`
}

// Recordings lists the files being written and the last ones finished.
func (r *Recorder) Recordings() []Info {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]Info(nil), r.done...)
	for s := range r.sessions {
		out = append(out, s.Info())
	}
	return out
}

// Close stops every recording and waits for their files to be finished.
func (r *Recorder) Close() {
	r.mu.Lock()
	for s := range r.sessions {
		s.Stop()
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// Session records one participant's tracks into one file.
type Session struct {
	r       *Recorder
	info    Info // fixed fields
	log     *slog.Logger
	tracks  []*trackRec
	in      chan inPacket
	quit    chan struct{}
	stopped sync.Once
	done    chan struct{}

	bytes    atomic.Int64
	duration atomic.Int64 // ms
	active   atomic.Bool
	errMu    sync.Mutex
	err      error
}

type inPacket struct {
	track int
	p     *rtp.Packet
	at    time.Time
}

// Source is a track to record: an *sfu.UpTrack, which sends its packets
// to the sfu.Recorder it is given.
type Source interface {
	ID() string
	Kind() webrtc.RTPCodecType
	Codec() webrtc.RTPCodecParameters
	Record(sfu.Recorder)
	RequestKeyframe()
}

// trackRec is one track of a session: the sfu.Recorder the track's reader
// calls, and the state the session's goroutine keeps for it.
type trackRec struct {
	s     *Session
	i     int
	up    Source
	codec string // lower-case MIME type
	clock uint32
	video bool

	dropped atomic.Int64 // packets the session could not take in time

	// Owned by the session's goroutine:
	sb       *samplebuilder.SampleBuilder
	ready    bool   // a keyframe arrived: the track can start
	waitKey  bool   // a frame was lost: skip to the next keyframe
	width    uint64 // from the first keyframe
	height   uint64
	private  []byte // CodecPrivate (H264's avcC, AV1's av1C)
	lastTS   uint32
	extTS    int64 // unwrapped RTP time since the track's first sample
	started  bool
	offsetMs int64 // when the track's first sample came, since the file's start
	lastMs   int64
	w        webm.BlockWriteCloser
}

// RecordRTP implements sfu.Recorder: the packet is copied for the
// session's goroutine, or dropped if it is behind.
func (t *trackRec) RecordRTP(p *rtp.Packet) {
	select {
	case t.s.in <- inPacket{track: t.i, p: p.Clone(), at: time.Now()}:
	default:
		t.dropped.Add(1)
	}
}

// Start records the tracks participant (of room, named name) publishes, in
// a new file. Tracks in a codec that cannot be recorded are left out (and
// logged); with none left it returns ErrCodec.
func (r *Recorder) Start(room, participant, name string, tracks []*sfu.UpTrack) (*Session, error) {
	sources := make([]Source, len(tracks))
	for i, up := range tracks {
		sources[i] = up
	}
	return r.start(room, participant, name, sources)
}

func (r *Recorder) start(room, participant, name string, tracks []Source) (*Session, error) {
	s := &Session{
		r: r, in: make(chan inPacket, 1024), quit: make(chan struct{}), done: make(chan struct{}),
		log: r.log.With("room", room, "participant", participant),
	}
	h264 := false
	// A frame waits for a missing packet (its retransmission) at most
	// lateLimit of media time; then the frame is given up, and the track
	// goes on from the next keyframe.
	giveUp := samplebuilder.WithMaxTimeDelay(lateLimit)
	for _, up := range tracks {
		c := up.Codec()
		mime := strings.ToLower(c.MimeType)
		t := &trackRec{s: s, i: len(s.tracks), up: up, codec: mime, clock: c.ClockRate, video: up.Kind() == webrtc.RTPCodecTypeVideo}
		switch mime {
		case "audio/opus":
			t.sb = samplebuilder.New(64, &codecs.OpusPacket{}, c.ClockRate, giveUp)
			t.ready = true
		case "video/vp8":
			t.sb = samplebuilder.New(256, &codecs.VP8Packet{}, c.ClockRate, giveUp)
		case "video/vp9":
			t.sb = samplebuilder.New(256, &codecs.VP9Packet{}, c.ClockRate, giveUp)
		case "video/h264":
			t.sb = samplebuilder.New(256, &codecs.H264Packet{IsAVC: true}, c.ClockRate, giveUp)
			h264 = true
		case "video/av1":
			t.sb = samplebuilder.New(256, &codecs.AV1Depacketizer{}, c.ClockRate, giveUp)
		default:
			s.log.Warn("track not recorded: its codec is not", "track", up.ID(), "codec", c.MimeType)
			continue
		}
		s.tracks = append(s.tracks, t)
	}
	if len(s.tracks) == 0 {
		return nil, fmt.Errorf("%w: no track of %s in Opus, VP8, VP9, AV1 or H264", ErrCodec, participant)
	}
	ext := ".webm"
	if h264 {
		ext = ".mkv" // H264 is Matroska's, not WebM's
	}
	started := time.Now()
	s.info = Info{Room: room, Participant: participant, Started: started}
	base := filepath.Join(r.cfg.Dir, safeName(room), started.UTC().Format("20060102-150405")+"-"+safeName(name)+"-"+safeName(participant))
	r.mu.Lock()
	// A participant whose tracks change within a second gets a second
	// file that second: numbered, never written over.
	s.info.Path = base + ext
	for n := 2; r.paths[s.info.Path] || exists(s.info.Path); n++ {
		s.info.Path = fmt.Sprintf("%s-%d%s", base, n, ext)
	}
	r.paths[s.info.Path] = true
	r.sessions[s] = struct{}{}
	r.mu.Unlock()
	r.wg.Add(1)
	go s.run(h264)
	for _, t := range s.tracks {
		t.up.Record(t)
	}
	s.log.Info("recording started", "file", s.info.Path, "tracks", len(s.tracks))
	return s, nil
}

// Stop ends the recording; the file is finished in the background (Wait).
func (s *Session) Stop() {
	s.stopped.Do(func() {
		for _, t := range s.tracks {
			t.up.Record(nil)
		}
		close(s.quit)
	})
}

// Wait waits for the file to be finished after Stop, or after the session
// ended by itself.
func (s *Session) Wait() { <-s.done }

// Err is why the recording ended early; nil while it runs or when it was
// stopped.
func (s *Session) Err() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

// Info describes the recording.
func (s *Session) Info() Info {
	i := s.info
	i.Bytes, i.DurationMs, i.Active = s.bytes.Load(), s.duration.Load(), s.active.Load()
	for _, t := range s.tracks {
		i.Dropped += t.dropped.Load()
	}
	if err := s.Err(); err != nil {
		i.Error = err.Error()
	}
	return i
}

// Tracks are the ids of the tracks recorded.
func (s *Session) Tracks() []string {
	out := make([]string, len(s.tracks))
	for i, t := range s.tracks {
		out[i] = t.up.ID()
	}
	return out
}

func (s *Session) fail(err error) {
	s.errMu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.errMu.Unlock()
}

// run owns the file and every track's state.
func (s *Session) run(h264 bool) {
	var (
		f       *countingFile
		start   time.Time
		writers []webm.BlockWriteCloser
	)
	defer func() {
		for _, t := range s.tracks {
			t.up.Record(nil)
		}
		if writers != nil {
			// Closing the writers writes the duration and closes the file.
			for _, w := range writers {
				if err := w.Close(); err != nil {
					s.fail(classify(err))
				}
			}
			if err := f.failed(); err != nil {
				s.fail(err)
			}
		}
		s.active.Store(false)
		info := s.Info()
		switch {
		case info.Error != "":
			s.log.Error("recording stopped", "file", info.Path, "err", info.Error, "bytes", info.Bytes, "duration_ms", info.DurationMs)
		case f == nil:
			s.log.Info("recording ended before any media", "file", s.info.Path)
		default:
			s.log.Info("recording finished", "file", info.Path, "bytes", info.Bytes, "duration_ms", info.DurationMs)
		}
		s.r.mu.Lock()
		delete(s.r.sessions, s)
		delete(s.r.paths, s.info.Path)
		if f != nil || info.Error != "" {
			s.r.done = append(s.r.done, info)
			if len(s.r.done) > keepDone {
				s.r.done = s.r.done[len(s.r.done)-keepDone:]
			}
		}
		s.r.mu.Unlock()
		close(s.done)
		s.r.wg.Done()
	}()

	open := func(at time.Time) error {
		if err := os.MkdirAll(filepath.Dir(s.info.Path), 0o750); err != nil {
			return classify(err)
		}
		file, err := s.r.cfg.Create(s.info.Path)
		if err != nil {
			return classify(err)
		}
		f = &countingFile{File: file, n: &s.bytes}
		entries := make([]webm.TrackEntry, len(s.tracks))
		for i, t := range s.tracks {
			entries[i] = t.entry(uint64(i + 1))
		}
		opts := []mkvcore.BlockWriterOption{
			mkvcore.WithSegmentInfo(&webm.Info{TimecodeScale: 1000000, MuxingApp: "tessera", WritingApp: "tessera"}),
			// A seek head and cues (an index of the clusters, in space kept
			// for them) make the file seekable, and let the muxer write the
			// duration into the header when the file ends.
			mkvcore.WithSeekHead(true),
			mkvcore.WithCues(cuesReserved),
		}
		if h264 {
			hdr := *webm.DefaultEBMLHeader
			hdr.DocType = "matroska"
			opts = append(opts, mkvcore.WithEBMLHeader(&hdr))
		}
		writers, err = webm.NewSimpleBlockWriter(f, entries, opts...)
		if err == nil {
			err = f.failed()
		}
		if err != nil {
			for _, w := range writers {
				_ = w.Close()
			}
			_ = file.Close()
			writers = nil
			return classify(err)
		}
		for i, t := range s.tracks {
			t.w = writers[i]
		}
		start = at
		s.active.Store(true)
		return nil
	}

	keyAsked := time.Time{}
	// emit writes every sample t's sample builder completed; false: the
	// session ended.
	emit := func(t *trackRec, at time.Time) bool {
		for sample := t.sb.Pop(); sample != nil; sample = t.sb.Pop() {
			key := !t.video || isKeyframe(t.codec, sample.Data)
			if t.video && (sample.PrevDroppedPackets > 0 || t.waitKey) && !key {
				// A frame is missing: what follows would not decode.
				t.waitKey = true
				if time.Since(keyAsked) > time.Second {
					keyAsked = time.Now()
					t.up.RequestKeyframe()
				}
				continue
			}
			t.waitKey = false
			if !t.ready {
				if !key || !t.describe(sample.Data) {
					continue
				}
				t.ready = true
			}
			if writers == nil {
				if !s.allReady() {
					continue
				}
				if err := open(at); err != nil {
					s.fail(err)
					return false
				}
			}
			ms := t.timestamp(sample.PacketTimestamp, at, start)
			if ms < t.lastMs {
				continue // the container wants each track's frames in order
			}
			t.lastMs = ms
			data := sample.Data
			if t.codec == "video/av1" {
				data = av1Block(data)
			}
			if _, err := t.w.Write(key, ms, data); err != nil {
				s.fail(classify(err))
				return false
			}
			if err := f.failed(); err != nil {
				s.fail(err)
				return false
			}
			if ms > s.duration.Load() {
				s.duration.Store(ms)
			}
			switch {
			case s.bytes.Load() >= s.r.cfg.MaxBytes:
				s.fail(fmt.Errorf("%w: %d bytes", ErrLimit, s.r.cfg.MaxBytes))
				return false
			case time.Duration(ms)*time.Millisecond >= s.r.cfg.MaxDuration:
				s.fail(fmt.Errorf("%w: %s", ErrLimit, s.r.cfg.MaxDuration))
				return false
			}
		}
		return true
	}
	take := func(in inPacket) bool {
		t := s.tracks[in.track]
		t.sb.Push(in.p)
		return emit(t, in.at)
	}
	for {
		select {
		case <-s.quit:
			// What arrived, and what the sample builders still hold (the
			// frames waiting for a late packet), goes in the file too.
		drain:
			for {
				select {
				case in := <-s.in:
					if !take(in) {
						return
					}
				default:
					break drain
				}
			}
			for _, t := range s.tracks {
				t.sb.Flush()
				if !emit(t, time.Now()) {
					return
				}
			}
			return
		case in := <-s.in:
			if !take(in) {
				return
			}
		}
	}
}

// allReady reports whether every video track has had its keyframe (audio
// is ready at once).
func (s *Session) allReady() bool {
	for _, t := range s.tracks {
		if !t.ready {
			return false
		}
	}
	return true
}

// timestamp is the sample's time in the file, in ms: the track's offset
// (when its first sample came, after the file's start) plus its RTP time
// since then.
func (t *trackRec) timestamp(ts uint32, at, start time.Time) int64 {
	if !t.started {
		t.started = true
		t.lastTS = ts
		t.offsetMs = max(0, at.Sub(start).Milliseconds())
		t.lastMs = t.offsetMs
	}
	t.extTS += int64(int32(ts - t.lastTS)) // wraps every 13 hours at 90 kHz
	t.lastTS = ts
	return t.offsetMs + t.extTS*1000/int64(t.clock)
}

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

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// safeName keeps letters, digits, '-' and '_' of a name for a file name,
// at most 48 of them; anything else (a path separator, a dot) becomes '_'.
func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 48 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

// classify wraps a write error as ErrDiskFull when the disk is full.
func classify(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: %v", ErrDiskFull, err)
	}
	return err
}

// countingFile counts what is written to the file (the muxer also writes
// back, with WriteAt, to finish the header), and keeps the first write
// error for the session to see. The muxer writes on a goroutine of its
// own and, after some errors, stops taking frames while a Write still
// waits to hand it one: it is told every write succeeded, and the session
// stops writing at the first failure instead.
type countingFile struct {
	*os.File
	n   *atomic.Int64
	err atomic.Pointer[error]
}

func (c *countingFile) Write(p []byte) (int, error) {
	if c.err.Load() != nil {
		return len(p), nil
	}
	n, err := c.File.Write(p)
	c.n.Add(int64(n))
	if err != nil {
		c.fail(err)
	}
	return len(p), nil
}

func (c *countingFile) WriteAt(p []byte, off int64) (int, error) {
	if c.err.Load() != nil {
		return len(p), nil
	}
	if _, err := c.File.WriteAt(p, off); err != nil {
		c.fail(err)
	}
	return len(p), nil
}

func (c *countingFile) fail(err error) {
	err = classify(err)
	c.err.CompareAndSwap(nil, &err)
}

// failed is the first write error, or nil.
func (c *countingFile) failed() error {
	if e := c.err.Load(); e != nil {
		return *e
	}
	return nil
}

var _ io.WriterAt = (*countingFile)(nil)
