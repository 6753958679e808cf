package sfu

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
)

// Handler receives a Peer's events. Its methods are called from the Peer's
// and pion's goroutines: they must return quickly and must not call back
// into the Peer.
type Handler interface {
	// SendOffer delivers a server-initiated offer; the answer comes back
	// through HandleAnswer.
	SendOffer(sdp string)
	// SendCandidate delivers a local ICE candidate; nil ends gathering.
	SendCandidate(c *webrtc.ICECandidateInit)
	// TrackPublished announces a track the client started sending, as soon as
	// its offer is accepted (before media flows).
	TrackPublished(t *UpTrack)
	// TrackUnpublished announces a track the client stopped sending.
	TrackUnpublished(t *UpTrack)
	// PeerFailed reports that the connection failed (ICE failure or timeout);
	// the peer should be closed.
	PeerFailed(err error)
	// LayersWanted tells the publisher of a simulcast track which layers
	// subscribers need (lowest first): it may stop encoding the others.
	LayersWanted(t *UpTrack, rids []string)
	// TrackRefused reports a subscription to t that the client cannot take
	// (its session has no such codec); it was dropped.
	TrackRefused(t *UpTrack)
	// TrackCodecChanged reports that the publisher now sends t in another
	// codec (see SetAudience): subscriptions made before forward nothing
	// more, and are replaced with Resubscribe.
	TrackCodecChanged(t *UpTrack)
}

// PeerConfig configures one Peer.
type PeerConfig struct {
	ID      string // the participant id: stream id of the peer's tracks
	Handler Handler
	Logger  *slog.Logger
	// NoPublish refuses every offer that sends anything (ErrNotAllowed):
	// the participant may only receive.
	NoPublish bool
	// Fixed is a session negotiated once, over HTTP (WHIP): the server
	// never offers, so it cannot be subscribed to anything, and its tracks
	// keep the codec of the first answer.
	Fixed bool
	// Viewer is a Fixed session that only receives (WHEP): its offer's
	// first receiving audio and video sections become its Feeds.
	Viewer bool
}

// Peer is one participant's PeerConnection. The server is the impolite peer
// of perfect negotiation: it keeps at most one offer outstanding, folds the
// changes that arrive meanwhile into its next offer, and ignores a client
// offer that collides with its own.
type Peer struct {
	id  string
	e   *Engine
	pc  *webrtc.PeerConnection
	h   Handler
	log *slog.Logger

	noPublish bool // PeerConfig.NoPublish
	fixed     bool // PeerConfig.Fixed
	viewer    bool // PeerConfig.Viewer
	// secrets are what the session's SRTP keys derive from (srtpkeys.go).
	secrets *dtlsSecrets
	// direct is the route of the direct send path (direct.go).
	direct directPath

	// Lock order: negMu, then mu; the locks of UpTracks, DownTracks, the
	// estimator and the packet caches are leaves, taken under either or
	// none. The Handler is never called with mu held.
	//
	// negMu serializes negotiation: every Set*Description, transceiver
	// change and candidate applied to pc.
	negMu sync.Mutex
	// Guarded by negMu:
	subs        map[string]*subscription                             // attached subscriptions, by track id
	releasing   []*webrtc.RTPTransceiver                             // freed since the last offer
	offered     []*webrtc.RTPTransceiver                             // freed, offered as inactive, awaiting the answer
	free        []*webrtc.RTPTransceiver                             // inactive in the session: reusable
	remoteCands []webrtc.ICECandidateInit                            // arrived before a remote description
	needOffer   bool                                                 // a change awaits an offer
	numbers     numbering                                            // payload types in use in the session
	lastCodec   map[*webrtc.RTPTransceiver]webrtc.RTPCodecParameters // what a released transceiver carried
	offerAt     time.Time                                            // when the outstanding server offer was sent

	// mu guards the fields below. It is never held while calling out.
	mu        sync.Mutex
	published map[string]*UpTrack   // by mid
	wanted    map[string]*DownTrack // subscriptions asked for, by track id
	descSent  bool                  // a local description went out: candidates may follow
	candQueue []*webrtc.ICECandidateInit
	closed    bool
	failed    bool
	history   []NegotiationEvent
	// reconsider: the audience changed since the codecs were last chosen.
	reconsider bool
	refused    []*DownTrack // subscriptions the client cannot take, to report
	feeds      []*Feed      // a viewer's, set by its offer

	// audience is what the participants who may receive this peer's
	// tracks decode (SetAudience).
	audience atomic.Pointer[[]Codecs]

	// sub is the receiving side: bandwidth, allocation, reports.
	sub *subscriber

	connectTimer *time.Timer
	// iceStarted is closed once ICE has left the new state: pion has then
	// taken the client's ICE credentials (see HandleOffer).
	iceStarted     chan struct{}
	iceStartedOnce sync.Once
	kick           chan struct{}
	done           chan struct{}
	wg             sync.WaitGroup // the negotiation loop and the track readers
}

// subscription is a DownTrack attached to a transceiver of the subscriber.
type subscription struct {
	down   *DownTrack
	tr     *webrtc.RTPTransceiver
	sender *webrtc.RTPSender
}

// NewPeer creates a participant's PeerConnection.
func (e *Engine) NewPeer(cfg PeerConfig) (*Peer, error) {
	if cfg.Handler == nil {
		return nil, fmt.Errorf("sfu: peer %s has no handler", cfg.ID)
	}
	log := cfg.Logger
	if log == nil {
		log = e.log.With("participant", cfg.ID)
	}
	secrets := &dtlsSecrets{}
	pc, err := e.peerAPI(secrets).NewPeerConnection(webrtc.Configuration{
		BundlePolicy:  webrtc.BundlePolicyMaxBundle,
		RTCPMuxPolicy: webrtc.RTCPMuxPolicyRequire,
	})
	if err != nil {
		return nil, fmt.Errorf("new peer connection: %w", err)
	}
	p := &Peer{
		id: cfg.ID, e: e, pc: pc, h: cfg.Handler, log: log, noPublish: cfg.NoPublish || cfg.Viewer, fixed: cfg.Fixed || cfg.Viewer, viewer: cfg.Viewer, secrets: secrets,
		subs:       map[string]*subscription{},
		lastCodec:  map[*webrtc.RTPTransceiver]webrtc.RTPCodecParameters{},
		published:  map[string]*UpTrack{},
		wanted:     map[string]*DownTrack{},
		kick:       make(chan struct{}, 1),
		iceStarted: make(chan struct{}),
		done:       make(chan struct{}),
	}
	p.sub = newSubscriber(p, log, p.done)
	pc.OnICECandidate(p.onCandidate)
	pc.OnTrack(p.onTrack)
	pc.OnConnectionStateChange(p.onConnectionState)
	pc.SCTP().Transport().ICETransport().OnSelectedCandidatePairChange(func(*webrtc.ICECandidatePair) { p.updateRoute() })
	pc.OnICEConnectionStateChange(func(s webrtc.ICEConnectionState) {
		p.log.Info("ice state", "state", s.String())
		if s != webrtc.ICEConnectionStateNew {
			p.iceStartedOnce.Do(func() { close(p.iceStarted) })
		}
	})
	e.addPeer(p)
	// ICE must connect within the connect timeout of joining, whatever the
	// client does: a participant that never negotiates holds its room and
	// its slot in it for nothing.
	p.mu.Lock()
	p.connectTimer = time.AfterFunc(e.cfg.ConnectTimeout, p.connectTimedOut)
	p.mu.Unlock()
	p.wg.Add(2)
	go p.loop()
	go func() {
		defer p.wg.Done()
		p.sub.run()
	}()
	return p, nil
}

// Estimate is the subscriber's estimated bandwidth in bits/s (0 when the
// client sends no congestion feedback).
func (p *Peer) Estimate() int { return p.sub.estimate() }

// ID returns the participant id.
func (p *Peer) ID() string { return p.id }

// loop runs the server's side of negotiation whenever subscriptions change
// or a negotiation ends with changes waiting.
//
// A change waits negotiateDelay before it is offered, so that a burst of
// changes (a room joining at once, a participant publishing camera and
// microphone) goes out as one offer.
func (p *Peer) loop() {
	defer p.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	armed := false
	idle := time.NewTimer(p.e.idleOfferDelay())
	defer idle.Stop()
	for {
		select {
		case <-p.done:
			timer.Stop()
			return
		case <-idle.C:
			p.connectIdle()
		case <-p.kick:
			if !armed {
				timer.Reset(negotiateDelay)
				armed = true
			}
		case <-timer.C:
			armed = false
			p.negotiate()
		}
	}
}

// idleOfferDelay is how long after joining the server waits for a first
// negotiation before it offers one itself (connectIdle): long enough for a
// publishing client's own first offer, short against the connect timeout.
func (e *Engine) idleOfferDelay() time.Duration {
	return min(time.Second, e.cfg.ConnectTimeout/4)
}

// connectIdle connects a participant that has negotiated nothing since it
// joined: a viewer in a room where nothing is published yet. The server
// offers a data channel section, so that ICE and DTLS run now (the first
// subscription's media then flows at once), and so that the connect
// timeout holds for every participant alike.
//
// The section carries no media on purpose. pion keeps, per kind, the
// codecs and header extensions the first negotiation of that kind agreed
// (MediaEngine.updateFromRemoteDescription), so a media section offered
// here would fix the session's audio (or video) numbering to an answer the
// client gave before it published: Firefox then numbers its own Opus
// differently, and the audio sent to it afterwards is never played. The
// channel is pre-negotiated (id 0), so the client sees no new channel and
// no message is exchanged on it.
func (p *Peer) connectIdle() {
	p.negMu.Lock()
	if p.isClosed() || p.pc.SignalingState() != webrtc.SignalingStateStable ||
		p.pc.LocalDescription() != nil || p.pc.RemoteDescription() != nil || len(p.subs) > 0 {
		p.negMu.Unlock()
		return
	}
	negotiated, id := true, uint16(0)
	if _, err := p.pc.CreateDataChannel(idleChannel, &webrtc.DataChannelInit{Negotiated: &negotiated, ID: &id}); err != nil {
		p.negMu.Unlock()
		p.log.Warn("cannot offer a connection", "err", err)
		return
	}
	p.needOffer = true
	p.negMu.Unlock()
	p.event("nothing negotiated since joining: server offers to connect")
	p.negotiate()
}

// idleChannel labels the data channel connectIdle offers.
const idleChannel = "connect"

func (p *Peer) connectTimedOut() {
	if p.pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
		p.fail(fmt.Errorf("%w (%s)", ErrICETimeout, p.e.cfg.ConnectTimeout))
	}
}

// negotiateDelay is how long a subscription change waits for others to
// share its offer.
const negotiateDelay = 20 * time.Millisecond

func (p *Peer) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// Published returns the tracks the peer publishes.
func (p *Peer) Published() []*UpTrack {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slicesOf(p.published)
}

func slicesOf[K comparable, V any](m map[K]V) []V {
	out := make([]V, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func (p *Peer) onConnectionState(s webrtc.PeerConnectionState) {
	p.log.Debug("connection state", "state", s.String())
	switch s {
	case webrtc.PeerConnectionStateConnected:
		p.mu.Lock()
		if p.connectTimer != nil {
			p.connectTimer.Stop()
		}
		p.mu.Unlock()
		p.updateRoute() // DTLS is up: the keys are known
	case webrtc.PeerConnectionStateFailed:
		p.fail(ErrICEFailed)
	case webrtc.PeerConnectionStateClosed:
		// Not closed by Close (fail ignores a closed peer): pion closes the
		// connection when the client's DTLS says close_notify.
		p.fail(ErrRemoteClosed)
	}
}

// onTrack starts reading a layer of a published track; pion calls it in a
// goroutine of its own, which becomes the layer's reader.
func (p *Peer) onTrack(tr *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	mid := ""
	if t := recv.RTPTransceiver(); t != nil {
		mid = t.Mid()
	}
	// Counted under mu, where Close marks the peer closed before it waits:
	// pion starts this goroutine on its own, and an Add racing Close's Wait
	// would let Close return with a reader still running.
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.wg.Add(1)
	up := p.published[mid]
	p.mu.Unlock()
	defer p.wg.Done()
	if up == nil {
		p.log.Debug("media on a transceiver that publishes nothing", "mid", mid)
		return
	}
	l := up.layerIndex(tr.RID())
	if l < 0 {
		p.log.Warn("media for an unannounced simulcast layer", "track", up.id, "rid", tr.RID())
		return
	}
	if want := up.Codec(); !strings.EqualFold(tr.Codec().MimeType, want.MimeType) {
		p.log.Warn("publisher sends another codec than negotiated", "track", up.id, "got", tr.Codec().MimeType, "want", want.MimeType)
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		up.readRTCP(recv, tr.RID(), l)
	}()
	up.read(l, tr)
}

func (p *Peer) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// fail reports a broken connection to the handler, once.
func (p *Peer) fail(err error) {
	p.mu.Lock()
	if p.failed || p.closed {
		p.mu.Unlock()
		return
	}
	p.failed = true
	p.mu.Unlock()
	p.log.Warn("peer failed", "err", err)
	p.event("failed: %v", err)
	if errorsIsAny(err, ErrICEFailed, ErrICETimeout) {
		p.e.iceFail.Add(1)
	}
	go p.h.PeerFailed(err) // the handler may close the peer: not on a pion callback's stack
}

// Close ends the peer: its subscriptions stop, its tracks end, its
// goroutines return before Close does.
func (p *Peer) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	if p.connectTimer != nil {
		p.connectTimer.Stop()
	}
	published := slicesOf(p.published)
	p.mu.Unlock()
	close(p.done)
	p.direct.close()

	p.negMu.Lock() // waits for a negotiation in progress
	for _, s := range p.subs {
		s.down.up.removeDown(s.down)
	}
	p.closeFeeds()
	p.negMu.Unlock()

	err := p.pc.Close()
	for _, t := range published {
		t.close()
	}
	p.wg.Wait()
	// Counted only now: the readers and RTCP loops have stopped.
	p.negMu.Lock()
	for _, s := range p.subs {
		p.e.unsubscribe(s.down)
	}
	for _, f := range p.feeds {
		if d := f.cur.Load(); d != nil {
			p.e.unsubscribe(d)
		}
	}
	p.negMu.Unlock()
	for _, t := range published {
		p.e.untrack(t)
	}
	p.e.removePeer(p)
	return err
}
