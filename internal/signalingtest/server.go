// Package signalingtest runs an in-process server (media engine, room
// registry and signaling handler behind an httptest.Server) and joins
// clients to it, for the integration tests of the project.
package signalingtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/signaling"
	"github.com/tessera-rtc/tessera/signaling/client"
)

// Options change the server a test runs.
type Options struct {
	Rooms     rooms.Config     // zero: rooms on demand, 50 participants
	Signaling signaling.Config // Logger is filled in
	SFU       sfu.Config       // Loopback and Logger are filled in
}

// Server is an in-process server.
type Server struct {
	URL      string // ws://.../ws
	HTTP     *httptest.Server
	Engine   *sfu.Engine
	Registry *rooms.Local
	Handler  *signaling.Handler
	t        testing.TB
	names    atomic.Int64
}

// Logger returns the test log: warnings and errors, or everything with
// SFU_TEST_DEBUG set.
func Logger() *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("SFU_TEST_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
}

// NewServer starts a server that the test's cleanup shuts down.
func NewServer(t testing.TB, opts Options) *Server {
	t.Helper()
	log := Logger()
	opts.SFU.Loopback = true
	if opts.SFU.Logger == nil {
		opts.SFU.Logger = log
	}
	if opts.SFU.ConnectTimeout == 0 {
		opts.SFU.ConnectTimeout = 10 * time.Second
	}
	engine, err := sfu.NewEngine(opts.SFU)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Rooms.MaxParticipants == 0 {
		opts.Rooms.MaxParticipants = 50
		opts.Rooms.OnDemand = true
	}
	reg, err := rooms.NewLocal(opts.Rooms, engine, log)
	if err != nil {
		t.Fatal(err)
	}
	if opts.Signaling.Logger == nil {
		opts.Signaling.Logger = log
	}
	h := signaling.NewHandler(opts.Signaling, reg)
	mux := http.NewServeMux()
	mux.Handle("/ws", h)
	mux.Handle("/whip/", h.WHIP())
	mux.Handle("/whep/", h.WHEP())
	hs := httptest.NewServer(mux)
	s := &Server{
		URL: "ws" + strings.TrimPrefix(hs.URL, "http") + "/ws", HTTP: hs,
		Engine: engine, Registry: reg, Handler: h, t: t,
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = reg.Shutdown(ctx)
		_ = h.Close(ctx)
		hs.Close()
		_ = engine.Close()
	})
	return s
}

// Join connects a client to room with a generated name unless opts names
// one; the test's cleanup closes it.
func (s *Server) Join(ctx context.Context, room string, opts ...client.Options) *client.Client {
	s.t.Helper()
	var o client.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	o.Room = room
	if o.Name == "" {
		o.Name = fmt.Sprintf("user%d", s.names.Add(1))
	}
	c, err := client.Dial(ctx, s.URL, o)
	if err != nil {
		s.t.Fatalf("join %s as %s: %v", room, o.Name, err)
	}
	s.t.Cleanup(c.Close)
	return c
}

// Publisher is a client's synthetic track and its server id.
type Publisher struct {
	Synth       *client.Synth
	TrackID     string
	Kind        string // "audio" or "video"
	Transceiver *webrtc.RTPTransceiver
}

var sources atomic.Uint32

// Publish publishes a synthetic track of kind ("audio" or "video", or a
// codec's mime type such as webrtc.MimeTypeH264: see client.NewSynth) and
// sends media on it until ctx ends.
func Publish(ctx context.Context, t testing.TB, c *client.Client, kind string) *Publisher {
	t.Helper()
	src := sources.Add(1)
	codec := kind
	if kind, _, _ = strings.Cut(strings.ToLower(kind), "/"); kind != "audio" {
		kind = "video"
	}
	synth, err := client.NewSynth(codec, fmt.Sprintf("%s-%d", kind, src), c.Self.ID, src, 400)
	if err != nil {
		t.Fatal(err)
	}
	id, tr, err := c.Publish(ctx, synth.Track)
	if err != nil {
		t.Fatalf("publish %s: %v", codec, err)
	}
	synth.UseTransceiver(tr)
	interval := 20 * time.Millisecond
	if kind == "video" {
		interval = 10 * time.Millisecond
	}
	go synth.Run(ctx, interval)
	return &Publisher{Synth: synth, TrackID: id, Kind: kind, Transceiver: tr}
}

// Received is what a Receiver counted on one remote track.
type Received struct {
	Track    *webrtc.TrackRemote
	Source   uint32
	Packets  atomic.Int64
	Corrupt  atomic.Int64 // payloads that failed verification
	Padding  atomic.Int64 // padding-only packets (the server's probes)
	SeqGaps  atomic.Int64 // sequence numbers skipped when first seen (before any retransmission)
	LastSeq  atomic.Uint32
	FirstKey atomic.Bool // the first packet was a keyframe start (video)
	// UnknownPT counts packets whose payload type the client's
	// PeerConnection did not know (pion reads them with ErrCodecNotFound).
	UnknownPT atomic.Int64
	// First describes the first packet, for failure messages.
	First string

	mu          sync.Mutex
	seen        map[uint32]bool // synthetic counters received
	seqs        [1 << 16]bool   // sequence numbers received
	switches    []Switch
	lastAt      time.Time     // when the last packet arrived
	maxGap      time.Duration // the longest time between two packets since ResetGap
	gapAt       time.Time     // when it ended
	gapPackets  int           // packets since ResetGap
	LastCounter atomic.Uint32
	LastSource  atomic.Uint32
}

// Switch is a change of the source a track carries (a simulcast layer switch).
type Switch struct {
	At       time.Time
	From, To uint32 // sources
	MaxSeq   uint16 // highest sequence number before the switch
	FirstSeq uint16 // sequence number of the first packet of the new source
	Key      bool   // that packet starts a keyframe (video)
}

// Switches lists the source changes seen so far.
func (r *Received) Switches() []Switch {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Switch(nil), r.switches...)
}

// SeqHoles counts the sequence numbers in (from, to) never received.
func (r *Received) SeqHoles(from, to uint16) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for s := from + 1; s != to; s++ {
		if !r.seqs[s] {
			n++
		}
	}
	return n
}

// Missing counts the synthetic counters in [from, to] never received:
// the loss a decoder would see, after retransmissions.
func (r *Received) Missing(from, to uint32) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for c := from; c <= to; c++ {
		if !r.seen[c] {
			n++
		}
	}
	return n
}

// ResetGap starts measuring the longest gap anew.
func (r *Received) ResetGap() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.maxGap, r.gapPackets = 0, 0
}

// LongestGap is the longest time the track went without a packet since
// ResetGap (the time since the last packet included), when that gap ended,
// and how many packets arrived meanwhile.
func (r *Received) LongestGap() (gap time.Duration, at time.Time, packets int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if d := time.Since(r.lastAt); d > r.maxGap {
		return d, time.Now(), r.gapPackets
	}
	return r.maxGap, r.gapAt, r.gapPackets
}

// Receive reads tr until it ends, verifying every payload.
func Receive(tr *webrtc.TrackRemote) *Received { return receive(tr, nil) }

// receive is Receive; inspect, when set, sees every packet read (from the
// reading goroutine, before its payload is verified).
func receive(tr *webrtc.TrackRemote, inspect func(*rtp.Packet)) *Received {
	r := &Received{Track: tr, seen: map[uint32]bool{}}
	video := tr.Kind() == webrtc.RTPCodecTypeVideo
	first := make(chan struct{})
	go func() {
		buf := make([]byte, 1500)
		var p rtp.Packet
		var last uint16
		for n := 0; ; n++ {
			k, _, err := tr.Read(buf)
			if err != nil && k > 0 && errors.Is(err, webrtc.ErrCodecNotFound) {
				// A packet all the same: the track goes on.
				r.UnknownPT.Add(1)
			} else if err != nil {
				if n == 0 {
					close(first)
				}
				return
			}
			if p.Unmarshal(buf[:k]) != nil {
				r.Corrupt.Add(1)
				continue
			}
			if inspect != nil {
				inspect(&p)
			}
			if p.Padding && len(p.Payload) == 0 {
				// The server's probe: a sequence number of the stream,
				// carrying no media.
				r.Padding.Add(1)
				r.mu.Lock()
				r.seqs[p.SequenceNumber] = true
				r.mu.Unlock()
				if r.Packets.Load() > 0 && int16(p.SequenceNumber-last) > 0 {
					r.SeqGaps.Add(int64(p.SequenceNumber - last - 1))
					last = p.SequenceNumber
				}
				continue
			}
			st, err := client.ReadStamp(p.Payload, video)
			if err != nil {
				r.Corrupt.Add(1)
				continue
			}
			prevMax, newest := last, true
			if n == 0 {
				r.Source = st.Source
				r.FirstKey.Store(st.Key)
				r.First = fmt.Sprintf("seq %d counter %d key %v pt %d", p.SequenceNumber, st.Counter, st.Key, p.PayloadType)
				last = p.SequenceNumber
				close(first)
			} else if d := p.SequenceNumber - last; int16(d) <= 0 {
				newest = false // late (a retransmission): fills an earlier gap
			} else {
				r.SeqGaps.Add(int64(d - 1))
				last = p.SequenceNumber
			}
			r.LastSeq.Store(uint32(last))
			r.Packets.Add(1)
			r.mu.Lock()
			now := time.Now()
			if !r.lastAt.IsZero() && now.Sub(r.lastAt) > r.maxGap {
				r.maxGap, r.gapAt = now.Sub(r.lastAt), now
			}
			r.lastAt = now
			r.gapPackets++
			r.seen[st.Counter] = true
			r.seqs[p.SequenceNumber] = true
			if prev := r.LastSource.Load(); newest && n > 0 && prev != st.Source {
				r.switches = append(r.switches, Switch{At: time.Now(), From: prev, To: st.Source, MaxSeq: prevMax, FirstSeq: p.SequenceNumber, Key: st.Key})
			}
			if newest {
				r.LastSource.Store(st.Source)
			}
			r.mu.Unlock()
			if st.Counter > r.LastCounter.Load() {
				r.LastCounter.Store(st.Counter)
			}
		}
	}()
	<-first
	return r
}
