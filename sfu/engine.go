package sfu

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/nack"
	"github.com/pion/interceptor/pkg/twcc"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"

	"github.com/tessera-rtc/tessera/sfu/internal/pionlog"
)

// Config configures the media plane.
type Config struct {
	// UDPPort is the one UDP port all ICE traffic uses, through a mux.
	// 0 gives every peer its own ephemeral ports.
	UDPPort int
	// ShareUDP lets a TURN server share the UDP port: what is not ICE's
	// (TURN requests, ChannelData, plain STUN Binding requests) is read
	// from Engine.SharedUDP instead. Needs UDPPort.
	ShareUDP bool
	// ICETCP, when set, carries ICE over TCP: the engine offers passive TCP
	// candidates at its address and takes the connections it accepts
	// (RFC 6544, RFC 4571 framing). The engine closes it.
	ICETCP net.Listener
	// Interfaces restricts ICE to these interface names; empty allows all.
	Interfaces []string
	// IPs restricts ICE to local addresses inside these prefixes; empty
	// allows all. Loopback addresses pass with Loopback unless a prefix is
	// itself of loopback addresses.
	IPs []netip.Prefix
	// Loopback offers loopback candidates.
	Loopback bool
	// NAT1To1IPs are advertised instead of host addresses.
	NAT1To1IPs []string
	// ConnectTimeout is how long ICE may take to connect, counted from the
	// peer's creation (the participant's join), and how long a disconnected
	// peer may stay so, before the peer fails.
	ConnectTimeout time.Duration
	// MaxTracksPerPeer limits the tracks one peer may publish (0: 16).
	MaxTracksPerPeer int
	// Net replaces the operating system's network (tests use pion's vnet).
	Net transport.Net
	// OnNegotiation, when set, is told how long each negotiation took:
	// kind "server-offer" from the server's offer to the client's answer,
	// "client-offer" for applying a client's offer and answering it.
	OnNegotiation func(kind string, d time.Duration)
	// Logger receives the engine's and peers' logs (nil: slog.Default()).
	Logger *slog.Logger
}

func (c *Config) fill() {
	if c.ConnectTimeout <= 0 {
		c.ConnectTimeout = 15 * time.Second
	}
	if c.MaxTracksPerPeer <= 0 {
		c.MaxTracksPerPeer = 16
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Engine holds what all peers share: the webrtc.API (codecs, interceptors,
// ICE settings) and the UDP mux.
type Engine struct {
	cfg Config
	api *webrtc.API
	// What every peer's API is made of: each peer gets its own, whose DTLS
	// hooks record the secrets of its session (peerAPI).
	se           webrtc.SettingEngine
	media        *webrtc.MediaEngine
	interceptors *interceptor.Registry
	mux          *udpMux // nil with ephemeral ports
	tcpMux       *ice.TCPMuxDefault
	fanout       *fanoutPool
	fanoutOnce   sync.Once
	log          *slog.Logger

	mu      sync.Mutex
	peers   map[string]*Peer        // open peers by id, guarded by mu
	ups     map[*UpTrack]struct{}   // live tracks, guarded by mu
	downs   map[*DownTrack]struct{} // live subscriptions, guarded by mu
	retired Totals                  // counts of what is gone, guarded by mu
	iceFail atomic.Uint64
}

// NewEngine builds the shared webrtc.API. With a UDP port it binds the port
// at once, so a port in use is reported here rather than at the first call.
func NewEngine(cfg Config) (*Engine, error) {
	cfg.fill()
	e := &Engine{cfg: cfg, log: cfg.Logger, peers: map[string]*Peer{}, ups: map[*UpTrack]struct{}{}, downs: map[*DownTrack]struct{}{}}

	m, err := newMediaEngine()
	if err != nil {
		return nil, err
	}
	reg := &interceptor.Registry{}
	if err := configureInterceptors(m, reg); err != nil {
		return nil, err
	}

	var se webrtc.SettingEngine
	se.LoggerFactory = pionlog.Factory{Log: e.log}
	// After a collision pion may answer a later offer with a=setup:active,
	// which Chrome rejects ("Failed to set SSL role for the transport").
	if err := se.SetAnsweringDTLSRole(webrtc.DTLSRoleServer); err != nil {
		return nil, fmt.Errorf("dtls role: %w", err)
	}
	se.SetIncludeLoopbackCandidate(cfg.Loopback)
	se.SetICETimeouts(5*time.Second, cfg.ConnectTimeout, 2*time.Second)
	if len(cfg.NAT1To1IPs) > 0 {
		// Host candidates carry the public addresses instead of the local
		// ones (pion's former SetNAT1To1IPs with host candidates).
		rule := webrtc.ICEAddressRewriteRule{External: cfg.NAT1To1IPs, AsCandidateType: webrtc.ICECandidateTypeHost, Mode: webrtc.ICEAddressRewriteReplace}
		if err := se.SetICEAddressRewriteRules(rule); err != nil {
			return nil, fmt.Errorf("nat 1:1 addresses: %w", err)
		}
	}
	ifFilter, ipFilter := cfg.interfaceFilter(), cfg.ipFilter()
	if ifFilter != nil {
		se.SetInterfaceFilter(ifFilter)
	}
	if ipFilter != nil {
		se.SetIPFilter(ipFilter)
	}
	networks := []webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6}
	if cfg.ICETCP != nil {
		networks = append(networks, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6)
		e.tcpMux = ice.NewTCPMuxDefault(ice.TCPMuxParams{
			Listener: cfg.ICETCP,
			Logger:   se.LoggerFactory.NewLogger("tcpmux"),
			// A packet waits at most this much behind a slow TCP
			// connection; beyond it packets are dropped, as UDP would.
			WriteBufferSize:              1 << 20,
			FirstStunBindTimeout:         10 * time.Second,
			AliveDurationForConnFromStun: 30 * time.Second,
		})
		se.SetICETCPMux(e.tcpMux)
	}
	se.SetNetworkTypes(networks)
	// A server has nothing to hide behind mDNS names, and a browser's
	// .local candidates are learnt as peer-reflexive when its checks arrive:
	// no mDNS socket and goroutines per peer.
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if cfg.Net != nil {
		se.SetNet(cfg.Net)
	}
	if cfg.ShareUDP && cfg.UDPPort <= 0 {
		e.closeTCP()
		return nil, errors.New("sharing the UDP port needs a UDP port")
	}
	if cfg.UDPPort > 0 {
		mux, err := listenUDPMux(cfg, ifFilter, ipFilter, se.LoggerFactory.NewLogger("udpmux"))
		if err != nil {
			e.closeTCP()
			return nil, fmt.Errorf("ice udp port %d: %w", cfg.UDPPort, err)
		}
		e.mux = mux
		se.SetICEUDPMux(mux)
	}

	e.fanout = newFanoutPool()
	e.se, e.media, e.interceptors = se, m, reg
	e.api = webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	return e, nil
}

// peerAPI is the engine's API with DTLS hooks of one peer's own, which
// record its session's secrets in s. pion copies the media engine and
// builds the interceptors per PeerConnection, so sharing them is safe.
func (e *Engine) peerAPI(s *dtlsSecrets) *webrtc.API {
	se := e.se
	se.SetDTLSKeyLogWriter(s)
	se.SetDTLSServerHelloMessageHook(s.serverHello)
	return webrtc.NewAPI(webrtc.WithMediaEngine(e.media), webrtc.WithInterceptorRegistry(e.interceptors), webrtc.WithSettingEngine(se))
}

// configureInterceptors installs what the forwarder relies on: NACKs
// towards publishers for what the server lost, and TWCC feedback towards
// publishers (so browser bandwidth estimation works for what they send).
// Both start only when a peer publishes (publisherOnly).
//
// The rest is the forwarder's own. Subscribers' NACKs are answered from one
// packet cache per published layer (pion's responder would keep a copy of
// every packet per subscriber). Sender reports are mapped onto the
// publisher's clock (pion's would map the rewritten timestamps onto the
// time the server sent them, which breaks lip-sync), and receiver reports
// come from the loss and jitter the readers compute anyway (pion's
// receiver interceptor parses every RTCP packet of every subscriber).
func configureInterceptors(m *webrtc.MediaEngine, reg *interceptor.Registry) error {
	gen, err := nack.NewGeneratorInterceptor()
	if err != nil {
		return err
	}
	reg.Add(publisherOnly{gen})

	fb, err := twcc.NewSenderInterceptor()
	if err != nil {
		return err
	}
	reg.Add(publisherOnly{fb})
	return nil
}

// Close releases the UDP port and the fan-out workers. Peers must be
// closed first.
func (e *Engine) Close() error {
	if e.fanout != nil {
		e.fanoutOnce.Do(e.fanout.close)
	}
	e.closeTCP()
	if e.mux != nil {
		for _, c := range e.mux.conns {
			if c.side != nil {
				_ = c.side.Close()
			}
		}
		return e.mux.Close()
	}
	return nil
}

func (e *Engine) closeTCP() {
	if e.tcpMux != nil {
		_ = e.tcpMux.Close()
	}
}

// SharedUDP returns, for each socket of the UDP port, the connection a
// TURN server reads and writes on (Config.ShareUDP; nil otherwise).
func (e *Engine) SharedUDP() []net.PacketConn {
	if e.mux == nil {
		return nil
	}
	var out []net.PacketConn
	for _, c := range e.mux.conns {
		if c.side != nil {
			out = append(out, c.side)
		}
	}
	return out
}

// LocalAddrs lists the addresses the UDP mux listens on (nil with ephemeral ports).
func (e *Engine) LocalAddrs() []net.Addr {
	if e.mux == nil {
		return nil
	}
	return e.mux.GetListenAddresses()
}

func (c *Config) interfaceFilter() func(string) bool {
	if len(c.Interfaces) == 0 {
		return nil
	}
	names := slices.Clone(c.Interfaces)
	return func(name string) bool {
		// Loopback stays governed by Config.Loopback alone.
		return slices.Contains(names, name) || (c.Loopback && isLoopbackInterface(name))
	}
}

func (c *Config) ipFilter() func(net.IP) bool {
	if len(c.IPs) == 0 {
		return nil
	}
	prefixes := slices.Clone(c.IPs)
	// Loopback addresses pass with Loopback, unless a prefix names loopback
	// addresses itself: then it says which (127.0.0.1/32 leaves ::1 out).
	namesLoopback := slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Addr().IsLoopback() })
	return func(ip net.IP) bool {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			return false
		}
		a = a.Unmap()
		if c.Loopback && a.IsLoopback() && !namesLoopback {
			return true
		}
		for _, p := range prefixes {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
}

func isLoopbackInterface(name string) bool {
	ifi, err := net.InterfaceByName(name)
	return err == nil && ifi.Flags&net.FlagLoopback != 0
}

// errorsIsAny reports whether err matches any of targets.
func errorsIsAny(err error, targets ...error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// Totals are the engine's counters since it started, for metrics: they
// only grow (what ends is kept in them).
type Totals struct {
	Peers, Tracks, Subscriptions int // now

	ReceivedPackets, ReceivedBytes   uint64 // from publishers
	ForwardedPackets, ForwardedBytes uint64 // to subscribers
	Retransmitted                    uint64 // packets resent to subscribers
	NACKsReceived, PLIsReceived      uint64 // from subscribers
	PLIsSent                         uint64 // keyframe requests to publishers
	ICEFailures                      uint64
}

func (t *Totals) addUp(u *UpTrack) {
	for i := range u.layerCount() {
		l := &u.layers[i]
		t.ReceivedPackets += l.packets.Load()
		t.ReceivedBytes += l.bytes.Load()
		t.PLIsSent += l.plis.Load()
	}
}

func (t *Totals) addDown(d *DownTrack) {
	s := d.Stats()
	t.ForwardedPackets += s.Packets
	t.ForwardedBytes += s.Bytes
	t.Retransmitted += s.Retransmitted
	t.NACKsReceived += s.NACKs
	t.PLIsReceived += s.PLIs
}

// Totals sums the counters of live and ended tracks.
func (e *Engine) Totals() Totals {
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.retired
	t.Peers, t.Tracks, t.Subscriptions = len(e.peers), len(e.ups), len(e.downs)
	for u := range e.ups {
		t.addUp(u)
	}
	for d := range e.downs {
		t.addDown(d)
	}
	t.ICEFailures = e.iceFail.Load()
	return t
}

func (e *Engine) track(u *UpTrack) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.ups[u] = struct{}{}
}

func (e *Engine) untrack(u *UpTrack) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.ups[u]; ok {
		delete(e.ups, u)
		e.retired.addUp(u)
	}
}

func (e *Engine) subscribe(d *DownTrack) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.downs[d] = struct{}{}
}

func (e *Engine) unsubscribe(d *DownTrack) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.downs[d]; ok {
		delete(e.downs, d)
		e.retired.addDown(d)
	}
}

func (e *Engine) addPeer(p *Peer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.peers[p.id] = p
}

func (e *Engine) removePeer(p *Peer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.peers[p.id] == p {
		delete(e.peers, p.id)
	}
}

// HasPeer reports whether a peer with this id is open.
func (e *Engine) HasPeer(id string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	_, ok := e.peers[id]
	return ok
}
