package configs

import (
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// validator collects problems, attaching the line of each key when known.
type validator struct {
	lines    map[string]int
	problems []Problem
}

func (v *validator) addf(path, format string, args ...any) {
	v.problems = append(v.problems, Problem{Line: v.line(path), Path: path, Msg: fmt.Sprintf(format, args...)})
}

// line finds the line of path or, failing that, of its nearest parent.
func (v *validator) line(path string) int {
	for path != "" {
		if l, ok := v.lines[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

func (c Config) validate(name string, lines map[string]int) error {
	v := &validator{lines: lines}

	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		v.addf("listen", "%q is not a host:port address (e.g. \"127.0.0.1:8080\" or \":8443\")", c.Listen)
	}

	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		v.addf("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "text", "json":
	default:
		v.addf("log.format", "%q is not one of text, json", c.Log.Format)
	}

	if (c.TLS.Cert == "") != (c.TLS.Key == "") {
		v.addf("tls", "cert and key must be given together")
	}
	c.validateAutocert(v)

	for i, o := range c.WebSocket.AllowedOrigins {
		if o == "*" {
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			v.addf(fmt.Sprintf("websocket.allowed_origins[%d]", i), "%q is not an origin like \"https://meet.example.org\" (or \"*\")", o)
		}
	}
	if c.WebSocket.MaxMessageBytes < 1024 {
		v.addf("websocket.max_message_bytes", "%d is too small (at least 1024: SDP offers are several KiB)", c.WebSocket.MaxMessageBytes)
	}
	if c.WebSocket.PingInterval < time.Second {
		v.addf("websocket.ping_interval", "%s is too short (at least 1s)", c.WebSocket.PingInterval)
	}

	if c.ICE.UDPPort < -1 || c.ICE.UDPPort > 65535 {
		v.addf("ice.udp_port", "%d is not a port (0-65535; 0 takes the listen port's number, -1 gives each participant ephemeral ports)", c.ICE.UDPPort)
	}
	if c.ICE.UDPPort == -1 && c.TURN.Enabled {
		v.addf("ice.udp_port", "-1 (ephemeral ports) leaves the embedded TURN server no media port to relay to: set a port, or turn.enabled: false")
	}
	if c.TURN.Enabled {
		if c.TURN.Secret != "" && len(c.TURN.Secret) < MinTURNSecretLen {
			v.addf("turn.secret", "too short (%d bytes, at least %d)", len(c.TURN.Secret), MinTURNSecretLen)
		}
		if strings.TrimSpace(c.TURN.Realm) == "" {
			v.addf("turn.realm", "empty")
		}
		if c.TURN.CredentialTTL < time.Minute || c.TURN.CredentialTTL > 7*24*time.Hour {
			v.addf("turn.credential_ttl", "%s is out of range (1m to 168h)", c.TURN.CredentialTTL)
		}
		if c.TURN.MaxAllocationsPerParticipant < 1 {
			v.addf("turn.max_allocations_per_participant", "%d must be at least 1", c.TURN.MaxAllocationsPerParticipant)
		}
		if h := c.TURN.Host; h != "" && (strings.ContainsAny(h, "/:?@ ") && net.ParseIP(h) == nil) {
			v.addf("turn.host", "%q is not a host name or IP address (no scheme or port)", h)
		}
	}
	for i, name := range c.ICE.Interfaces {
		if strings.TrimSpace(name) == "" {
			v.addf(fmt.Sprintf("ice.interfaces[%d]", i), "empty interface name")
		}
	}
	for i, s := range c.ICE.IPs {
		if _, err := ParsePrefix(s); err != nil {
			v.addf(fmt.Sprintf("ice.ips[%d]", i), "%q is not an IP address or CIDR", s)
		}
	}
	for i, s := range c.ICE.NAT1To1IPs {
		if _, err := netip.ParseAddr(s); err != nil {
			v.addf(fmt.Sprintf("ice.nat_1to1_ips[%d]", i), "%q is not an IP address", s)
		}
	}
	for i, s := range c.ICE.Servers {
		path := fmt.Sprintf("ice.servers[%d]", i)
		if len(s.URLs) == 0 {
			v.addf(path, "urls is empty")
		}
		for j, u := range s.URLs {
			scheme, _, _ := strings.Cut(u, ":")
			switch scheme {
			case "stun", "stuns":
			case "turn", "turns":
				if s.Username == "" || s.Credential == "" {
					v.addf(path, "TURN server %q needs username and credential", u)
				}
			default:
				v.addf(fmt.Sprintf("%s.urls[%d]", path, j), "%q is not a stun:, stuns:, turn: or turns: URL", u)
			}
		}
	}
	if c.ICE.ConnectTimeout < time.Second {
		v.addf("ice.connect_timeout", "%s is too short (at least 1s)", c.ICE.ConnectTimeout)
	}

	if c.Rooms.MaxParticipants < 1 {
		v.addf("rooms.max_participants", "%d must be at least 1", c.Rooms.MaxParticipants)
	}
	if c.Rooms.MaxViewers < 1 || c.Rooms.MaxViewers > maxViewers {
		v.addf("rooms.max_viewers", "%d is out of range (1-%d)", c.Rooms.MaxViewers, maxViewers)
	}
	if !c.Rooms.OnDemand && len(c.Rooms.List) == 0 {
		v.addf("rooms", "no room can be joined: list rooms, or set on_demand: true")
	}
	seen := map[string]bool{}
	for i, r := range c.Rooms.List {
		path := fmt.Sprintf("rooms.list[%d]", i)
		switch {
		case r.Name == "":
			v.addf(path, "name is empty")
		case seen[r.Name]:
			v.addf(path+".name", "room %q is listed twice", r.Name)
		}
		seen[r.Name] = true
		if r.MaxParticipants < 0 {
			v.addf(path+".max_participants", "%d must be at least 1 (or left out to use rooms.max_participants)", r.MaxParticipants)
		}
		if r.MaxViewers < 0 || r.MaxViewers > maxViewers {
			v.addf(path+".max_viewers", "%d is out of range (1-%d, or left out to use rooms.max_viewers)", r.MaxViewers, maxViewers)
		}
		if r.Record && (c.Recording == nil || c.Recording.Dir == "") {
			v.addf(path+".record", "the room is recorded but recording.dir is not set")
		}
		if r.RequireToken != nil && *r.RequireToken && len(c.Auth.Keys) == 0 {
			v.addf(path+".require_token", "tokens are required but auth.keys is empty: no token could be verified")
		}
	}
	if c.Rooms.ResumeGrace < 0 || c.Rooms.ResumeGrace > maxResumeGrace {
		v.addf("rooms.resume_grace", "%s is out of range (0 disables resuming; at most %s)", c.Rooms.ResumeGrace, maxResumeGrace)
	}

	c.validateAuth(v)
	c.validateLimits(v)

	switch {
	case c.Admin.Open && c.Admin.Token != "":
		v.addf("admin", "open and token exclude each other: open serves without the token")
	case c.Admin.Token != "" && len(c.Admin.Token) < MinAdminTokenLen:
		v.addf("admin.token", "too short (%d characters; at least %d)", len(c.Admin.Token), MinAdminTokenLen)
	case strings.ContainsFunc(c.Admin.Token, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
		v.addf("admin.token", "may hold only printable ASCII characters, no spaces")
	}

	c.validateCluster(v)
	if rec := c.Recording; rec != nil {
		if rec.Dir == "" {
			v.addf("recording.dir", "is empty: say where recordings go")
		}
		if rec.MaxFileBytes < 0 {
			v.addf("recording.max_file_bytes", "%d must not be negative", rec.MaxFileBytes)
		}
		if rec.MaxDuration < 0 {
			v.addf("recording.max_duration", "%s must not be negative", rec.MaxDuration)
		}
	}

	if c.ShutdownTimeout < 0 {
		v.addf("shutdown_timeout", "%s must not be negative", c.ShutdownTimeout)
	}

	if len(v.problems) == 0 {
		return nil
	}
	return &Error{File: name, Problems: v.problems}
}

// ParsePrefix parses an IP address (as a single-address prefix) or a CIDR.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// maxResumeGrace bounds rooms.resume_grace: a participant away longer than
// this is gone, and its tracks should not stay announced.
const maxResumeGrace = 10 * time.Minute

// validateAutocert checks tls.autocert: a DNS name, a cache directory, and
// a listener Let's Encrypt can reach on port 443.
func (c Config) validateAutocert(v *validator) {
	a := c.TLS.Autocert
	if !a.Enabled() {
		if a.CacheDir != "" || a.Email != "" {
			v.addf("tls.autocert", "host is required: the DNS name to get a certificate for")
		}
		return
	}
	if c.TLS.Cert != "" || c.TLS.Key != "" {
		v.addf("tls", "cert/key and autocert exclude each other: use certificate files or Let's Encrypt, not both")
	}
	if !validHostname(a.Host) {
		v.addf("tls.autocert.host", "%q is not a DNS name like \"meet.example.org\" (no IP address, port or wildcard)", a.Host)
	}
	if a.CacheDir == "" {
		v.addf("tls.autocert", "cache_dir is required: certificates must survive restarts (Let's Encrypt limits how many a name gets per week)")
	}
	if a.Email != "" {
		if addr, err := mail.ParseAddress(a.Email); err != nil || addr.Address != a.Email {
			v.addf("tls.autocert.email", "%q is not an email address", a.Email)
		}
	}
	if _, port, err := net.SplitHostPort(c.Listen); err == nil && port != "443" {
		v.addf("tls.autocert", "listen %q: Let's Encrypt's TLS-ALPN-01 challenge connects to port 443, so the server must listen on port 443 (e.g. \":443\")", c.Listen)
	} else if err == nil && c.LoopbackOnly() {
		v.addf("tls.autocert", "listen %q is reachable from this machine only: Let's Encrypt could not reach it", c.Listen)
	}
}

// validHostname accepts DNS names of two labels or more: letters, digits and
// inner hyphens, 63 bytes a label, 253 in all.
func validHostname(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if len(h) == 0 || len(h) > 253 {
		return false
	}
	if _, err := netip.ParseAddr(h); err == nil {
		return false
	}
	labels := strings.Split(h, ".")
	if len(labels) < 2 {
		return false
	}
	for _, l := range labels {
		if len(l) == 0 || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' {
			return false
		}
		for _, r := range l {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// validateAuth checks the signing keys and that required tokens can be verified.
func (c Config) validateAuth(v *validator) {
	ids := map[string]bool{}
	for i, k := range c.Auth.Keys {
		path := fmt.Sprintf("auth.keys[%d]", i)
		switch {
		case k.ID == "":
			v.addf(path, "id is empty")
		case len(k.ID) > 64 || strings.ContainsFunc(k.ID, func(r rune) bool { return r <= ' ' || r >= 0x7f }):
			v.addf(path+".id", "%q: at most 64 printable ASCII characters, no spaces", k.ID)
		case ids[k.ID]:
			v.addf(path+".id", "key id %q is used twice", k.ID)
		}
		ids[k.ID] = true
		if len(k.Secret) < MinAuthSecretLen {
			v.addf(path+".secret", "too short (%d bytes; at least %d, e.g. from `openssl rand -hex 32`)", len(k.Secret), MinAuthSecretLen)
		}
	}
	if c.Auth.RequireToken && len(c.Auth.Keys) == 0 {
		v.addf("auth.require_token", "tokens are required but auth.keys is empty: no token could be verified")
	}
}

// validateLimits checks that every limit is within a range a real
// deployment could want.
func (c Config) validateLimits(v *validator) {
	l := c.Limits
	between := func(path string, n, lo, hi int) {
		if n < lo || n > hi {
			v.addf(path, "%d is out of range (%d-%d)", n, lo, hi)
		}
	}
	between("limits.max_rooms", l.MaxRooms, 1, 1_000_000)
	if n := len(c.Rooms.List); l.MaxRooms >= 1 && n > l.MaxRooms {
		v.addf("limits.max_rooms", "%d is fewer than the %d listed rooms (they count)", l.MaxRooms, n)
	}
	// Each track is an m= section of every subscriber's SDP (at most 128 KiB).
	between("limits.max_tracks_per_participant", l.MaxTracksPerParticipant, 1, 64)
	// Joining sends a burst: join, offer and a dozen candidates.
	between("limits.messages_per_second", l.MessagesPerSecond, 10, 10_000)
	between("limits.connections_per_ip", l.ConnectionsPerIP, 1, 100_000)
	for i, p := range l.TrustedProxies {
		if _, err := ParsePrefix(p); err != nil {
			v.addf(fmt.Sprintf("limits.trusted_proxies[%d]", i), "%q is not an IP address or CIDR", p)
		}
	}
	if l.JoinTimeout < time.Second || l.JoinTimeout > 10*time.Minute {
		v.addf("limits.join_timeout", "%s is out of range (1s-10m)", l.JoinTimeout)
	}
}

// validateCluster checks the cluster section, when there is one.
func (c Config) validateCluster(v *validator) {
	cl := c.Cluster
	if cl == nil {
		return
	}
	if host, port, err := net.SplitHostPort(cl.Redis.Address); err != nil || host == "" || port == "" {
		v.addf("cluster.redis.address", "%q is not a host:port address (e.g. \"127.0.0.1:6379\")", cl.Redis.Address)
	}
	if cl.Redis.DB < 0 || cl.Redis.DB > 15 {
		v.addf("cluster.redis.db", "%d is not a Redis database number (0-15)", cl.Redis.DB)
	}
	if cl.NodeID != "" && !ValidNodeID(cl.NodeID) {
		v.addf("cluster.node_id", "%q may hold only letters, digits, '.', '_' and '-' (at most 64)", cl.NodeID)
	}
	if cl.URL != "" {
		u, err := url.Parse(cl.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || (u.Path != "" && u.Path != "/") {
			v.addf("cluster.url", "%q is not a URL like \"http://10.0.0.5:8080\"", cl.URL)
		}
	}
}

// ValidNodeID reports whether id can name a cluster node.
func ValidNodeID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// maxViewers bounds rooms.max_viewers: each viewer is a PeerConnection,
// and a node carries some thousands.
const maxViewers = 100000
