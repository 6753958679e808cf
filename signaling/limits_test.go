package signaling_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/signaling"
	"github.com/tessera-rtc/tessera/signaling/client"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

// Each limit: the client over it gets its error code or close code, and the
// others go on.

func TestJoinTimeout(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{Signaling: signaling.Config{JoinTimeout: 300 * time.Millisecond}})
	idle, err := client.Connect(ctx, srv.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(idle.Close)
	joined := srv.Join(ctx, "jt") // joins at once: not affected
	select {
	case <-idle.Done():
		if ce := idle.CloseError(); ce == nil || ce.Code != signaling.CloseJoinTimeout {
			t.Errorf("closed with %v, want %d", ce, signaling.CloseJoinTimeout)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("a socket that never joined was not closed")
	}
	select {
	case <-joined.Done():
		t.Fatal("a joined socket was closed by the join timeout")
	case <-time.After(500 * time.Millisecond):
	}
}

func TestMessageRate(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{Signaling: signaling.Config{MessagesPerSecond: 20}})
	c := srv.Join(ctx, "rate")
	// A burst over the allowance (40): the excess is refused, the socket stays.
	mark := c.Mark()
	for range 60 {
		if err := c.SendRaw(websocket.TextMessage, []byte(`{"type":"unsubscribe","tracks":["t-x"]}`)); err != nil {
			t.Fatal(err)
		}
	}
	refused := func() int {
		n := 0
		for _, e := range c.Events()[mark:] {
			if e.Type == "error" && e.Error.Code == "forbidden" && strings.Contains(e.Error.Message, "messages a second") {
				n++
			}
		}
		return n
	}
	testutil.Eventually(t, 3*time.Second, "the excess of a burst refused", func() bool { return refused() >= 15 })
	select {
	case <-c.Done():
		t.Fatal("a burst closed the socket")
	default:
	}
	// After a pause the allowance is back.
	time.Sleep(time.Second)
	if err := c.Call(ctx, protocol.Unsubscribe{Tracks: []string{"t-x"}}, time.Second); err == nil || !strings.Contains(err.Error(), "not-found") {
		t.Errorf("after a pause: %v, want the ordinary not-found", err)
	}
	// A sustained flood closes the socket (1008).
	for i := 0; i < 2000; i++ {
		if c.SendRaw(websocket.TextMessage, []byte(`{"type":"leave","id":"`+fmt.Sprint(i)+`"`)) != nil {
			break
		}
	}
	select {
	case <-c.Done():
		// The close frame (1008) may be lost: the server closes the TCP
		// connection while the flood is still arriving, which resets it.
		if ce := c.CloseError(); ce != nil && ce.Code != websocket.ClosePolicyViolation && ce.Code != websocket.CloseAbnormalClosure {
			t.Errorf("flood closed with %v, want 1008", ce)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a flood did not close the socket")
	}
}

func TestConnectionsPerAddress(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{Signaling: signaling.Config{ConnectionsPerIP: 3}})
	var open []*client.Client
	for range 3 {
		c, err := client.Connect(ctx, srv.URL, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(c.Close)
		open = append(open, c)
	}
	_, resp, err := websocket.DefaultDialer.Dial(srv.URL, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("fourth socket: %v, want HTTP 429", err)
	}
	open[0].Close()
	testutil.Eventually(t, 3*time.Second, "a slot freed by a closed socket", func() bool {
		ws, _, err := websocket.DefaultDialer.Dial(srv.URL, nil)
		if err == nil {
			ws.Close()
		}
		return err == nil
	})
}

func TestRoomAndTrackLimits(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{
		Rooms: rooms.Config{OnDemand: true, MaxParticipants: 10, MaxRooms: 1},
		SFU:   sfu.Config{MaxTracksPerPeer: 2},
	})
	a := srv.Join(ctx, "first")
	second, err := client.Connect(ctx, srv.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(second.Close)
	expectError(t, ctx, second, websocket.TextMessage, `{"type":"join","room":"second","name":"x"}`, "forbidden")
	srv.Join(ctx, "first") // the existing room still takes people

	// Three tracks in one offer, two allowed: refused, nothing published.
	for i := range 3 {
		synth, err := client.NewSynth("audio", fmt.Sprintf("a%d", i), a.Self.ID, uint32(900+i), 100)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.PC().AddTransceiverFromTrack(synth.Track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := a.PC().CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	err = a.Call(ctx, protocol.Offer{SDP: offer.SDP}, 2*time.Second)
	var cerr *client.Error
	if !errors.As(err, &cerr) || cerr.Code != "forbidden" || !strings.Contains(cerr.Message, "too many published tracks") {
		t.Fatalf("offer of 3 tracks: %v, want forbidden", err)
	}
	for _, e := range a.Events() {
		if e.Type == "track-published" {
			t.Error("a refused offer published a track")
		}
	}
}

// TestICEConnectTimeout: a participant whose media never connects (its
// link drops everything) is removed within the connect timeout, and the
// others are told.
func TestICEConnectTimeout(t *testing.T) {
	ctx := testutil.Context(t)
	vn := st.NewVNet(t)
	srv := st.NewServer(t, st.Options{SFU: sfu.Config{Net: vn.Host("10.0.0.1"), ConnectTimeout: 2 * time.Second}})
	okNet, deadNet := vn.Host("10.0.0.2"), vn.Host("10.0.0.3")
	vn.SetLoss("10.0.0.3", 1)
	a := srv.Join(ctx, "ice", client.Options{API: vn.API(okNet)})
	st.Publish(ctx, t, a, "audio")
	mark := a.Mark()
	b := srv.Join(ctx, "ice", client.Options{API: vn.API(deadNet)})
	start := time.Now()
	waitEvent(t, ctx, a, mark, "the unreachable participant removed", func(e client.Event) bool {
		return e.Type == "participant-left" && e.LeftID == b.Self.ID
	})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("removed after %s, timeout 2 s", d)
	}
	select {
	case <-b.Done():
		if ce := b.CloseError(); ce == nil || ce.Code != signaling.CloseRemoved || !strings.Contains(ce.Text, "ice") {
			t.Errorf("its socket closed with %v, want 4000 naming ICE", ce)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("its socket was not closed")
	}
}

// idleJoin opens a raw socket that joins room and then only reads: it
// never answers the server's offer, never gathers a candidate. Its close
// error comes on the channel once the server closes it.
func idleJoin(t *testing.T, url, room string) <-chan error {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.Dial(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	if err := ws.WriteJSON(map[string]any{"type": "join", "room": room, "name": "idle"}); err != nil {
		t.Fatal(err)
	}
	closed := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.ReadMessage(); err != nil {
				closed <- err
				return
			}
		}
	}()
	return closed
}

// TestIdleJoinersRemoved: participants that join and never connect their
// media (they answer nothing) are removed within the connect timeout of
// their join, and the room is told; a viewer that publishes nothing in an
// empty room is connected by the server and stays.
func TestIdleJoinersRemoved(t *testing.T) {
	ctx := testutil.Context(t)
	const timeout = 2 * time.Second
	srv := st.NewServer(t, st.Options{SFU: sfu.Config{ConnectTimeout: timeout}})
	viewer := srv.Join(ctx, "idle") // alone in the room, publishes nothing
	mark := viewer.Mark()
	start := time.Now()
	var idle []<-chan error
	for range 5 {
		idle = append(idle, idleJoin(t, srv.URL, "idle"))
	}
	for i, closed := range idle {
		select {
		case err := <-closed:
			var ce *websocket.CloseError
			if !errors.As(err, &ce) || ce.Code != signaling.CloseRemoved || !strings.Contains(ce.Text, "ice") {
				t.Errorf("idle joiner %d: closed with %v, want 4000 naming ICE", i, err)
			}
		case <-time.After(timeout + 3*time.Second):
			t.Fatalf("idle joiner %d still there %s after joining (connect timeout %s)", i, time.Since(start), timeout)
		}
	}
	left := 0
	waitEvent(t, ctx, viewer, mark, "the idle joiners reported gone", func(e client.Event) bool {
		if e.Type == "participant-left" {
			left++
		}
		return left == len(idle)
	})
	if rs := srv.Registry.Rooms(ctx); len(rs) != 1 || len(rs[0].Participants) != 1 {
		t.Errorf("rooms left: %+v, want only the viewer", rs)
	}

	// The viewer negotiated nothing itself, yet it is connected, and it
	// outlived the idle joiners' timeout.
	if s := viewer.PC().ConnectionState(); s != webrtc.PeerConnectionStateConnected {
		t.Fatalf("the viewer's connection is %s, want connected", s)
	}
	select {
	case <-viewer.Done():
		t.Fatalf("the viewer was closed: %v", viewer.CloseError())
	default:
	}
	// It connected on a data channel section alone: no media section
	// settled the session's codecs before the client sent anything.
	if trs := viewer.PC().GetTransceivers(); len(trs) != 0 {
		t.Fatalf("the viewer has %d transceivers before any track, want none", len(trs))
	}
	if s := viewer.PC().SCTP().State(); s != webrtc.SCTPTransportStateConnected {
		t.Fatalf("the viewer's SCTP transport is %s, want connected (the server's data channel section)", s)
	}
	// A track published now flows on the connection that is already up.
	pub := srv.Join(ctx, "idle")
	st.Publish(ctx, t, pub, "audio")
	got := receiveTracks(t, viewer, 1)
	for _, r := range got {
		testutil.Eventually(t, 5*time.Second, "audio arrives on the viewer's connection", func() bool { return r.Packets.Load() > 10 })
		if r.Corrupt.Load() != 0 {
			t.Errorf("%d corrupt packets", r.Corrupt.Load())
		}
	}
}
