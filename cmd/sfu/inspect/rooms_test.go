package inspect_test

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tessera-rtc/tessera/cmd/sfu/inspect"
	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/signaling/client"
)

// member is one participant of a test call: a real pion client publishing
// synthetic audio and video, and reading everything it receives.
type member struct {
	name string
	c    *client.Client
	api  *statsAPI
	pubs []*st.Publisher
	ssrc map[string]uint32 // server track id -> the SSRC the client sends it on
	recv map[string]*st.Received
}

// startCall joins everyone to room, each publishing audio and video, and
// waits until each receives the others' tracks.
func startCall(ctx context.Context, t *testing.T, e *env, room string, names ...string) []*member {
	t.Helper()
	var call []*member
	for _, name := range names {
		api := newStatsAPI(t)
		m := &member{name: name, api: api, ssrc: map[string]uint32{}, recv: map[string]*st.Received{}}
		m.c = e.srv.Join(ctx, room, client.Options{Name: name, API: api.API})
		for _, kind := range []string{"audio", "video"} {
			p := st.Publish(ctx, t, m.c, kind)
			m.pubs = append(m.pubs, p)
			m.ssrc[p.TrackID] = senderSSRC(t, m.c.PC(), p.Synth.Track)
		}
		call = append(call, m)
	}
	want := 2 * (len(names) - 1)
	for _, m := range call {
		for len(m.recv) < want {
			select {
			case tr := <-m.c.Tracks():
				m.recv[tr.ID()] = st.Receive(tr)
			case <-time.After(15 * time.Second):
				t.Fatalf("%s received %d tracks, want %d", m.name, len(m.recv), want)
			}
		}
	}
	return call
}

// clientCounts is what the clients count themselves at one moment.
type clientCounts struct {
	at       time.Time
	sent     map[string][2]uint64 // by track id: packets, bytes (outbound-rtp)
	received map[string][2]uint64 // by subscriber id + "/" + track id: packets, bytes (inbound-rtp)
}

func countClients(call []*member) clientCounts {
	cc := clientCounts{at: time.Now(), sent: map[string][2]uint64{}, received: map[string][2]uint64{}}
	for _, m := range call {
		for id, ssrc := range m.ssrc {
			p, b := m.api.sent(ssrc)
			cc.sent[id] = [2]uint64{p, b}
		}
		in := inbound(m.c.PC())
		for id, r := range m.recv {
			s := in[uint32(r.Track.SSRC())]
			cc.received[m.c.Self.ID+"/"+id] = [2]uint64{uint64(s.PacketsReceived), s.BytesReceived}
		}
	}
	return cc
}

// bracket checks that a server count taken between two client counts
// agrees with them within 10%.
func bracket(t *testing.T, what string, server, before, after uint64) {
	t.Helper()
	if before == 0 || float64(server) < 0.9*float64(before) || float64(server) > 1.1*float64(after) {
		t.Errorf("%s: the server counts %d, the client %d..%d", what, server, before, after)
	}
}

// plausible checks a bitrate against the rate a client measured: within
// 40%, since the server measures over the last half second, the client
// over two, and a loaded machine sends in bursts.
func plausible(t *testing.T, what string, server int, client float64) {
	t.Helper()
	if client <= 0 || float64(server) < 0.6*client || float64(server) > 1.4*client {
		t.Errorf("%s: the server says %d bit/s, the client measured %.0f bit/s", what, server, client)
	}
}

// rate is the bitrate of counts[key] between two client counts.
func rate(a, b clientCounts, counts func(clientCounts) map[string][2]uint64, key string) float64 {
	return float64(counts(b)[key][1]-counts(a)[key][1]) * 8 / b.at.Sub(a.at).Seconds()
}

func sent(c clientCounts) map[string][2]uint64     { return c.sent }
func received(c clientCounts) map[string][2]uint64 { return c.received }

// TestRoomsAgreeWithPeers runs a two-person call (audio and video each) and
// checks that /debug/rooms describes it: every participant, track and
// subscription, connected states and candidate pair, packet counts that
// agree with the clients' own stats within 10%, and bitrates close to the
// rates the clients measure.
func TestRoomsAgreeWithPeers(t *testing.T) {
	ctx := testutil.Context(t)
	e := newEnv(t, inspect.Config{Open: true})
	call := startCall(ctx, t, e, "call", "Ada", "Grace")
	byID := map[string]*member{}
	for _, m := range call {
		byID[m.c.Self.ID] = m
	}

	// Let the counts reach the hundreds.
	testutil.Eventually(t, 15*time.Second, "every subscription forwarding 100 packets", func() bool {
		snap := getJSON[inspect.Snapshot](t, e.base+"/debug/rooms")
		n := 0
		for _, r := range snap.Rooms {
			for _, p := range r.Participants {
				for _, s := range p.Subscriptions {
					if s.Packets >= 100 {
						n++
					}
				}
			}
		}
		return n == 4
	})
	start := countClients(call)
	time.Sleep(2 * time.Second)
	before := countClients(call)
	snap := getJSON[inspect.Snapshot](t, e.base+"/debug/rooms")
	after := countClients(call)
	if testing.Verbose() {
		_, _, body := request(t, "GET", e.base+"/debug/rooms", "")
		t.Logf("/debug/rooms:\n%s", body)
	}

	if s := snap.Server; s.Sessions != 2 || s.Peers != 2 || s.Tracks != 4 || s.Subscriptions != 4 {
		t.Errorf("server = %+v, want 2 sessions and peers, 4 tracks and subscriptions", s)
	}
	if len(snap.Rooms) != 1 || snap.Rooms[0].Name != "call" || len(snap.Rooms[0].Participants) != 2 {
		t.Fatalf("rooms = %+v, want room call with 2 participants", snap.Rooms)
	}
	for _, p := range snap.Rooms[0].Participants {
		m := byID[p.ID]
		if m == nil || p.Name != m.name {
			t.Errorf("participant %s %q is not one of the call", p.ID, p.Name)
			continue
		}
		t.Run(m.name, func(t *testing.T) {
			checkParticipant(t, e, p, m, byID, start, before, after)
		})
	}
}

func checkParticipant(t *testing.T, e *env, p inspect.ParticipantDetail, m *member, byID map[string]*member, start, before, after clientCounts) {
	c := p.Connection
	if c.PeerConnection != "connected" || (c.ICE != "connected" && c.ICE != "completed") || c.DTLS != "connected" || c.Signaling != "stable" {
		t.Errorf("states = %+v", c)
	}
	if cp := p.CandidatePair; cp == nil {
		t.Error("no selected candidate pair")
	} else {
		// Local calls: both ends are addresses of this machine.
		for _, cand := range []inspect.Candidate{cp.Local, cp.Remote} {
			ap, err := netip.ParseAddrPort(cand.Address)
			if err != nil || ap.Port() == 0 || cand.Protocol != "udp" || (cand.Type != "host" && cand.Type != "prflx") {
				t.Errorf("candidate %+v, want a udp host candidate", cand)
			}
		}
		if cp.RTTMs < 0 || cp.RTTMs > 1000 {
			t.Errorf("rtt %v ms", cp.RTTMs)
		}
	}
	if p.BandwidthEstimateBps <= 0 {
		t.Errorf("no bandwidth estimate (pion clients send transport-wide feedback)")
	}
	if !slices.ContainsFunc(p.Negotiation, func(ev inspect.NegotiationEvent) bool { return strings.HasPrefix(ev.What, "client offer answered") }) {
		t.Errorf("negotiation history %+v has no answered client offer", p.Negotiation)
	}
	if time.Since(p.JoinedAt) > time.Minute || p.InCallMs <= 0 {
		t.Errorf("joined at %s, in call %d ms", p.JoinedAt, p.InCallMs)
	}

	if len(p.Published) != 2 {
		t.Fatalf("published %d tracks, want 2", len(p.Published))
	}
	for _, tr := range p.Published {
		if _, ok := m.ssrc[tr.ID]; !ok {
			t.Errorf("track %s is not one %s published", tr.ID, m.name)
			continue
		}
		codec := map[string]string{"audio": "audio/opus", "video": "video/VP8"}[tr.Kind]
		if !strings.EqualFold(tr.Codec, codec) || tr.Subscribers != 1 || tr.Muted || len(tr.Layers) != 1 || !tr.Layers[0].Active {
			t.Errorf("track %+v: want %s, one subscriber, one active layer", tr, codec)
		}
		what := fmt.Sprintf("%s's %s track: packets", m.name, tr.Kind)
		bracket(t, what, tr.Packets, before.sent[tr.ID][0], after.sent[tr.ID][0])
		plausible(t, fmt.Sprintf("%s's %s track: bitrate", m.name, tr.Kind), tr.BitrateBps, rate(start, before, sent, tr.ID))
		if tr.Lost > int64(tr.Packets/100) || tr.JitterMs < 0 || tr.JitterMs > 50 {
			t.Errorf("%s's %s track: lost %d, jitter %v ms", m.name, tr.Kind, tr.Lost, tr.JitterMs)
		}
	}

	if len(p.Subscriptions) != 2 {
		t.Fatalf("%d subscriptions, want 2", len(p.Subscriptions))
	}
	for _, s := range p.Subscriptions {
		pub := byID[s.Publisher]
		if pub == nil || pub == m || m.recv[s.Track] == nil {
			t.Errorf("subscription %+v: not a track of the other participant that %s receives", s, m.name)
			continue
		}
		if s.Layer != "" {
			t.Errorf("subscription to %s forwards layer %q of a track without simulcast", s.Track, s.Layer)
		}
		key := p.ID + "/" + s.Track
		what := fmt.Sprintf("%s receiving %s's %s", m.name, pub.name, s.Kind)
		bracket(t, what+": packets", s.Packets, before.received[key][0], after.received[key][0])
		// The server counts payloads, the client whole packets: their rates
		// differ by the RTP header, a few percent.
		plausible(t, what+": bitrate", s.BitrateBps, rate(start, before, received, key))
	}

	raw := getJSON[map[string]map[string]any](t, e.base+p.RawStats)
	types := map[string]bool{}
	for _, s := range raw {
		if typ, ok := s["type"].(string); ok {
			types[typ] = true
		}
	}
	for _, want := range []string{"peer-connection", "candidate-pair", "local-candidate", "remote-candidate", "codec"} {
		if !types[want] {
			t.Errorf("raw stats have no %s (types: %v)", want, types)
		}
	}
}

// TestRoomsLeaveAndUnknown checks that a participant who leaves disappears
// from /debug/rooms, and the raw stats of unknown participants are 404.
func TestRoomsLeaveAndUnknown(t *testing.T) {
	ctx := testutil.Context(t)
	e := newEnv(t, inspect.Config{Open: true})
	a := e.srv.Join(ctx, "r")
	b := e.srv.Join(ctx, "r")
	snap := getJSON[inspect.Snapshot](t, e.base+"/debug/rooms")
	if len(snap.Rooms) != 1 || len(snap.Rooms[0].Participants) != 2 {
		t.Fatalf("rooms = %+v", snap.Rooms)
	}
	if err := b.Leave(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the leaver gone from /debug/rooms", func() bool {
		snap := getJSON[inspect.Snapshot](t, e.base+"/debug/rooms")
		return len(snap.Rooms) == 1 && len(snap.Rooms[0].Participants) == 1 && snap.Rooms[0].Participants[0].ID == a.Self.ID
	})
	for _, path := range []string{
		"/debug/participants/r/" + b.Self.ID + "/stats",
		"/debug/participants/nope/" + a.Self.ID + "/stats",
	} {
		status, _, body := request(t, "GET", e.base+path, "")
		if status != 404 || errorCode(t, body) != "not-found" {
			t.Errorf("GET %s: %d %s, want 404 not-found", path, status, body)
		}
	}
	raw := getJSON[map[string]map[string]any](t, e.base+"/debug/participants/r/"+a.Self.ID+"/stats")
	if len(raw) == 0 {
		t.Error("raw stats of a present participant are empty")
	}
}
