package sfu

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

// Helpers of the peer tests: a server Peer joined to a pion client, and
// VP8 sent and checked across it.

func testEngine(t *testing.T) *Engine {
	t.Helper()
	lvl := slog.LevelWarn
	if os.Getenv("SFU_TEST_DEBUG") != "" {
		lvl = slog.LevelDebug
	}
	e, err := NewEngine(Config{
		Loopback: true, ConnectTimeout: 10 * time.Second,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// pair joins a server Peer and a pion client PeerConnection directly, the
// way the signaling layer would: it is the server Peer's Handler.
type pair struct {
	t      *testing.T
	server *Peer
	client *webrtc.PeerConnection

	mu          sync.Mutex
	published   []*UpTrack
	unpublished []*UpTrack
	failed      error
	early       []webrtc.ICECandidateInit // server candidates before the client had an offer
	tracks      chan *webrtc.TrackRemote
	answered    chan struct{}
	// manual holds server offers in offers instead of answering them.
	manual bool
	offers chan string
}

func newPair(t *testing.T, e *Engine) *pair {
	t.Helper()
	return newPairWith(t, e, PeerConfig{})
}

// newPairWith is newPair with the server Peer configured as cfg (its ID
// and Handler are the pair's).
func newPairWith(t *testing.T, e *Engine, cfg PeerConfig) *pair {
	t.Helper()
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithSettingEngine(se))
	client, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	p := &pair{t: t, client: client, tracks: make(chan *webrtc.TrackRemote, 16), answered: make(chan struct{}, 16), offers: make(chan string, 16)}
	cfg.ID, cfg.Handler = NewID("p-"), p
	p.server, err = e.NewPeer(cfg)
	if err != nil {
		t.Fatal(err)
	}
	client.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return
		}
		init := c.ToJSON()
		if err := p.server.AddCandidate(&init); err != nil && !errors.Is(err, ErrClosed) {
			t.Errorf("server rejected candidate: %v", err)
		}
	})
	client.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) { p.tracks <- tr })
	t.Cleanup(func() {
		_ = p.server.Close()
		_ = client.Close()
	})
	return p
}

func (p *pair) SendOffer(sdp string) {
	if p.manual {
		p.offers <- sdp
		return
	}
	go func() {
		if _, err := p.answer(sdp); err != nil {
			p.t.Errorf("answering the server: %v", err)
		}
		p.answered <- struct{}{}
	}()
}

// answer has the client answer the server's offer sdp; it returns the answer.
func (p *pair) answer(sdp string) (string, error) {
	if err := p.client.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		return "", fmt.Errorf("client: %w", err)
	}
	p.mu.Lock()
	early := p.early
	p.early = nil
	p.mu.Unlock()
	for _, c := range early {
		if err := p.client.AddICECandidate(c); err != nil {
			p.t.Errorf("client rejected candidate: %v", err)
		}
	}
	answer, err := p.client.CreateAnswer(nil)
	if err == nil {
		err = p.client.SetLocalDescription(answer)
	}
	if err == nil {
		err = p.server.HandleAnswer(answer.SDP)
	}
	return answer.SDP, err
}

func (p *pair) SendCandidate(c *webrtc.ICECandidateInit) {
	if c == nil || p.client.ConnectionState() == webrtc.PeerConnectionStateClosed {
		return
	}
	p.mu.Lock()
	if p.client.RemoteDescription() == nil {
		// A manual test holds the server's first offer: as a socket
		// client would, keep its candidates until the offer is applied.
		p.early = append(p.early, *c)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	if err := p.client.AddICECandidate(*c); err != nil {
		p.t.Errorf("client rejected candidate: %v", err)
	}
}

func (p *pair) TrackPublished(t *UpTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.published = append(p.published, t)
}

func (p *pair) TrackUnpublished(t *UpTrack) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unpublished = append(p.unpublished, t)
}

func (p *pair) LayersWanted(*UpTrack, []string) {}
func (p *pair) TrackCodecChanged(*UpTrack)      {}
func (p *pair) TrackRefused(*UpTrack)           {}

func (p *pair) PeerFailed(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.failed = err
}

// offer makes the client offer and applies the server's answer.
func (p *pair) offer() error {
	offer, err := p.client.CreateOffer(nil)
	if err != nil {
		return err
	}
	if err := p.client.SetLocalDescription(offer); err != nil {
		return err
	}
	// The answer is applied inside reply, as a socket would deliver it:
	// before any server candidate.
	var applyErr error
	if err := p.server.HandleOffer(offer.SDP, func(a string) {
		applyErr = p.client.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: a})
	}); err != nil {
		return err
	}
	return applyErr
}

// publish adds a sendonly video track in codec mime to the client and
// negotiates it.
func (p *pair) publish(mime string) (*webrtc.TrackLocalStaticRTP, *UpTrack) {
	p.t.Helper()
	c := webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000}
	if mime == webrtc.MimeTypeH264 {
		c.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
	}
	local, err := webrtc.NewTrackLocalStaticRTP(c, "v", "s")
	if err != nil {
		p.t.Fatal(err)
	}
	tr, err := p.client.AddTransceiverFromTrack(local, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		p.t.Fatal(err)
	}
	// The track's codec only, with the feedback pion's default offers.
	pref := c
	pref.RTCPFeedback = []webrtc.RTCPFeedback{{Type: "goog-remb"}, {Type: "ccm", Parameter: "fir"}, {Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "transport-cc"}}
	if err := tr.SetCodecPreferences([]webrtc.RTPCodecParameters{{RTPCodecCapability: pref}}); err != nil {
		p.t.Fatal(err)
	}
	if err := p.offer(); err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.published) == 0 {
		p.t.Fatal("no track published")
	}
	return local, p.published[len(p.published)-1]
}

// subscribe subscribes the (manual) pair to up and returns the server's
// offer, unanswered.
func (p *pair) subscribe(up *UpTrack) string {
	p.t.Helper()
	if _, err := p.server.Subscribe(up); err != nil {
		p.t.Fatal(err)
	}
	select {
	case sdp := <-p.offers:
		return sdp
	case <-time.After(5 * time.Second):
		p.t.Fatal("no server offer")
		return ""
	}
}

// addAudio adds a sendonly Opus track to the client, not negotiated yet.
func (p *pair) addAudio() *webrtc.RTPTransceiver {
	p.t.Helper()
	local, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "a", "s")
	if err != nil {
		p.t.Fatal(err)
	}
	tr, err := p.client.AddTransceiverFromTrack(local, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		p.t.Fatal(err)
	}
	return tr
}

func vp8Packet(seq uint16, key bool) []byte {
	payload := []byte{0x10, 0x01, 0xaa, byte(seq), byte(seq >> 8)}
	if key {
		payload[1] = 0x00
	}
	return payload
}

// sendTagged writes VP8 packets whose payloads carry tag (vp8Packet's
// 0xaa otherwise), a keyframe every 50, from sequence number seq, until
// stop is closed.
func sendTagged(local *webrtc.TrackLocalStaticRTP, tag byte, seq uint16, stop <-chan struct{}) {
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		payload := vp8Packet(seq, seq%50 == 0)
		payload[2] = tag
		_ = local.WriteRTP(&rtp.Packet{
			Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Marker: true},
			Payload: payload,
		})
		seq++
	}
}

// subscribeVP8 subscribes p, a receive-only client that still offers
// first as a browser would, to up, has local send until the test ends,
// and returns the track p receives.
func (p *pair) subscribeVP8(local *webrtc.TrackLocalStaticRTP, up *UpTrack) *webrtc.TrackRemote {
	t := p.t
	t.Helper()
	if _, err := p.client.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	if err := p.offer(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.server.Subscribe(up); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	t.Cleanup(func() { close(stop) })
	go sendTagged(local, 0xaa, 1000, stop)
	select {
	case tr := <-p.tracks:
		return tr
	case <-time.After(10 * time.Second):
		t.Fatal("subscriber got no track")
		return nil
	}
}

// readVP8 reads n packets of tr: the first a keyframe, then in order with
// no gap, each payload the one sendTagged sent with vp8Packet's tag.
func readVP8(t *testing.T, tr *webrtc.TrackRemote, n int) {
	t.Helper()
	var last uint16
	for i := range n {
		p, _, err := tr.ReadRTP()
		if err != nil {
			t.Fatal(err)
		}
		in := uint16(p.Payload[3]) | uint16(p.Payload[4])<<8
		if i == 0 {
			if !vp8Keyframe(p.Payload) {
				t.Fatalf("first packet is not a keyframe: % x", p.Payload)
			}
		} else if p.SequenceNumber != last+1 {
			t.Fatalf("sequence gap: %d after %d", p.SequenceNumber, last)
		}
		if want := vp8Packet(in, in%50 == 0); !bytes.Equal(p.Payload, want) {
			t.Fatalf("payload % x, want % x", p.Payload, want)
		}
		last = p.SequenceNumber
	}
}
