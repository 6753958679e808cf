// Package configs defines the rooms.yaml schema: strict loading (unknown keys are
// errors naming the key and its line), validation with clear messages, and the
// embedded default configuration used when the server runs without --config.
//
// The package depends on nothing else in the project: cmd/sfu translates a
// Config into the settings of the media, room and signaling packages.
package configs

import (
	"net"
	"net/netip"
	"reflect"
	"strings"
	"time"
)

// Config is the whole of rooms.yaml.
type Config struct {
	// Listen is the HTTP address serving the WebSocket (/ws), the web client (/),
	// /healthz and the operator's endpoints (see Admin).
	Listen    string    `yaml:"listen"`
	Log       Log       `yaml:"log"`
	TLS       TLS       `yaml:"tls"`
	WebSocket WebSocket `yaml:"websocket"`
	ICE       ICE       `yaml:"ice"`
	TURN      TURN      `yaml:"turn"`
	Rooms     Rooms     `yaml:"rooms"`
	Auth      Auth      `yaml:"auth"`
	Limits    Limits    `yaml:"limits"`
	Admin     Admin     `yaml:"admin"`
	// Cluster joins this server to others sharing rooms through Redis;
	// absent (nil), the server runs alone.
	Cluster *Cluster `yaml:"cluster"`
	// Recording writes rooms to files; absent (nil), no room can be
	// recorded.
	Recording *Recording `yaml:"recording"`
	// ShutdownTimeout bounds a graceful shutdown.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// Log configures logging.
type Log struct {
	// Level is one of debug, info, warn, error.
	Level string `yaml:"level"`
	// Format is text or json.
	Format string `yaml:"format"`
}

// TLS configures HTTPS for the listener: certificate files (both or
// neither), or a certificate obtained and renewed from Let's Encrypt
// (Autocert). Not both.
type TLS struct {
	Cert     string   `yaml:"cert"`
	Key      string   `yaml:"key"`
	Autocert Autocert `yaml:"autocert"`
}

// Enabled reports whether TLS is configured.
func (t TLS) Enabled() bool { return t.Cert != "" || t.Autocert.Enabled() }

// Autocert obtains the server's certificate from Let's Encrypt (ACME) and
// renews it, with the TLS-ALPN-01 challenge: Let's Encrypt connects to port
// 443 of Host and the server answers on the listener itself, so port 443
// is the only one that must be reachable (no port 80).
type Autocert struct {
	// Host is the public DNS name of the server; its DNS must point here.
	// The server requests a certificate for no other name.
	Host string `yaml:"host"`
	// CacheDir keeps the account key and certificates across restarts
	// (Let's Encrypt limits how often a name may be issued a certificate).
	CacheDir string `yaml:"cache_dir"`
	// Email is given to Let's Encrypt for expiry notices; optional.
	Email string `yaml:"email"`
}

// Enabled reports whether certificates come from Let's Encrypt.
func (a Autocert) Enabled() bool { return a.Host != "" }

// WebSocket configures the signaling endpoint.
type WebSocket struct {
	// AllowedOrigins lists origins (scheme://host[:port]) allowed besides the
	// server's own; "*" allows any origin.
	AllowedOrigins []string `yaml:"allowed_origins"`
	// MaxMessageBytes is the largest frame a client may send; a larger one
	// closes the socket with 1009.
	MaxMessageBytes int64 `yaml:"max_message_bytes"`
	// PingInterval is how often the server pings; a client that does not
	// answer within two intervals is dropped.
	PingInterval time.Duration `yaml:"ping_interval"`
}

// ICE configures how media reaches the server.
type ICE struct {
	// UDPPort is the one UDP port all media uses (through a mux), shared
	// with TURN over UDP; 0 takes the number of the listen port, so that
	// TCP and UDP use one port number; -1 gives each participant its own
	// ephemeral ports (without the embedded TURN server).
	UDPPort int `yaml:"udp_port"`
	// TCP offers ICE over TCP on the listen port, for clients that may
	// reach the server over TCP but not UDP.
	TCP bool `yaml:"tcp"`
	// Interfaces restricts ICE to these network interfaces (names); empty allows all.
	Interfaces []string `yaml:"interfaces"`
	// IPs restricts ICE to local addresses in these IPs or CIDRs; empty
	// allows all. With Loopback, loopback addresses pass too, unless IPs
	// names loopback addresses itself (127.0.0.1/32 leaves ::1 out).
	IPs []string `yaml:"ips"`
	// Loopback offers 127.0.0.1/::1 candidates, so that clients on the same
	// machine connect with nothing else reachable.
	Loopback bool `yaml:"loopback"`
	// NAT1To1IPs are public addresses advertised instead of the host ones.
	NAT1To1IPs []string `yaml:"nat_1to1_ips"`
	// Servers are STUN/TURN servers handed to clients in `joined`.
	Servers []ICEServer `yaml:"servers"`
	// ConnectTimeout is how long ICE may take to connect, from the join,
	// before the participant is removed; also the timeout after which a disconnected
	// participant is considered failed.
	ConnectTimeout time.Duration `yaml:"connect_timeout"`
}

// TURN configures the embedded TURN server. It listens on the listen port
// (TURN over TCP, and over TLS when the port has a certificate) and on
// the UDP port, and relays only to this server's own media port.
type TURN struct {
	// Enabled runs it and hands every participant credentials for it.
	Enabled bool `yaml:"enabled"`
	// Secret keys the credentials (TURN REST: HMAC-SHA1); at least
	// MinTURNSecretLen bytes. Empty: a random one at each start, which is
	// enough for a single server.
	Secret string `yaml:"secret"`
	// Realm is the TURN realm.
	Realm string `yaml:"realm"`
	// CredentialTTL is how long a participant's credentials stay valid;
	// a call relayed for longer needs new ones (a resume brings them).
	CredentialTTL time.Duration `yaml:"credential_ttl"`
	// Host is the name or IP clients are told to reach TURN at; empty: the
	// host they reached the server by (the WebSocket request's Host).
	Host string `yaml:"host"`
	// MaxAllocationsPerParticipant bounds one participant's allocations (a
	// browser makes one per TURN URL: three).
	MaxAllocationsPerParticipant int `yaml:"max_allocations_per_participant"`
}

// MinTURNSecretLen is the shortest TURN secret accepted, in bytes.
const MinTURNSecretLen = 16

// ICEServer is one STUN or TURN server for clients.
type ICEServer struct {
	URLs       []string `yaml:"urls"`
	Username   string   `yaml:"username"`
	Credential string   `yaml:"credential"`
}

// Rooms configures the rooms the server hosts.
type Rooms struct {
	// OnDemand creates rooms not listed in List on their first join.
	OnDemand bool `yaml:"on_demand"`
	// MaxParticipants limits rooms created on demand, and listed rooms that
	// do not set their own limit.
	MaxParticipants int `yaml:"max_participants"`
	// MaxViewers limits the WHEP viewers of a room (on demand, or listed
	// without its own limit): they are counted apart from its participants,
	// so that an audience neither fills a call nor is refused by one.
	MaxViewers int `yaml:"max_viewers"`
	// List names rooms that always exist.
	List []Room `yaml:"list"`
	// ResumeGrace is how long a participant whose connection dropped is kept
	// for its client to resume it; 0 disables resuming.
	ResumeGrace time.Duration `yaml:"resume_grace"`
}

// Room is one listed room.
type Room struct {
	Name            string `yaml:"name"`
	MaxParticipants int    `yaml:"max_participants"`
	MaxViewers      int    `yaml:"max_viewers"`
	// RequireToken: joining needs a token; left out, auth.require_token.
	RequireToken *bool `yaml:"require_token"`
	// Record: what is published in the room is recorded from the start
	// (needs the recording section). The admin API starts and stops
	// recording any room.
	Record bool `yaml:"record"`
}

// Recording writes what participants publish to files, one per
// participant: WebM (Opus, VP8, VP9) or Matroska (H264).
type Recording struct {
	// Dir holds the recordings, a directory per room.
	Dir string `yaml:"dir"`
	// MaxFileBytes ends a file at this size; 0: 1 GiB.
	MaxFileBytes int64 `yaml:"max_file_bytes"`
	// MaxDuration ends a file at this length; 0: 4h.
	MaxDuration time.Duration `yaml:"max_duration"`
}

// Auth configures join tokens: JWTs signed (HS256) with one of Keys.
type Auth struct {
	// Keys sign tokens; a token names its key in its "kid" header. Several
	// keys let a new one come in while tokens signed with the old one are
	// still in use.
	Keys []AuthKey `yaml:"keys"`
	// RequireToken makes rooms that are not listed require a token, and
	// listed rooms that do not say otherwise.
	RequireToken bool `yaml:"require_token"`
}

// AuthKey is one signing key.
type AuthKey struct {
	ID     string `yaml:"id"`
	Secret string `yaml:"secret"`
}

// MinAuthSecretLen is the shortest key secret accepted, in bytes.
const MinAuthSecretLen = 32

// Limits bound what clients may use of the server.
type Limits struct {
	// MaxRooms bounds the rooms that exist at once (listed ones included);
	// beyond it no room is created on demand.
	MaxRooms int `yaml:"max_rooms"`
	// MaxTracksPerParticipant bounds the tracks one participant publishes.
	MaxTracksPerParticipant int `yaml:"max_tracks_per_participant"`
	// MessagesPerSecond bounds the messages one socket sends, with bursts
	// of twice as many.
	MessagesPerSecond int `yaml:"messages_per_second"`
	// ConnectionsPerIP bounds the sockets open from one address at once
	// (an IPv4 address, or an IPv6 /64).
	ConnectionsPerIP int `yaml:"connections_per_ip"`
	// TrustedProxies are the reverse proxies (IPs or CIDRs) whose
	// X-Forwarded-For header is believed for connections_per_ip; without
	// them, everyone behind a proxy shares its limit.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// JoinTimeout is how long a socket may stay open without joining.
	JoinTimeout time.Duration `yaml:"join_timeout"`
}

// Admin protects the operator's endpoints: /debug (the inspection page,
// /debug/rooms, raw stats, pprof), /metrics and the /admin API.
type Admin struct {
	// Token is the credential they require: "Authorization: Bearer <token>"
	// (or, from a browser, HTTP Basic with the token as password). At least
	// MinAdminTokenLen characters; empty leaves the endpoints closed unless
	// Open is set.
	Token string `yaml:"token"`
	// Open serves them without a credential: only for a server that
	// nothing but its own machine can reach.
	Open bool `yaml:"open"`
}

// Cluster places rooms across the servers that share one Redis: each room
// is hosted by one node, and any node accepts any client, relaying its
// signaling to the room's node (docs/cluster.md).
type Cluster struct {
	Redis Redis `yaml:"redis"`
	// NodeID names this node, unique in the cluster: letters, digits, '.',
	// '_' and '-', at most 64. Empty: the host name and the listen port.
	NodeID string `yaml:"node_id"`
	// URL is where the other nodes reach this one's HTTP listener, e.g.
	// "http://10.0.0.5:8080". Empty: the listen address (the host name when
	// it listens on every address), with https when TLS is on.
	URL string `yaml:"url"`
}

// Redis is how to reach the cluster's Redis.
type Redis struct {
	Address  string `yaml:"address"` // host:port
	Password string `yaml:"password"`
	DB       int    `yaml:"db"`
	TLS      bool   `yaml:"tls"`
}

// MinAdminTokenLen is the shortest admin token accepted.
const MinAdminTokenLen = 16

// Enabled reports whether the operator's endpoints can be used at all.
func (a Admin) Enabled() bool { return a.Open || a.Token != "" }

// Defaults returns the values used for every key a file leaves out.
func Defaults() Config {
	return Config{
		Listen:    "127.0.0.1:8080",
		Log:       Log{Level: "info", Format: "text"},
		WebSocket: WebSocket{MaxMessageBytes: 64 << 10, PingInterval: 15 * time.Second},
		ICE:       ICE{ConnectTimeout: 15 * time.Second, TCP: true},
		TURN:      TURN{Enabled: true, Realm: "tessera", CredentialTTL: 12 * time.Hour, MaxAllocationsPerParticipant: 6},
		Rooms:     Rooms{OnDemand: true, MaxParticipants: 50, MaxViewers: 500, ResumeGrace: 15 * time.Second},
		Limits: Limits{
			MaxRooms:                1000,
			MaxTracksPerParticipant: 16,
			MessagesPerSecond:       50,
			ConnectionsPerIP:        32,
			TrustedProxies:          []string{},
			JoinTimeout:             10 * time.Second,
		},
		ShutdownTimeout: 5 * time.Second,
	}
}

// TokenRequired reports whether joining room needs a token: its own
// require_token when listed, else auth.require_token.
func (c Config) TokenRequired(room Room) bool {
	if room.RequireToken != nil {
		return *room.RequireToken
	}
	return c.Auth.RequireToken
}

// Room returns the settings of the named room and whether it may be used:
// listed rooms always, others when rooms are created on demand.
func (r Rooms) Room(name string) (Room, bool) {
	for _, room := range r.List {
		if room.Name == name {
			if room.MaxParticipants == 0 {
				room.MaxParticipants = r.MaxParticipants
			}
			if room.MaxViewers == 0 {
				room.MaxViewers = r.MaxViewers
			}
			return room, true
		}
	}
	if !r.OnDemand {
		return Room{}, false
	}
	return Room{Name: name, MaxParticipants: r.MaxParticipants, MaxViewers: r.MaxViewers}, true
}

// LoopbackOnly reports whether the listen address accepts connections from
// this machine only: a loopback IP or "localhost". An empty host (":8080")
// listens on every interface.
func (c Config) LoopbackOnly() bool {
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil || host == "" {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// Changed lists the keys whose values differ between a and b, as dotted
// paths in file order ("listen", "ice.udp_port", "rooms.list"); a list
// counts as one value.
func Changed(a, b Config) []string {
	var out []string
	changed(reflect.ValueOf(a), reflect.ValueOf(b), "", &out)
	return out
}

func changed(a, b reflect.Value, path string, out *[]string) {
	if a.Kind() != reflect.Struct {
		if !reflect.DeepEqual(a.Interface(), b.Interface()) {
			*out = append(*out, path)
		}
		return
	}
	t := a.Type()
	for i := range t.NumField() {
		if name, ok := yamlName(t.Field(i)); ok {
			changed(a.Field(i), b.Field(i), join(path, name), out)
		}
	}
}
