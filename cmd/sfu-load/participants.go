package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/signaling/client"
)

const (
	audioPPS   = 50  // an Opus frame every 20 ms
	audioBytes = 120 // about 48 kbit/s
	sendTick   = 5 * time.Millisecond
)

// simulcastLayers are the layers --simulcast publishes, lowest first, with
// their share of --video-bitrate.
var simulcastLayers = []struct {
	rid   string
	share float64
}{{"q", 0.25}, {"h", 0.5}, {"f", 1}}

// streamPlan is what one publisher sends: its tracks and their rates.
type streamPlan struct {
	videoPPS float64 // full-bitrate video, packets per second (0: no video)
	audio    bool
}

func planOf(cfg config) streamPlan {
	p := streamPlan{audio: cfg.Audio}
	if cfg.VideoBitrate > 0 {
		p.videoPPS = float64(cfg.VideoBitrate) / 8 / float64(cfg.PacketSize)
	}
	return p
}

// tracks is the number of tracks one publisher publishes.
func (p streamPlan) tracks() int {
	n := 0
	if p.videoPPS > 0 {
		n++
	}
	if p.audio {
		n++
	}
	return n
}

// forwardedPPS is the packet rate a subscriber should receive from one
// publisher. With simulcast it counts the full layer, the best one; the
// server may forward a lower one.
func (p streamPlan) forwardedPPS() float64 {
	if p.audio {
		return p.videoPPS + audioPPS
	}
	return p.videoPPS
}

// newAPI returns the API of every participant of the run: client.DefaultAPI
// with pion's own logging off (it reports, among others, the RTCP writes
// cut short when participants close at the end). PION_LOG_* environment
// variables turn it back on.
func newAPI() (*webrtc.API, error) { return defaultAPI(nil) }

// defaultAPI is pion's default codecs and interceptors, loopback
// candidates over UDP4 (only the addresses ipFilter accepts, when set),
// and pion's logs off.
func defaultAPI(ipFilter func(net.IP) bool) (*webrtc.API, error) {
	lf := pionLogs()
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptorsWithOptions(m, reg, webrtc.WithInterceptorLoggerFactory(lf)); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	se.LoggerFactory = lf
	se.SetIncludeLoopbackCandidate(true)
	if ipFilter != nil {
		se.SetIPFilter(ipFilter)
	}
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	return webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se)), nil
}

// pionLogs is pion's default logger factory, off unless a PION_LOG_*
// environment variable is set.
func pionLogs() *logging.DefaultLoggerFactory {
	lf := logging.NewDefaultLoggerFactory()
	if !slices.ContainsFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "PION_LOG_") }) {
		lf.DefaultLogLevel = logging.LogLevelDisabled
	}
	return lf
}

// startPublisher joins as publisher i without subscribing to anything,
// publishes the planned tracks and starts sending.
func (l *load) startPublisher(ctx context.Context, i int) error {
	noSub := false
	c, err := client.Dial(ctx, l.cfg.URL, client.Options{
		Room: l.cfg.Room, Name: fmt.Sprintf("load-pub-%d", i), AutoSubscribe: &noSub, API: l.api,
		// A PLI or FIR gets a keyframe at once, as from an encoder: new
		// subscribers start without waiting for the next periodic one.
		OnRTCP: func(s *webrtc.RTPSender, pkts []rtcp.Packet) {
			if synth, ok := l.keyframers.Load(s); ok && client.WantsKeyframe(pkts) {
				synth.(*client.Synth).RequestKeyframe()
			}
		},
	})
	if err != nil {
		return err
	}
	l.addClient(c)
	l.pubsJoined.Add(1)
	l.mu.Lock()
	l.pubIDs[c.Self.ID] = true
	l.mu.Unlock()

	var streams []*txStream
	source := uint32(i*8 + 1) // distinct per stream, up to 8 streams a publisher
	plan := l.plan
	if plan.videoPPS > 0 {
		var vs []*txStream
		if l.cfg.Simulcast {
			vs, err = l.publishSimulcast(ctx, c, source, plan.videoPPS)
		} else {
			vs, err = l.publishOne(ctx, c, "video", source, l.cfg.PacketSize, plan.videoPPS)
		}
		if err != nil {
			return fmt.Errorf("publish video: %w", err)
		}
		streams = append(streams, vs...)
		source += uint32(len(vs))
	}
	if plan.audio {
		as, err := l.publishOne(ctx, c, "audio", source, audioBytes, audioPPS)
		if err != nil {
			return fmt.Errorf("publish audio: %w", err)
		}
		streams = append(streams, as...)
	}
	for _, s := range streams {
		l.rec.addTx(s)
	}
	l.wg.Go(func() { send(l.ctx, streams) })
	return nil
}

// publishOne publishes one synthetic track.
func (l *load) publishOne(ctx context.Context, c *client.Client, kind string, source uint32, size int, pps float64) ([]*txStream, error) {
	synth, err := client.NewSynth(kind, kind, c.Self.ID, source, size)
	if err != nil {
		return nil, err
	}
	_, tr, err := c.Publish(ctx, synth.Track)
	if err != nil {
		return nil, err
	}
	l.keyframers.Store(tr.Sender(), synth) // the client reads the sender's RTCP
	return []*txStream{{synth: synth, pps: pps}}, nil
}

// publishSimulcast publishes one video track in three layers on one
// transceiver, as a browser does with sendEncodings: each layer is its own
// RTP stream, told apart by the rid header extension (and the mid, which
// the server needs before it knows the streams' SSRCs).
func (l *load) publishSimulcast(ctx context.Context, c *client.Client, source uint32, fullPPS float64) ([]*txStream, error) {
	streams := make([]*txStream, len(simulcastLayers))
	tracks := make([]*webrtc.TrackLocalStaticRTP, len(simulcastLayers))
	for k, layer := range simulcastLayers {
		synth, err := client.NewSynth("video", "video", c.Self.ID, source+uint32(k), l.cfg.PacketSize)
		if err != nil {
			return nil, err
		}
		tracks[k], err = webrtc.NewTrackLocalStaticRTP(synth.Track.Codec(), "video", c.Self.ID, webrtc.WithRTPStreamID(layer.rid))
		if err != nil {
			return nil, err
		}
		synth.Track = tracks[k]
		streams[k] = &txStream{synth: synth, pps: fullPPS * layer.share, rid: []byte(layer.rid)}
	}

	mark := c.Mark()
	tr, err := c.PC().AddTransceiverFromTrack(tracks[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return nil, err
	}
	for _, t := range tracks[1:] {
		if err := tr.Sender().AddEncoding(t); err != nil {
			return nil, err
		}
	}
	// Not numeric, so that it cannot clash with the mids the server assigns.
	if err := tr.SetMid("sim"); err != nil {
		return nil, err
	}
	if err := c.Renegotiate(); err != nil {
		return nil, err
	}
	if _, err := c.WaitFor(ctx, mark, func(e client.Event) bool {
		return e.Type == "track-published" && e.Track.Mid == tr.Mid()
	}); err != nil {
		return nil, fmt.Errorf("waiting for track-published: %w", err)
	}

	var midID, ridID uint8
	for _, h := range tr.Sender().GetParameters().HeaderExtensions {
		switch h.URI {
		case sdp.SDESMidURI:
			midID = uint8(h.ID)
		case sdp.SDESRTPStreamIDURI:
			ridID = uint8(h.ID)
		}
	}
	if midID == 0 || ridID == 0 {
		return nil, fmt.Errorf("the answer negotiated no mid or rid header extension (mid %d, rid %d)", midID, ridID)
	}
	for _, s := range streams {
		s.midID, s.ridID, s.mid = midID, ridID, []byte(tr.Mid())
		l.drainRTCP(tr.Sender(), string(s.rid), s.synth)
	}
	return streams, nil
}

// drainRTCP reads the RTCP of a simulcast layer's sender so that pion's
// interceptors see it (NACKs are answered from the sender's history), and
// answers a PLI or FIR with a keyframe.
func (l *load) drainRTCP(s *webrtc.RTPSender, rid string, synth *client.Synth) {
	l.wg.Go(func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := s.ReadSimulcast(buf, rid)
			if err != nil {
				return
			}
			if pkts, err := rtcp.Unmarshal(buf[:n]); err == nil && client.WantsKeyframe(pkts) {
				synth.RequestKeyframe()
			}
		}
	})
}

// send paces streams until ctx ends: every tick each stream sends the
// packets its rate owes since the start, so rates hold on average whatever
// the timer's precision. A stream more than maxLag behind (the process was
// starved) skips the packets it owes instead of bursting them, and counts
// a slip.
func send(ctx context.Context, streams []*txStream) {
	const maxLag = 200 * time.Millisecond
	start := time.Now()
	owed := make([]uint64, len(streams)) // packets scheduled (sent or skipped)
	t := time.NewTicker(sendTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		el := time.Since(start).Seconds()
		for k, s := range streams {
			due := uint64(el*s.pps) - owed[k]
			if limit := uint64(s.pps*maxLag.Seconds()) + 1; due > limit {
				s.slips.Add(1)
				owed[k] += due - limit
				due = limit
			}
			for ; due > 0; due-- {
				owed[k]++
				if err := s.write(); err != nil {
					s.errors.Add(1)
					continue
				}
				s.sent.Add(1)
			}
		}
	}
}

// write sends the stream's next packet, stamped now.
func (s *txStream) write() error {
	p := s.synth.Next(time.Now())
	if s.ridID != 0 {
		if err := setExtensions(&p.Header, s.midID, s.mid, s.ridID, s.rid); err != nil {
			return err
		}
	}
	return s.synth.Track.WriteRTP(p)
}

func setExtensions(h *rtp.Header, midID uint8, mid []byte, ridID uint8, rid []byte) error {
	if err := h.SetExtension(midID, mid); err != nil {
		return err
	}
	return h.SetExtension(ridID, rid)
}

// startSubscriber joins as subscriber i (subscribed to every track, the
// server's default) and reads every track it receives. It returns once a
// packet arrived on each of the want tracks, or with an error.
func (l *load) startSubscriber(ctx context.Context, i, want int) error {
	began := time.Now()
	var (
		tracks <-chan *webrtc.TrackRemote
		done   <-chan struct{}
	)
	if l.cfg.WHEP {
		v, err := l.startViewer(ctx, i)
		if err != nil {
			return err
		}
		tracks, done = v.Tracks, l.ctx.Done()
	} else {
		c, err := client.Dial(ctx, l.cfg.URL, client.Options{Room: l.cfg.Room, Name: fmt.Sprintf("load-sub-%d", i), API: l.api})
		if err != nil {
			return err
		}
		l.addClient(c)
		tracks, done = c.Tracks(), c.Done()
	}
	l.subsJoined.Add(1)
	connected := make(chan struct{})
	l.wg.Go(func() {
		seen := 0
		for {
			select {
			case tr := <-tracks:
				// pion reports a track when its first packet arrived. The
				// stream id is the publisher (a viewer's own id for a WHEP
				// viewer, which receives only what it plays): tracks of
				// participants other than the tool's are left alone.
				l.mu.Lock()
				ours := l.pubIDs[tr.StreamID()] || l.cfg.WHEP
				l.mu.Unlock()
				if !ours {
					continue
				}
				rx := &rxStream{sub: i, video: tr.Kind() == webrtc.RTPCodecTypeVideo}
				l.rec.addRx(rx)
				l.wg.Go(func() { receive(tr, rx) })
				if seen++; seen == want {
					close(connected)
				}
			case <-done:
				return
			case <-l.ctx.Done():
				return
			}
		}
	})
	select {
	case <-connected:
		l.subsConnected.Add(1)
		l.addJoinTime(time.Since(began))
		return nil
	case <-done:
		return fmt.Errorf("closed before every track arrived")
	case <-ctx.Done():
		return fmt.Errorf("not every track arrived: %w", ctx.Err())
	}
}

// startViewer starts subscriber i as a WHEP viewer of the room's speaker
// (the only publisher); its tracks arrive on the session's Tracks.
func (l *load) startViewer(ctx context.Context, i int) (*client.WHIP, error) {
	endpoint, err := client.WHEPEndpoint(l.cfg.URL, l.cfg.Room, "")
	if err != nil {
		return nil, err
	}
	v, err := client.WatchWHEP(ctx, endpoint+"?name="+fmt.Sprintf("load-viewer-%d", i), client.WHIPOptions{API: l.api})
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.viewers = append(l.viewers, v)
	l.mu.Unlock()
	return v, nil
}
