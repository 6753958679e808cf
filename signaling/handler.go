package signaling

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tessera-rtc/tessera/rooms"
)

// Config configures the WebSocket endpoint.
type Config struct {
	// AllowedOrigins lists origins allowed besides the server's own; "*" allows all.
	AllowedOrigins []string
	// MaxMessageBytes is the largest client frame; a larger one closes the socket (1009).
	MaxMessageBytes int64
	// PingInterval is the keepalive period; a client silent for two periods is dropped.
	PingInterval time.Duration
	// WriteTimeout bounds every write to a socket.
	WriteTimeout time.Duration
	// QueueSize bounds the messages waiting for a slow client; past it the
	// client is disconnected rather than slowing its room down.
	QueueSize int
	// ICEServers are handed to clients in `joined` and `resumed`.
	ICEServers []ICEServer
	// Relay, when set, gives each participant servers of its own (the
	// embedded TURN server, with fresh credentials), listed before
	// ICEServers; host is the host the client reached this server by.
	Relay func(participant, host string) []ICEServer
	// MessagesPerSecond limits what one socket may send, with bursts of
	// twice as much; a socket that keeps going far over it is closed.
	MessagesPerSecond int
	// ConnectionsPerIP limits the sockets open from one address at once:
	// one IPv4 address, or one IPv6 /64 (what one subscriber is given).
	ConnectionsPerIP int
	// TrustedProxies are reverse proxies whose X-Forwarded-For is believed:
	// a request through them counts against the client's address, not the
	// proxy's. Empty: the address of the connection counts.
	TrustedProxies []netip.Prefix
	// JoinTimeout is how long a socket may stay open without joining.
	JoinTimeout time.Duration
	// Router, in a cluster, relays joins and resumes for rooms other nodes
	// host (relay.go); nil: every room is this node's.
	Router Router
	Logger *slog.Logger
}

func (c *Config) fill() {
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 64 << 10
	}
	if c.PingInterval <= 0 {
		c.PingInterval = 15 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.QueueSize <= 0 {
		c.QueueSize = 512
	}
	if c.ICEServers == nil {
		c.ICEServers = []ICEServer{}
	}
	if c.MessagesPerSecond <= 0 {
		c.MessagesPerSecond = 50
	}
	if c.ConnectionsPerIP <= 0 {
		c.ConnectionsPerIP = 32
	}
	if c.JoinTimeout <= 0 {
		c.JoinTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Handler serves the signaling WebSocket.
type Handler struct {
	cfg      Config
	reg      rooms.Registry
	log      *slog.Logger
	upgrader websocket.Upgrader

	errors map[Code]*atomic.Uint64 // error replies by code; the map is fixed at construction

	mu        sync.Mutex
	sessions  map[*session]struct{}   // guarded by mu
	perHost   map[string]int          // open sockets by remote address, guarded by mu
	hsessions map[string]*httpSession // WHIP and WHEP sessions by id, guarded by mu
	closed    bool                    // guarded by mu
	wg        sync.WaitGroup          // one per session
}

// NewHandler creates the WebSocket handler for the registry.
func NewHandler(cfg Config, reg rooms.Registry) *Handler {
	cfg.fill()
	h := &Handler{cfg: cfg, reg: reg, log: cfg.Logger, sessions: map[*session]struct{}{}, hsessions: map[string]*httpSession{}, perHost: map[string]int{}, errors: map[Code]*atomic.Uint64{}}
	for _, c := range Codes {
		h.errors[c] = new(atomic.Uint64)
	}
	// A socket reads through the HTTP server's buffer (4 KiB), and takes a
	// write buffer from a pool only while it writes a message: sockets are
	// many and mostly quiet, and each would otherwise hold 8 KiB more.
	h.upgrader = websocket.Upgrader{
		WriteBufferPool: &sync.Pool{},
		CheckOrigin:     h.checkOrigin,
	}
	return h
}

// checkOrigin allows same-origin requests, configured origins, and clients
// that send no Origin at all (non-browser clients, which no browser policy
// protects anyway).
func (h *Handler) checkOrigin(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err != nil {
		return false
	}
	if strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range h.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(strings.TrimSuffix(o, "/"), origin) {
			return true
		}
	}
	h.log.Warn("websocket origin refused", "origin", origin, "remote", r.RemoteAddr)
	return false
}

// ServeHTTP upgrades the request and runs the session until the socket closes.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	host := h.clientKey(r)
	// Reserved before the upgrade, so that a burst cannot pass the limit.
	if err := h.reserve(host); err != nil {
		if errors.Is(err, errRateLimited) {
			h.log.Warn("websocket refused: too many connections from one address", "remote", host, "limit", h.cfg.ConnectionsPerIP)
		}
		http.Error(w, err.Error(), httpStatus(err))
		return
	}
	release := func() { h.release(host) }
	ws, err := h.upgrader.Upgrade(w, r, nil)
	if err != nil {
		release()
		return // the upgrader has answered with an HTTP error
	}
	s := newSession(h, ws, r)
	s.clientKey = host
	s.relayed = h.cfg.Router != nil && h.cfg.Router.Relayed(r)
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		release()
		go s.writer()
		s.closeWith(websocket.CloseGoingAway, "server shutting down")
		s.wait()
		return
	}
	h.sessions[s] = struct{}{}
	h.wg.Add(1)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		delete(h.sessions, s)
		h.mu.Unlock()
		release()
		h.wg.Done()
	}()
	s.run()
}

// reserve counts one more connection from the client's address: a socket
// or a WHIP session. It refuses past ConnectionsPerIP, and after Close.
func (h *Handler) reserve(key string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return rooms.ErrShutdown
	}
	if h.perHost[key] >= h.cfg.ConnectionsPerIP {
		return fmt.Errorf("%w: too many connections from your address", errRateLimited)
	}
	h.perHost[key]++
	return nil
}

func (h *Handler) release(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.perHost[key]--; h.perHost[key] <= 0 {
		delete(h.perHost, key)
	}
}

// Sessions counts open sockets.
func (h *Handler) Sessions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.sessions)
}

// Close refuses new sockets, closes the open ones (1001, going away) and
// waits for their sessions to end. Joined participants should have been
// removed through the registry first, so they were told why.
func (h *Handler) Close(ctx context.Context) error {
	h.mu.Lock()
	h.closed = true
	open := make([]*session, 0, len(h.sessions))
	for s := range h.sessions {
		open = append(open, s)
	}
	h.mu.Unlock()
	for _, s := range open {
		if s.relaying.Load() {
			// The room lives on another node: the client reconnects and
			// resumes there through another node.
			s.closeWith(websocket.CloseServiceRestart, "this node is shutting down: reconnect")
			continue
		}
		s.closeWith(websocket.CloseGoingAway, "server shutting down")
	}
	done := make(chan struct{})
	go func() {
		h.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// ErrorCounts returns how many error replies were sent, by code.
func (h *Handler) ErrorCounts() map[Code]uint64 {
	out := make(map[Code]uint64, len(h.errors))
	for c, n := range h.errors {
		out[c] = n.Load()
	}
	return out
}

// clientKey is what the per-address limit counts a request against: the
// client's IPv4 address, or its IPv6 /64. Behind a trusted proxy, the
// client is the last address of X-Forwarded-For that is not a trusted
// proxy itself (each proxy appends the address it was reached from).
func (h *Handler) clientKey(r *http.Request) string {
	if k := r.Header.Get(relayClientHeader); k != "" && h.cfg.Router != nil && h.cfg.Router.Relayed(r) {
		return k // counted as the relaying node counted it
	}
	ip, ok := parseIP(r.RemoteAddr)
	if !ok {
		return r.RemoteAddr
	}
	if h.trusted(ip) {
		fwd := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
		for i := len(fwd) - 1; i >= 0; i-- {
			a, ok := parseIP(strings.TrimSpace(fwd[i]))
			if !ok {
				break // unreadable: stay with the last address believed
			}
			ip = a
			if !h.trusted(a) {
				break
			}
		}
	}
	if ip.Is6() {
		return netip.PrefixFrom(ip, 64).Masked().String()
	}
	return ip.String()
}

func (h *Handler) trusted(ip netip.Addr) bool { return inPrefixes(ip, h.cfg.TrustedProxies) }

// FromTrustedProxy reports whether a request comes straight from one of
// the trusted proxies.
func FromTrustedProxy(r *http.Request, trusted []netip.Prefix) bool {
	ip, ok := parseIP(r.RemoteAddr)
	return ok && inPrefixes(ip, trusted)
}

func inPrefixes(ip netip.Addr, prefixes []netip.Prefix) bool {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// parseIP reads an address with or without a port.
func parseIP(s string) (netip.Addr, bool) {
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, false
	}
	return a.Unmap().WithZone(""), true
}

// iceServers are the servers handed to a participant who reached the
// server by host.
func (h *Handler) iceServers(participant, host string) []ICEServer {
	if h.cfg.Relay == nil {
		return slices.Clone(h.cfg.ICEServers)
	}
	return append(h.cfg.Relay(participant, host), h.cfg.ICEServers...)
}
