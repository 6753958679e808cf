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
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

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
