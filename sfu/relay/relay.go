// Package relay is the embedded TURN server (pion/turn), for clients that
// cannot reach the media port directly: UDP blocked, or only TCP/TLS to
// the server's one HTTPS port allowed.
//
// It is not a general TURN server. It relays UDP only, and only between a
// client and this server's own media sockets: a client may ask for a
// permission to no other address, and the relay sockets drop whatever
// would go anywhere else, or come from anywhere else. Credentials are the
// TURN REST kind (username "expiry:participant", password the base64
// HMAC-SHA1 of the username under a shared secret), issued per participant
// and short-lived. Allocations are bounded per participant and in total.
package relay

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"

	"github.com/tessera-rtc/tessera/sfu/internal/pionlog"
)

// Config configures the relay.
type Config struct {
	// Realm is the TURN realm (default "tessera").
	Realm string
	// Secret keys the credentials; at least 16 bytes.
	Secret string
	// TTL is how long issued credentials stay valid (default 12h). An
	// allocation must be refreshed with valid credentials, so a call
	// through the relay lasts at most this long after its credentials were
	// issued, unless the client receives new ones (on resume).
	TTL time.Duration
	// Media lists the server's media sockets: the only addresses the relay
	// sends to or takes packets from.
	Media []netip.AddrPort
	// Public maps each public IP the server announces (NAT 1:1) to the
	// local IP behind it: a client that knows the media port by its public
	// address is relayed to the local one.
	Public map[netip.Addr]netip.Addr
	// MaxPerParticipant bounds one participant's allocations (default 6:
	// a browser allocates once per TURN URL it is given, per network).
	MaxPerParticipant int
	// MaxAllocations bounds all allocations (default 4096).
	MaxAllocations int
	// Active, when set, says whether a participant still exists: the
	// credentials of one who left are refused before they expire.
	Active func(participant string) bool

	// UDP are the sockets TURN over UDP is read from (the shared media
	// port); TCP and TLS give connections already accepted (and, for TLS,
	// decrypted) by the port demultiplexer. Any may be empty.
	UDP []net.PacketConn
	TCP net.Listener
	TLS net.Listener

	Logger *slog.Logger
}

// Allocation describes one relay allocation, for inspection.
type Allocation struct {
	Participant string
	Transport   string         // between client and relay: "udp", "tcp" or "tls"
	Client      netip.AddrPort // the client's address as the relay sees it
	Relay       netip.AddrPort // the relayed address media is sent to
	Since       time.Time
}

// Server is the running relay.
type Server struct {
	cfg    Config
	log    *slog.Logger
	turn   *turn.Server
	media  map[netip.AddrPort]bool
	public map[netip.AddrPort]netip.AddrPort // local media socket -> its public address

	mu      sync.Mutex
	streams map[string]*stream             // by client address of a TCP/TLS connection, guarded by mu
	allocs  map[fiveTuple]*Allocation      // guarded by mu
	count   map[string]int                 // allocations per participant, guarded by mu
	byRelay map[netip.AddrPort]*Allocation // guarded by mu

	refused atomic.Uint64 // packets the relay sockets dropped
}

type fiveTuple struct{ src, dst string }

// Errors of New.
var (
	ErrSecret  = errors.New("relay: the credential secret must be at least 16 bytes")
	ErrNoMedia = errors.New("relay: no media address to relay to")
)

// New starts the relay on the configured sockets and listeners.
func New(cfg Config) (*Server, error) {
	if len(cfg.Secret) < 16 {
		return nil, ErrSecret
	}
	if len(cfg.Media) == 0 {
		return nil, ErrNoMedia
	}
	if cfg.Realm == "" {
		cfg.Realm = "tessera"
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 12 * time.Hour
	}
	if cfg.MaxPerParticipant <= 0 {
		cfg.MaxPerParticipant = 6
	}
	if cfg.MaxAllocations <= 0 {
		cfg.MaxAllocations = 4096
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger.With("component", "turn"),
		media: map[netip.AddrPort]bool{}, public: map[netip.AddrPort]netip.AddrPort{},
		streams: map[string]*stream{}, allocs: map[fiveTuple]*Allocation{},
		count: map[string]int{}, byRelay: map[netip.AddrPort]*Allocation{},
	}
	for _, m := range cfg.Media {
		m = unmap(m)
		s.media[m] = true
		for pub, local := range cfg.Public {
			if local.Unmap() == m.Addr() {
				s.public[m] = netip.AddrPortFrom(pub.Unmap(), m.Port())
			}
		}
	}

	logs := pionlog.Factory{Log: s.log, Quiet: true}
	rest := turn.LongTermTURNRESTAuthHandler(cfg.Secret, logs.NewLogger("auth"))
	gen := &relayGen{s: s}
	sc := turn.ServerConfig{
		Realm:         cfg.Realm,
		LoggerFactory: logs,
		AuthHandler: func(ra *turn.RequestAttributes) (string, []byte, bool) {
			user, key, ok := rest(ra)
			if ok && cfg.Active != nil && !cfg.Active(user) {
				s.log.Debug("credentials of a participant who left", "participant", user, "client", ra.SrcAddr)
				return "", nil, false
			}
			return user, key, ok
		},
		QuotaHandler: s.quota,
		EventHandler: turn.EventHandler{
			OnAllocationCreated: s.created,
			OnAllocationDeleted: s.deleted,
		},
	}
	for _, c := range cfg.UDP {
		sc.PacketConnConfigs = append(sc.PacketConnConfigs, turn.PacketConnConfig{
			PacketConn: c, RelayAddressGenerator: gen, PermissionHandler: s.permitted,
		})
	}
	for _, l := range []struct {
		ln        net.Listener
		transport string
	}{{cfg.TCP, "tcp"}, {cfg.TLS, "tls"}} {
		if l.ln == nil {
			continue
		}
		sc.ListenerConfigs = append(sc.ListenerConfigs, turn.ListenerConfig{
			Listener: &streamListener{Listener: l.ln, s: s, transport: l.transport}, RelayAddressGenerator: gen, PermissionHandler: s.permitted,
		})
	}
	t, err := turn.NewServer(sc)
	if err != nil {
		return nil, fmt.Errorf("relay: %w", err)
	}
	s.turn = t
	return s, nil
}

// Close ends every allocation and stops reading the sockets and listeners.
func (s *Server) Close() error { return s.turn.Close() }

// Credentials issues TURN credentials for participant, valid for the
// configured TTL.
func (s *Server) Credentials(participant string) (username, password string, expires time.Time) {
	username, password, _ = turn.GenerateLongTermTURNRESTCredentials(s.cfg.Secret, participant, s.cfg.TTL)
	exp, _, _ := strings.Cut(username, ":")
	unix, _ := strconv.ParseInt(exp, 10, 64) // the library wrote it
	return username, password, time.Unix(unix, 0)
}

// Allocations lists the live allocations, by participant then client.
func (s *Server) Allocations() []Allocation {
	s.mu.Lock()
	out := make([]Allocation, 0, len(s.allocs))
	for _, a := range s.allocs {
		out = append(out, *a)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Participant != out[j].Participant {
			return out[i].Participant < out[j].Participant
		}
		return out[i].Client.String() < out[j].Client.String()
	})
	return out
}

// ByRelayAddr finds the allocation whose relayed address is addr: the far
// end of a server pair that runs through the relay.
func (s *Server) ByRelayAddr(addr netip.AddrPort) (Allocation, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.byRelay[unmap(addr)]
	if !ok {
		return Allocation{}, false
	}
	return *a, true
}

// Refused counts the packets the relay dropped because they would have
// gone to, or came from, an address that is not a media socket.
func (s *Server) Refused() uint64 { return s.refused.Load() }

// quota admits an allocation while the participant and the server are
// under their bounds.
func (s *Server) quota(user, _ string, src net.Addr) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count[user] >= s.cfg.MaxPerParticipant || len(s.allocs) >= s.cfg.MaxAllocations {
		s.log.Info("allocation refused: quota reached", "participant", user, "client", src.String(),
			"participant_allocations", s.count[user], "allocations", len(s.allocs))
		return false
	}
	return true
}

// permitted lets a client relay to the server's media addresses only.
func (s *Server) permitted(_ net.Addr, peer net.IP) bool {
	ip, ok := netip.AddrFromSlice(peer)
	if !ok {
		return false
	}
	ip = ip.Unmap()
	for m := range s.media {
		if m.Addr() == ip {
			return true
		}
	}
	_, ok = s.cfg.Public[ip]
	return ok
}

func (s *Server) created(src, dst net.Addr, _, user, _ string, relay net.Addr, _ int) {
	a := &Allocation{Participant: user, Transport: "udp", Client: addrPort(src), Relay: addrPort(relay), Since: time.Now()}
	s.mu.Lock()
	if st, ok := s.streams[src.String()]; ok {
		a.Transport = st.transport
		st.allocs.Add(1)
	}
	s.allocs[fiveTuple{src.String(), dst.String()}] = a
	s.byRelay[a.Relay] = a
	s.count[user]++
	s.mu.Unlock()
	s.log.Info("relay allocated", "participant", user, "transport", a.Transport, "client", a.Client.String(), "relay", a.Relay.String())
}

func (s *Server) deleted(src, dst net.Addr, _, user, _ string) {
	key := fiveTuple{src.String(), dst.String()}
	s.mu.Lock()
	a, ok := s.allocs[key]
	if ok {
		delete(s.allocs, key)
		delete(s.byRelay, a.Relay)
		if s.count[user]--; s.count[user] <= 0 {
			delete(s.count, user)
		}
		if st, ok := s.streams[key.src]; ok {
			st.allocs.Add(-1)
		}
	}
	s.mu.Unlock()
	if ok {
		s.log.Info("relay released", "participant", user, "transport", a.Transport, "client", a.Client.String())
	}
}

// toMedia maps where a client asks to send to the media socket it means;
// ok is false for anything that is not one.
func (s *Server) toMedia(dst netip.AddrPort) (netip.AddrPort, bool) {
	dst = unmap(dst)
	if s.media[dst] {
		return dst, true
	}
	if local, ok := s.cfg.Public[dst.Addr()]; ok {
		m := netip.AddrPortFrom(local.Unmap(), dst.Port())
		return m, s.media[m]
	}
	return netip.AddrPort{}, false
}

// fromMedia maps a media socket to the address clients know it by.
func (s *Server) fromMedia(src netip.AddrPort) (netip.AddrPort, bool) {
	src = unmap(src)
	if !s.media[src] {
		return netip.AddrPort{}, false
	}
	if pub, ok := s.public[src]; ok {
		return pub, true
	}
	return src, true
}

func (s *Server) refuse() { s.refused.Add(1) }

func addrPort(a net.Addr) netip.AddrPort {
	switch a := a.(type) {
	case *net.UDPAddr:
		return unmap(a.AddrPort())
	case *net.TCPAddr:
		return unmap(a.AddrPort())
	}
	ap, _ := netip.ParseAddrPort(a.String())
	return unmap(ap)
}

func unmap(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }
