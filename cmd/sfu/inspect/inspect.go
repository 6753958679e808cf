// Package inspect serves the server's operator endpoints:
//
//   - /debug: a self-refreshing page showing every room, participant,
//     published track and subscription with small time graphs, the server's
//     own chrome://webrtc-internals;
//   - /debug/rooms: the same as JSON;
//   - /debug/participants/{room}/{id}/stats: pion's GetStats of one
//     participant's PeerConnection;
//   - /debug/pprof/: Go's profiler;
//   - /metrics: Prometheus metrics;
//   - /admin/rooms: list rooms, close a room, remove a participant.
//
// All of them require the admin token (see Config.Token) unless the
// configuration opens them.
package inspect

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"net/netip"
	"time"

	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/sfu/record"
	"github.com/tessera-rtc/tessera/signaling"
)

// Registry is what the endpoints need of the room registry (*rooms.Local).
type Registry interface {
	Rooms(ctx context.Context) []rooms.RoomInfo
	Participants(ctx context.Context, room string) ([]*rooms.Participant, error)
	Participant(ctx context.Context, room, id string) (*rooms.Participant, error)
	Remove(ctx context.Context, room, id string) error
	CloseRoom(ctx context.Context, room string) (int, error)
}

// Engine is the media engine's counters (*sfu.Engine).
type Engine interface {
	Totals() sfu.Totals
}

// Signaling is the signaling endpoint's counters (*signaling.Handler).
type Signaling interface {
	ErrorCounts() map[signaling.Code]uint64
	Sessions() int
}

// Config wires the endpoints to the server.
type Config struct {
	Rooms     Registry
	Engine    Engine
	Signaling Signaling
	// Metrics is the Prometheus registry /metrics serves; New adds the
	// collectors reading Rooms, Engine and Signaling to it.
	Metrics *Metrics
	// Relay, when set, says over which transport a client reaches the
	// embedded TURN server, given the relayed address of its allocation
	// ("udp", "tcp", "tls").
	Relay func(relayed netip.AddrPort) (transport string, ok bool)
	// Token is the admin credential every endpoint requires, sent as
	// "Authorization: Bearer <token>" or as the password of HTTP Basic.
	// Empty (and Open false): every request is refused.
	Token string
	// Open serves the endpoints without a credential.
	Open bool
	// Cluster, in a cluster, describes every node and its rooms: /admin/rooms
	// lists them all, each with its node, and /debug and /metrics show them.
	Cluster func(ctx context.Context) (ClusterView, error)
	// Recorder, when recording is configured, lists the recordings, and
	// SetRecording starts (on) or stops a room's.
	Recorder     *record.Recorder
	SetRecording func(ctx context.Context, room string, on bool) error
	Logger       *slog.Logger
}

// ClusterView is the cluster as this node sees it.
type ClusterView struct {
	Node    string           `json:"node"`    // this node
	Healthy bool             `json:"healthy"` // its last renewal reached Redis
	Nodes   []NodeSummary    `json:"nodes"`
	Rooms   []rooms.RoomInfo `json:"-"`
}

// NodeSummary is a live node of the cluster.
type NodeSummary struct {
	ID           string  `json:"id"`
	URL          string  `json:"url"`
	Participants int     `json:"participants"`
	Rooms        int     `json:"rooms"`
	PacketsPerS  float64 `json:"packetsPerSecond"` // forwarded
	CPU          float64 `json:"cpu"`              // cores busy
	Draining     bool    `json:"draining,omitempty"`
}

// Server is the operator endpoints, as one http.Handler for the paths
// Register mounts.
type Server struct {
	cfg     Config
	log     *slog.Logger
	started time.Time
	auth    authenticator
	mux     *http.ServeMux
}

// New builds the endpoints. It fails only if the metrics collectors cannot
// be registered (registered twice).
func New(cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if err := cfg.Metrics.register(newStateCollector(cfg.Rooms, cfg.Engine, cfg.Signaling, cfg.Cluster)); err != nil {
		return nil, err
	}
	s := &Server{
		cfg: cfg, log: cfg.Logger, started: time.Now(),
		auth: newAuthenticator(cfg.Token, cfg.Open),
		mux:  http.NewServeMux(),
	}
	s.routes()
	return s, nil
}

// Register mounts the endpoints on mux: /debug, /debug/, /metrics and
// /admin/. The mux must not have a pattern that conflicts with them: a
// method-less "/" (or none) is fine, "GET /" is not.
func (s *Server) Register(mux *http.ServeMux) {
	for _, p := range []string{"/debug", "/debug/", "/metrics", "/admin/"} {
		mux.Handle(p, s)
	}
}

// ServeHTTP checks the credential, then serves the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.auth.allow(w, r, s.log) {
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

func (s *Server) routes() {
	m := s.mux
	m.Handle("/debug", only(page(), http.MethodGet))
	m.Handle("/debug/{$}", http.RedirectHandler("../debug", http.StatusMovedPermanently))
	m.Handle("/debug/static/", only(staticFiles(), http.MethodGet))
	m.Handle("/debug/rooms", only(http.HandlerFunc(s.serveRooms), http.MethodGet))
	m.Handle("/debug/participants/{room}/{id}/stats", only(http.HandlerFunc(s.serveRawStats), http.MethodGet))

	m.HandleFunc("/debug/pprof/", pprof.Index)
	m.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	m.HandleFunc("/debug/pprof/profile", pprof.Profile)
	m.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	m.HandleFunc("/debug/pprof/trace", pprof.Trace)

	m.Handle("/metrics", only(s.cfg.Metrics.handler(s.log), http.MethodGet))

	m.Handle("/admin/rooms", only(http.HandlerFunc(s.listRooms), http.MethodGet))
	m.Handle("/admin/rooms/{room}", only(http.HandlerFunc(s.closeRoom), http.MethodDelete))
	m.Handle("/admin/rooms/{room}/participants/{id}", only(http.HandlerFunc(s.removeParticipant), http.MethodDelete))
	m.HandleFunc("PUT /admin/rooms/{room}/recording", func(w http.ResponseWriter, r *http.Request) { s.setRecording(w, r, true) })
	m.HandleFunc("DELETE /admin/rooms/{room}/recording", func(w http.ResponseWriter, r *http.Request) { s.setRecording(w, r, false) })
	m.Handle("/admin/recordings", only(http.HandlerFunc(s.listRecordings), http.MethodGet))

	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, codeNotFound, "no endpoint "+r.URL.Path)
	})
}

// only restricts h to a method (GET also allows HEAD), answering others
// with a JSON 405.
func only(h http.Handler, method string) http.Handler {
	allow := method
	if method == http.MethodGet {
		allow = "GET, HEAD"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method && (method != http.MethodGet || r.Method != http.MethodHead) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, codeMethodNotAllowed, r.Method+" "+r.URL.Path+": allowed: "+allow)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// registryError answers an error of the registry about room: 404 for an
// unknown room or participant, including a room that closed while it was
// asked (the registry then gives no sentinel error), 503 while shutting
// down or when the request was cancelled, 500 otherwise.
func (s *Server) registryError(w http.ResponseWriter, r *http.Request, room string, err error) {
	status, code := http.StatusInternalServerError, codeInternal
	switch {
	case errors.Is(err, rooms.ErrRoomNotFound), errors.Is(err, rooms.ErrNotFound):
		status, code = http.StatusNotFound, codeNotFound
	case errors.Is(err, rooms.ErrNoRecorder):
		status, code = http.StatusConflict, codeConflict
	case errors.Is(err, rooms.ErrShutdown), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		status, code = http.StatusServiceUnavailable, codeUnavailable
	case !s.roomExists(r.Context(), room):
		status, code = http.StatusNotFound, codeNotFound
		err = fmt.Errorf("%w: %q (%v)", rooms.ErrRoomNotFound, room, err)
	default:
		s.log.Error("admin request failed", "path", r.URL.Path, "err", err)
	}
	writeError(w, status, code, err.Error())
}

func (s *Server) roomExists(ctx context.Context, room string) bool {
	for _, info := range s.cfg.Rooms.Rooms(ctx) {
		if info.Name == room {
			return true
		}
	}
	return false
}
