package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/tessera-rtc/tessera/cmd/sfu/inspect"
	"github.com/tessera-rtc/tessera/cmd/sfu/portmux"
	"github.com/tessera-rtc/tessera/configs"
	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/rooms/cluster"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/sfu/record"
	"github.com/tessera-rtc/tessera/signaling"
	"github.com/tessera-rtc/tessera/web"
	"golang.org/x/crypto/acme/autocert"
)

type logConfig = configs.Log

func loadConfig(path string) (configs.Config, error) {
	if path == "" {
		return configs.Embedded(), nil
	}
	return configs.Load(path)
}

// server is the wired application.
type server struct {
	cfg    configs.Config // owned by serve's goroutine, where reload replaces it
	log    *slog.Logger
	engine *sfu.Engine
	net    *network
	reg    *rooms.Local
	sig    *signaling.Handler
	http   *http.Server
	// cluster, when the configuration has a cluster section: this node's
	// directory and routing (cluster.go).
	cluster *clusterNode
	// rec writes recordings, when the configuration has a recording section.
	rec *record.Recorder

	// For SIGHUP (reload.go), set by run:
	configPath string                // the file to read again; empty: none
	override   func(*configs.Config) // the command line's overrides, applied again
	level      *slog.LevelVar        // the log level; nil: it cannot change
}

// newServer builds every part from the configuration, by hand: config, then
// the metrics registry, the media engine, the room registry, the signaling
// handler, the operator endpoints and the mux.
func newServer(cfg configs.Config, log *slog.Logger) (*server, error) {
	metrics := inspect.NewMetrics()
	ips := make([]netip.Prefix, 0, len(cfg.ICE.IPs))
	for _, s := range cfg.ICE.IPs {
		p, err := configs.ParsePrefix(s)
		if err != nil {
			return nil, err // validated already
		}
		ips = append(ips, p)
	}
	nw, err := listenNetwork(cfg, sfu.Config{
		Interfaces:       cfg.ICE.Interfaces,
		IPs:              ips,
		Loopback:         cfg.ICE.Loopback,
		NAT1To1IPs:       cfg.ICE.NAT1To1IPs,
		ConnectTimeout:   cfg.ICE.ConnectTimeout,
		MaxTracksPerPeer: cfg.Limits.MaxTracksPerParticipant,
		OnNegotiation:    metrics.ObserveNegotiation,
		Logger:           log,
	}, log)
	if err != nil {
		return nil, err
	}
	engine := nw.engine

	roomsCfg, err := roomsConfig(cfg)
	if err != nil {
		_ = nw.close()
		return nil, err
	}
	var (
		node *clusterNode
		reg  *rooms.Local
	)
	if cfg.Cluster != nil {
		var load clusterLoad
		node, err = newClusterNode(cfg.Cluster, nw.mux.Addr(), cfg.TLS.Enabled(), func() cluster.Load {
			n := 0
			for _, r := range reg.Rooms(context.Background()) {
				n += len(r.Participants)
			}
			return load.sample(n, engine.Totals().ForwardedPackets)
		}, log)
		if err != nil {
			_ = nw.close()
			return nil, err
		}
		roomsCfg.Placement = node.dir
		roomsCfg.ResumePrefix = node.dir.ID() + resumeSep
	}
	var rec *record.Recorder
	if rc := cfg.Recording; rc != nil {
		rec = record.New(record.Config{Dir: rc.Dir, MaxBytes: rc.MaxFileBytes, MaxDuration: rc.MaxDuration, Logger: log})
		roomsCfg.Recorder = rec
	}
	reg, err = rooms.NewLocal(roomsCfg, engine, log)
	if err != nil {
		_ = nw.close()
		if node != nil {
			node.close()
		}
		return nil, err
	}
	var router signaling.Router
	if node != nil {
		router = node
	}

	iceServers := make([]signaling.ICEServer, len(cfg.ICE.Servers))
	for i, s := range cfg.ICE.Servers {
		iceServers[i] = signaling.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential}
	}
	var relayServers func(string, string) []signaling.ICEServer
	if nw.relay != nil {
		relayServers = nw.relayServers(cfg.TURN)
	}
	sig := signaling.NewHandler(signaling.Config{
		AllowedOrigins:    cfg.WebSocket.AllowedOrigins,
		MaxMessageBytes:   cfg.WebSocket.MaxMessageBytes,
		PingInterval:      cfg.WebSocket.PingInterval,
		ICEServers:        iceServers,
		Relay:             relayServers,
		MessagesPerSecond: cfg.Limits.MessagesPerSecond,
		ConnectionsPerIP:  cfg.Limits.ConnectionsPerIP,
		TrustedProxies:    prefixes(cfg.Limits.TrustedProxies),
		JoinTimeout:       cfg.Limits.JoinTimeout,
		Router:            router,
		Logger:            log,
	}, reg)

	var setRecording func(context.Context, string, bool) error
	if rec != nil {
		setRecording = reg.SetRecording
	}
	var clusterView func(context.Context) (inspect.ClusterView, error)
	if node != nil {
		clusterView = node.view
	}
	ins, err := inspect.New(inspect.Config{
		Rooms: reg, Engine: engine, Signaling: sig, Metrics: metrics,
		Relay: nw.relayOf, Cluster: clusterView, Recorder: rec, SetRecording: setRecording,
		Token: cfg.Admin.Token, Open: cfg.Admin.Open, Logger: log,
	})
	if err != nil {
		_ = reg.Shutdown(context.Background()) // its listed rooms' goroutines
		_ = nw.close()
		if node != nil {
			node.close()
		}
		return nil, err
	}

	app := http.NewServeMux()
	app.Handle("GET /ws", sig)
	app.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	app.Handle("GET /", web.Handler())
	// The operator endpoints answer every method themselves (JSON errors),
	// so they sit beside the application rather than in its GET routes.
	mux := http.NewServeMux()
	mux.Handle("/", app)
	mux.Handle("/whip/", sig.WHIP()) // WHIP and WHEP answer their methods themselves (signaling/httpsession.go)
	mux.Handle("/whep/", sig.WHEP())
	ins.Register(mux)

	var handler http.Handler = mux
	if cfg.LoopbackOnly() && !cfg.TLS.Enabled() {
		handler = loopbackHosts(mux, prefixes(cfg.Limits.TrustedProxies))
	}
	hs := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if node != nil {
		node.start(reg)
	}
	return &server{cfg: cfg, log: log, engine: engine, net: nw, reg: reg, sig: sig, http: hs, cluster: node, rec: rec}, nil
}

// autocertManager gets and renews the certificate of a.Host from Let's
// Encrypt. Its TLSConfig answers the TLS-ALPN-01 challenge (ALPN protocol
// "acme-tls/1") on the server's own listener, so Let's Encrypt needs to
// reach port 443 only; HTTP-01 (port 80) is not used.
func autocertManager(a configs.Autocert) *autocert.Manager {
	return &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(a.Host), // no certificate for any other name
		Cache:      autocert.DirCache(a.CacheDir),
		Email:      a.Email,
	}
}

// roomsConfig is the room policy of cfg: limits, listed rooms, tokens.
func roomsConfig(cfg configs.Config) (rooms.Config, error) {
	var auth *rooms.Auth
	if len(cfg.Auth.Keys) > 0 {
		keys := make([]rooms.Key, len(cfg.Auth.Keys))
		for i, k := range cfg.Auth.Keys {
			keys[i] = rooms.Key{ID: k.ID, Secret: []byte(k.Secret)}
		}
		var err error
		if auth, err = rooms.NewAuth(keys...); err != nil {
			return rooms.Config{}, err
		}
	}
	listed := make([]rooms.RoomConfig, len(cfg.Rooms.List))
	for i, r := range cfg.Rooms.List {
		listed[i] = rooms.RoomConfig{Name: r.Name, MaxParticipants: r.MaxParticipants, MaxViewers: r.MaxViewers, RequireToken: cfg.TokenRequired(r), Record: r.Record}
	}
	return rooms.Config{
		OnDemand:        cfg.Rooms.OnDemand,
		MaxParticipants: cfg.Rooms.MaxParticipants,
		MaxViewers:      cfg.Rooms.MaxViewers,
		MaxRooms:        cfg.Limits.MaxRooms,
		ResumeGrace:     cfg.Rooms.ResumeGrace,
		Listed:          listed,
		Auth:            auth,
		RequireToken:    cfg.Auth.RequireToken,
	}, nil
}

// serve listens until ctx ends, reading the configuration again on SIGHUP
// (reload.go), then shuts down: participants are told and removed, sockets
// and PeerConnections closed, all within the configured shutdown timeout.
func (s *server) serve(ctx context.Context, ready func(addr string)) error {
	// SIGHUP re-reads the configuration file. Caught even without one, so
	// that it never ends the process; caught before the server says it
	// listens, so that whoever reads that line may send it.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)

	addr := s.net.mux.Addr()
	scheme := "http"
	if s.cfg.TLS.Enabled() {
		scheme = "https"
	}
	attrs := []any{"url", fmt.Sprintf("%s://%s/", scheme, addr)}
	if a := s.cfg.TLS.Autocert; a.Enabled() {
		attrs = append(attrs, "public_url", "https://"+a.Host+"/", "certificates", "Let's Encrypt (TLS-ALPN-01), cached in "+a.CacheDir)
	}
	attrs = append(attrs, s.net.describe(s.cfg)...)
	s.log.Info("server listening", attrs...)
	s.warnAdmin()
	s.warnAuth()

	errc := make(chan error, 2)
	go func() {
		if err := s.net.mux.Serve(); err != nil {
			errc <- fmt.Errorf("listen: %w", err)
		}
	}()
	go func() { errc <- s.http.Serve(s.net.mux.Listener(portmux.RouteHTTP)) }()
	if ready != nil {
		ready(addr.String())
	}

	for {
		select {
		case err := <-errc:
			_ = s.net.close()
			if s.cluster != nil {
				s.cluster.close()
			}
			return fmt.Errorf("http: %w", err)
		case <-hup:
			s.reload()
		case <-ctx.Done():
			return s.shutdown()
		}
	}
}

// warnAdmin says at startup how the operator endpoints are protected, and
// warns when they are exposed.
func (s *server) warnAdmin() {
	a := s.cfg.Admin
	switch {
	case a.Open && !s.cfg.LoopbackOnly():
		s.log.Warn("admin endpoints open to anyone who can reach this address: set admin.token, or listen on 127.0.0.1",
			"listen", s.cfg.Listen, "endpoints", "/debug /metrics /admin")
	case a.Open:
		s.log.Info("admin endpoints open on loopback", "endpoints", "/debug /metrics /admin")
	case a.Token == "":
		s.log.Info("admin endpoints disabled: set admin.token to use them", "endpoints", "/debug /metrics /admin")
	case !s.cfg.TLS.Enabled() && !s.cfg.LoopbackOnly():
		s.log.Warn("admin token sent in clear: serve over TLS to protect it", "listen", s.cfg.Listen)
	}
}

// warnAuth warns when anyone who can reach the server may open rooms.
func (s *server) warnAuth() {
	if s.cfg.Rooms.OnDemand && !s.cfg.Auth.RequireToken && !s.cfg.LoopbackOnly() {
		s.log.Warn("anyone who can reach this address can create rooms: set auth.require_token (docs/security.md)",
			"listen", s.cfg.Listen)
	}
}

func (s *server) shutdown() error {
	start := time.Now()
	s.log.Info("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	leave := s.reg.Shutdown // participants told (1001) and removed, peers closed
	if s.cluster != nil {
		// A node leaving a cluster: its rooms are released, and their
		// participants told to join again (1012), on other nodes.
		s.cluster.drain(ctx)
		leave = s.reg.Drain
	}
	errs := []error{
		leave(ctx),
		s.sig.Close(ctx), // sockets not yet joined, and relayed ones
		s.http.Shutdown(ctx),
		s.net.close(),
	}
	if s.cluster != nil {
		s.cluster.close()
	}
	if s.rec != nil {
		s.rec.Close() // the rooms' files are finished
	}
	err := errors.Join(errs...)
	s.log.Info("shut down", "took", time.Since(start).Round(time.Millisecond).String(), "err", err)
	return err
}

// loopbackHosts serves only requests naming this machine in their Host
// header. A server on loopback without TLS trusts whoever reaches it (its
// operator endpoints may be open); a web page elsewhere could still make
// the browser reach it under a name of its own that resolves to 127.0.0.1
// (DNS rebinding), and the browser would count it as that page's origin.
// (With TLS, such a name gets no certificate.) A reverse proxy on this
// machine passing the public Host is let through when it is trusted
// (limits.trusted_proxies).
func loopbackHosts(next http.Handler, trusted []netip.Prefix) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isLoopbackHost(r.Host) && !signaling.FromTrustedProxy(r, trusted) {
			http.Error(w, "this server answers only to localhost, 127.0.0.1 or [::1]", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isLoopbackHost(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// prefixes parses IPs and CIDRs that the configuration validated.
func prefixes(list []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(list))
	for _, s := range list {
		if p, err := configs.ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}
