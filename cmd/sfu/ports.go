package main

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"syscall"

	"github.com/tessera-rtc/tessera/cmd/sfu/portmux"
	"github.com/tessera-rtc/tessera/configs"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/sfu/relay"
	"github.com/tessera-rtc/tessera/signaling"
)

// Every network, on one port number. The listen port carries HTTP(S) and
// the WebSocket, ICE over TCP, TURN over TCP and TURN over TLS, told apart
// by their first bytes (portmux). The UDP port of the same number (unless
// ice.udp_port says otherwise) carries the media and TURN over UDP. A
// client that can reach the page can reach the media.

// network is what listens: the shared TCP port, the media engine on the UDP
// port, and the TURN server on both.
type network struct {
	mux    *portmux.Mux
	engine *sfu.Engine
	relay  *relay.Server // nil: TURN disabled
	tls    *tls.Config   // what the port terminates TLS with; nil: no TLS
	ownTLS bool          // with a certificate of the server's own making
}

// listenNetwork binds the ports and starts the media engine and the TURN
// server on them. With ice.udp_port 0 the UDP port takes the TCP port's
// number; when the OS picked the TCP port (listen port 0) and that number
// is taken for UDP, it tries another.
func listenNetwork(cfg configs.Config, sfuCfg sfu.Config, log *slog.Logger) (*network, error) {
	tlsCfg, own, err := portTLS(cfg)
	if err != nil {
		return nil, err
	}
	_, port, _ := net.SplitHostPort(cfg.Listen)
	pickAny := port == "0"
	for attempt := 0; ; attempt++ {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("listen: %w", err)
		}
		tcpPort := ln.Addr().(*net.TCPAddr).Port
		// With a certificate of its own, the port serves HTTP in clear too:
		// the embedded default's page is http://127.0.0.1:8080/.
		mux := portmux.New(portmux.Config{Listener: ln, TLS: tlsCfg, PlainHTTP: !cfg.TLS.Enabled(), Logger: log})
		sc := sfuCfg
		switch sc.UDPPort = cfg.ICE.UDPPort; sc.UDPPort {
		case 0:
			sc.UDPPort = tcpPort
		case -1:
			sc.UDPPort = 0 // ephemeral ports per participant
		}
		sc.ShareUDP = cfg.TURN.Enabled
		if cfg.ICE.TCP {
			sc.ICETCP = mux.Listener(portmux.RouteICETCP)
		}
		engine, err := sfu.NewEngine(sc)
		if err != nil {
			_ = mux.Close()
			if pickAny && cfg.ICE.UDPPort == 0 && errors.Is(err, syscall.EADDRINUSE) && attempt < 20 {
				continue
			}
			if cfg.ICE.UDPPort == 0 {
				return nil, fmt.Errorf("%w (the UDP port takes the listen port's number: free it, or set ice.udp_port)", err)
			}
			return nil, err
		}
		n := &network{mux: mux, engine: engine, tls: tlsCfg, ownTLS: own}
		if cfg.TURN.Enabled {
			if n.relay, err = startRelay(cfg, n, log); err != nil {
				_ = engine.Close()
				_ = mux.Close()
				return nil, err
			}
		}
		return n, nil
	}
}

// portTLS is the TLS the shared port terminates: the configured
// certificate (files or Let's Encrypt); without one, a self-signed
// certificate when TURN runs, so that TURN over TLS is offered.
func portTLS(cfg configs.Config) (*tls.Config, bool, error) {
	protos := []string{"http/1.1", "stun.turn"}
	switch {
	case cfg.TLS.Autocert.Enabled():
		c := autocertManager(cfg.TLS.Autocert).TLSConfig()
		c.NextProtos = append(protos, "acme-tls/1") // the challenge is answered in the handshake
		return c, false, nil
	case cfg.TLS.Cert != "":
		cert, err := tls.LoadX509KeyPair(cfg.TLS.Cert, cfg.TLS.Key)
		if err != nil {
			return nil, false, fmt.Errorf("tls: %w", err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: protos}, false, nil
	case cfg.TURN.Enabled:
		hosts := []string{"localhost", "127.0.0.1", "::1"}
		if h, _, err := net.SplitHostPort(cfg.Listen); err == nil && h != "" && !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
		cert, err := portmux.SelfSigned(hosts...)
		if err != nil {
			return nil, false, fmt.Errorf("tls: %w", err)
		}
		return &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: protos}, true, nil
	}
	return nil, false, nil
}

// startRelay runs TURN on the shared UDP sockets and the shared TCP port.
func startRelay(cfg configs.Config, n *network, log *slog.Logger) (*relay.Server, error) {
	secret := cfg.TURN.Secret
	if secret == "" {
		b := make([]byte, 32)
		_, _ = rand.Read(b)
		secret = base64.RawStdEncoding.EncodeToString(b)
	}
	var media []netip.AddrPort
	for _, a := range n.engine.LocalAddrs() {
		if ua, ok := a.(*net.UDPAddr); ok {
			media = append(media, netip.AddrPortFrom(netip.MustParseAddr(ua.IP.String()).Unmap(), uint16(ua.Port)))
		}
	}
	rc := relay.Config{
		Realm: cfg.TURN.Realm, Secret: secret, TTL: cfg.TURN.CredentialTTL,
		Media: media, Public: publicIPs(cfg.ICE.NAT1To1IPs, media),
		MaxPerParticipant: cfg.TURN.MaxAllocationsPerParticipant,
		Active:            n.engine.HasPeer,
		UDP:               n.engine.SharedUDP(),
		TCP:               n.mux.Listener(portmux.RouteTURN),
		Logger:            log,
	}
	if n.tls != nil {
		rc.TLS = n.mux.Listener(portmux.RouteTURNTLS)
	}
	s, err := relay.New(rc)
	if err != nil {
		return nil, fmt.Errorf("turn: %w", err)
	}
	return s, nil
}

// publicIPs maps each announced public IP to the media IP behind it: the
// first one of its family that is not loopback.
func publicIPs(nat []string, media []netip.AddrPort) map[netip.Addr]netip.Addr {
	out := map[netip.Addr]netip.Addr{}
	for _, s := range nat {
		pub, err := netip.ParseAddr(s)
		if err != nil {
			continue // validated already
		}
		for _, m := range media {
			if m.Addr().Is4() == pub.Unmap().Is4() && !m.Addr().IsLoopback() {
				out[pub.Unmap()] = m.Addr()
				break
			}
		}
	}
	return out
}

// relayServers is signaling's Relay: the embedded TURN server's URLs, with
// credentials for one participant. Clients reach TURN at turn.host, or at
// the host they reached the page by.
func (n *network) relayServers(cfg configs.TURN) func(participant, host string) []signaling.ICEServer {
	tcpPort := strconv.Itoa(n.mux.Addr().(*net.TCPAddr).Port)
	udpPort := ""
	if addrs := n.engine.LocalAddrs(); len(addrs) > 0 {
		udpPort = strconv.Itoa(addrs[0].(*net.UDPAddr).Port)
	}
	return func(participant, requestHost string) []signaling.ICEServer {
		host := cfg.Host
		if host == "" {
			host = requestHost
			if h, _, err := net.SplitHostPort(requestHost); err == nil {
				host = h
			}
			host = trimBrackets(host)
		}
		if host == "" {
			return nil
		}
		if ip, err := netip.ParseAddr(host); err == nil && ip.Is6() {
			host = "[" + host + "]"
		}
		var urls []string
		if udpPort != "" {
			urls = append(urls, "turn:"+host+":"+udpPort+"?transport=udp")
		}
		urls = append(urls, "turn:"+host+":"+tcpPort+"?transport=tcp")
		if n.tls != nil {
			urls = append(urls, "turns:"+host+":"+tcpPort+"?transport=tcp")
		}
		user, pass, _ := n.relay.Credentials(participant)
		return []signaling.ICEServer{{URLs: urls, Username: user, Credential: pass}}
	}
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// close stops the TURN server, the engine's ports and the shared port.
// Peers must be closed first.
func (n *network) close() error {
	var errs []error
	if n.relay != nil {
		errs = append(errs, n.relay.Close())
	}
	errs = append(errs, n.engine.Close(), n.mux.Close())
	return errors.Join(errs...)
}

// describe says, for the startup log line, what listens where.
func (n *network) describe(cfg configs.Config) []any {
	var media []string
	for _, a := range n.engine.LocalAddrs() {
		media = append(media, a.String())
	}
	out := []any{"media_udp", media, "ice_tcp", cfg.ICE.TCP}
	switch {
	case n.relay == nil:
		out = append(out, "turn", "off")
	case n.tls != nil:
		out = append(out, "turn", "udp tcp tls")
	default:
		out = append(out, "turn", "udp tcp")
	}
	if n.ownTLS {
		out = append(out, "tls_certificate", "self-signed (TURN over TLS on this port)")
	}
	return out
}

// relayOf tells inspection which relay transport a server pair's far end
// is an allocation of.
func (n *network) relayOf(remote netip.AddrPort) (string, bool) {
	if n.relay == nil {
		return "", false
	}
	a, ok := n.relay.ByRelayAddr(remote)
	return a.Transport, ok
}
