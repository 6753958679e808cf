package sfu

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
)

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
	p.server, err = e.NewPeer(PeerConfig{ID: NewID("p-"), Handler: p})
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

// publish adds a sendonly VP8 track to the client and negotiates it.
func (p *pair) publish(mime string) (*webrtc.TrackLocalStaticRTP, *UpTrack) {
	p.t.Helper()
	local, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: mime, ClockRate: 90000}, "v", "s")
	if err != nil {
		p.t.Fatal(err)
	}
	if _, err := p.client.AddTransceiverFromTrack(local, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
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

// sendUntil writes VP8 packets to local until stop is closed.
func sendUntil(t *testing.T, local *webrtc.TrackLocalStaticRTP, stop <-chan struct{}) {
	seq := uint16(1000)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		p := rtp.Packet{
			Header:  rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(seq) * 3000, Marker: true},
			Payload: vp8Packet(seq, seq%50 == 0),
		}
		_ = local.WriteRTP(&p)
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
	go sendUntil(t, local, stop)
	select {
	case tr := <-p.tracks:
		return tr
	case <-time.After(10 * time.Second):
		t.Fatal("subscriber got no track")
		return nil
	}
}

// readVP8 reads n packets of tr: the first a keyframe, then in order with
// no gap, each payload the one sendUntil sent.
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

func TestForwardVP8BetweenTwoPeers(t *testing.T) {
	e := testEngine(t)
	pub := newPair(t, e)
	local, up := pub.publish(webrtc.MimeTypeVP8)
	if up.Kind() != webrtc.RTPCodecTypeVideo || up.PublisherID() != pub.server.ID() {
		t.Fatalf("up track = %+v", up)
	}

	sub := newPair(t, e)
	tr := sub.subscribeVP8(local, up)
	if tr.StreamID() != pub.server.ID() || tr.ID() != up.ID() {
		t.Errorf("msid = %s %s, want %s %s", tr.StreamID(), tr.ID(), pub.server.ID(), up.ID())
	}
	readVP8(t, tr, 100)
	if d, ok := sub.server.DownTrack(up.ID()); !ok || d.Stats().Packets < 100 {
		t.Errorf("subscription counted %+v packets, want at least the 100 read", d.Stats())
	}
	ps := pub.server.Stats()
	if ps.Connection != "connected" || ps.ICE != "connected" || ps.DTLS != "connected" || ps.LocalCandidate == "" || ps.RemoteCandidate == "" {
		t.Errorf("publisher stats: %+v", ps)
	}
	if len(ps.Published) != 1 || ps.Published[0].ID != up.ID() || ps.Published[0].Layers[0].Packets < 100 || ps.Published[0].Subscribers != 1 {
		t.Errorf("published: %+v", ps.Published)
	}
	if len(ps.Negotiation) == 0 {
		t.Error("no negotiation history")
	}
	ss := sub.server.Stats()
	if len(ss.Subscribed) != 1 || ss.Subscribed[0].Track != up.ID() || ss.Subscribed[0].Publisher != pub.server.ID() || ss.Subscribed[0].Packets < 100 {
		t.Errorf("subscribed: %+v", ss.Subscribed)
	}
	if raw := sub.server.RawStats(); len(raw) == 0 {
		t.Error("no pion stats")
	}
	tot := e.Totals()
	if tot.Peers != 2 || tot.Tracks != 1 || tot.Subscriptions != 1 || tot.ForwardedPackets < 100 || tot.ReceivedPackets < tot.ForwardedPackets {
		t.Errorf("totals: %+v", tot)
	}
	_ = sub.server.Close()
	after := e.Totals()
	if after.Subscriptions != 0 || after.ForwardedPackets < tot.ForwardedPackets {
		t.Errorf("totals after the subscriber left: %+v (before %+v): counters must not shrink", after, tot)
	}
}

// TestOfferCollision plays both sides of a collision by hand: the server
// ignores a client offer made while its own is outstanding, and accepts it
// once the client has answered.
func TestOfferCollision(t *testing.T) {
	e := testEngine(t)
	pub := newPair(t, e)
	_, up := pub.publish(webrtc.MimeTypeVP8)

	sub := newPair(t, e)
	sub.manual = true
	if _, err := sub.client.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	if err := sub.offer(); err != nil {
		t.Fatal(err)
	}
	serverOffer := sub.subscribe(up)

	// The client offers too, before answering: the server must ignore it.
	tr := sub.addAudio()
	if err := tr.SetMid("client-a"); err != nil {
		t.Fatal(err)
	}
	clientOffer, err := sub.client.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	replied := false
	err = sub.server.HandleOffer(clientOffer.SDP, func(string) { replied = true })
	if !errors.Is(err, ErrOfferCollision) || replied {
		t.Fatalf("colliding offer: err=%v replied=%v, want ErrOfferCollision and no answer", err, replied)
	}
	if len(sub.published) != 0 {
		t.Fatal("a colliding offer published a track")
	}

	// The client answers the server's offer, then offers again: accepted.
	answer, err := sub.answer(serverOffer)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.offer(); err != nil {
		t.Fatalf("offer after the collision: %v", err)
	}
	sub.mu.Lock()
	n := len(sub.published)
	sub.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d tracks published after re-offering, want 1", n)
	}

	// A second answer, with no offer outstanding, is refused.
	if err := sub.server.HandleAnswer(answer); !errors.Is(err, ErrNoPendingOffer) {
		t.Fatalf("stray answer: %v, want ErrNoPendingOffer", err)
	}
}

// TestCoalescedOffers: changes made while an offer is outstanding go out
// together in the next offer, never in a second concurrent one.
func TestCoalescedOffers(t *testing.T) {
	e := testEngine(t)
	pub := newPair(t, e)
	var ups []*UpTrack
	for range 3 {
		_, up := pub.publish(webrtc.MimeTypeVP8)
		ups = append(ups, up)
	}
	sub := newPair(t, e)
	sub.manual = true
	if _, err := sub.client.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	if err := sub.offer(); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.server.Subscribe(ups[0]); err != nil {
		t.Fatal(err)
	}
	first := <-sub.offers
	for _, up := range ups[1:] {
		if _, err := sub.server.Subscribe(up); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case o := <-sub.offers:
		t.Fatalf("second offer while the first is outstanding:\n%s", o)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := sub.answer(first); err != nil {
		t.Fatal(err)
	}
	var second string
	select {
	case second = <-sub.offers:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting changes were not offered")
	}
	for _, up := range ups {
		if !strings.Contains(second, up.ID()) {
			t.Errorf("the coalesced offer lacks track %s", up.ID())
		}
	}
	if _, err := sub.answer(second); err != nil {
		t.Fatal(err)
	}
}

// TestOfferRightAfterFirstAnswer: a client that answers the server's first
// offer and offers at once (Firefox joining a room) must get an answer with
// the server's ICE credentials unchanged; a changed ufrag is an ICE restart
// the client never asked for, and Firefox refuses the answer.
func TestOfferRightAfterFirstAnswer(t *testing.T) {
	e := testEngine(t)
	pub := newPair(t, e)
	_, up := pub.publish(webrtc.MimeTypeVP8)
	for i := range 5 {
		sub := newPair(t, e)
		sub.manual = true
		serverOffer := sub.subscribe(up)
		if _, err := sub.answer(serverOffer); err != nil {
			t.Fatal(err)
		}
		sub.addAudio()
		if err := sub.offer(); err != nil {
			t.Fatal(err)
		}
		want, got := iceUfrag(serverOffer), iceUfrag(sub.client.RemoteDescription().SDP)
		if want == "" || got != want {
			t.Fatalf("run %d: the server answered with ice-ufrag %q, its offer had %q: an ICE restart nobody asked for", i, got, want)
		}
	}
}

func iceUfrag(sdp string) string {
	for _, l := range strings.Split(sdp, "\r\n") {
		if v, ok := strings.CutPrefix(l, "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}
