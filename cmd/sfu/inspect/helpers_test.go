package inspect_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/pion/interceptor"
	"github.com/pion/interceptor/pkg/stats"
	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/cmd/sfu/inspect"
	st "github.com/tessera-rtc/tessera/internal/signalingtest"
)

// env is an in-process server (signalingtest) with the operator endpoints
// mounted beside it, on a server of their own.
type env struct {
	srv     *st.Server
	metrics *inspect.Metrics
	ins     *inspect.Server
	base    string // http://host:port of the operator endpoints
}

// newEnv starts the server with opts (the first, if any) and the
// endpoints with cfg.
func newEnv(t *testing.T, cfg inspect.Config, opts ...st.Options) *env {
	t.Helper()
	m := inspect.NewMetrics()
	var o st.Options
	if len(opts) > 0 {
		o = opts[0]
	}
	o.SFU.OnNegotiation = m.ObserveNegotiation
	srv := st.NewServer(t, o)
	cfg.Rooms, cfg.Engine, cfg.Signaling, cfg.Metrics = srv.Registry, srv.Engine, srv.Handler, m
	if cfg.Logger == nil {
		cfg.Logger = st.Logger()
	}
	ins, err := inspect.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ins.Register(mux)
	hs := httptest.NewServer(mux)
	t.Cleanup(hs.Close)
	return &env{srv: srv, metrics: m, ins: ins, base: hs.URL}
}

// request sends a request with an optional "Authorization" value and
// returns the status, headers and body.
func request(t *testing.T, method, url, auth string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the body: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, body
}

// getJSON GETs url (open endpoints) and decodes a 200 answer into T.
func getJSON[T any](t *testing.T, url string) T {
	t.Helper()
	status, h, body := request(t, http.MethodGet, url, "")
	if status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, status, body)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Fatalf("GET %s: Content-Type %q", url, ct)
	}
	return decode[T](t, body)
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decoding %T: %v\n%s", v, err, body)
	}
	return v
}

// errorCode decodes a JSON error body.
func errorCode(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not a JSON error body (%v): %s", err, body)
	}
	return e.Error.Code
}

// statsAPI is a client API like client.DefaultAPI that also keeps the
// stats interceptor's Getter of the PeerConnection it makes. pion's GetStats
// reports no outbound-rtp; the same interceptor's counters of sent packets
// are what a browser would report there.
type statsAPI struct {
	API    *webrtc.API
	mu     sync.Mutex
	getter stats.Getter // of the last PeerConnection made
}

func newStatsAPI(t *testing.T) *statsAPI {
	t.Helper()
	s := &statsAPI{}
	m := &webrtc.MediaEngine{}
	if err := m.RegisterDefaultCodecs(); err != nil {
		t.Fatal(err)
	}
	reg := &interceptor.Registry{}
	if err := webrtc.RegisterDefaultInterceptors(m, reg); err != nil {
		t.Fatal(err)
	}
	f, err := stats.NewInterceptor()
	if err != nil {
		t.Fatal(err)
	}
	f.OnNewPeerConnection(func(_ string, g stats.Getter) {
		s.mu.Lock()
		s.getter = g
		s.mu.Unlock()
	})
	reg.Add(f)
	var se webrtc.SettingEngine
	se.SetIncludeLoopbackCandidate(true)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	s.API = webrtc.NewAPI(webrtc.WithMediaEngine(m), webrtc.WithInterceptorRegistry(reg), webrtc.WithSettingEngine(se))
	return s
}

// sent returns the outbound-rtp packets and bytes sent on ssrc.
func (s *statsAPI) sent(ssrc uint32) (packets, bytes uint64) {
	s.mu.Lock()
	g := s.getter
	s.mu.Unlock()
	if g == nil {
		return 0, 0
	}
	st := g.Get(ssrc)
	if st == nil {
		return 0, 0
	}
	return st.OutboundRTPStreamStats.PacketsSent, st.OutboundRTPStreamStats.BytesSent
}

// inbound returns pion's GetStats inbound-rtp entries of pc by SSRC.
func inbound(pc *webrtc.PeerConnection) map[uint32]webrtc.InboundRTPStreamStats {
	out := map[uint32]webrtc.InboundRTPStreamStats{}
	for _, s := range pc.GetStats() {
		if in, ok := s.(webrtc.InboundRTPStreamStats); ok {
			out[uint32(in.SSRC)] = in
		}
	}
	return out
}

// senderSSRC finds the SSRC pc sends track on.
func senderSSRC(t *testing.T, pc *webrtc.PeerConnection, track webrtc.TrackLocal) uint32 {
	t.Helper()
	for _, tr := range pc.GetTransceivers() {
		if s := tr.Sender(); s != nil && s.Track() == track {
			if enc := s.GetParameters().Encodings; len(enc) > 0 {
				return uint32(enc[0].SSRC)
			}
		}
	}
	t.Fatalf("no sender for track %s", track.ID())
	return 0
}
