package signaling_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/signaling"
	"github.com/tessera-rtc/tessera/signaling/client"
)

// expectError sends one frame and waits for the error reply carrying code.
func expectError(t *testing.T, ctx context.Context, c *client.Client, frameType int, frame string, code string) client.Event {
	t.Helper()
	mark := c.Mark()
	if err := c.SendRaw(frameType, []byte(frame)); err != nil {
		t.Fatalf("send %.60q: %v", frame, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	ev, err := c.WaitFor(ctx, mark, func(e client.Event) bool { return e.Type == "error" })
	if err != nil {
		t.Fatalf("%.60q: no error reply: %v", frame, err)
	}
	if ev.Error.Code != code {
		t.Errorf("%.60q: code %s (%s), want %s", frame, ev.Error.Code, ev.Error.Message, code)
	}
	if ev.Error.Message == "" {
		t.Errorf("%.60q: error without a message", frame)
	}
	return ev
}

// TestMalformedInput sends every kind of bad input the protocol names,
// while two others hold a call in the same room: each gets its error code,
// the socket stays open, and the call is not disturbed.
func TestMalformedInput(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{Rooms: rooms.Config{
		OnDemand: false, MaxParticipants: 3,
		Listed: []rooms.RoomConfig{{Name: "main"}, {Name: "tiny", MaxParticipants: 1}},
	}})

	// A call in progress.
	a := srv.Join(ctx, "main")
	va := st.Publish(ctx, t, a, "video")
	b := srv.Join(ctx, "main")
	recv := receiveTracks(t, b, 1)[va.TrackID]

	// Before join.
	bad, err := client.Connect(ctx, srv.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bad.Close)
	pre := []struct{ frame, code string }{
		{`{"type":"offer","id":"1","sdp":"v=0"}`, "not-joined"},
		{`{"type":"subscribe","tracks":["x"]}`, "not-joined"},
		{`{"type":"leave"}`, "not-joined"},
		{`{"type":"join","room":"main"}`, "bad-request"},
		{`{"type":"join","room":"no such room!","name":"x"}`, "bad-request"},
		{`{"type":"join","room":"main","name":"  "}`, "bad-request"},
		{`{"type":"join","room":"main","name":"` + strings.Repeat("n", 65) + `"}`, "bad-request"},
		{`{"type":"join","room":"elsewhere","name":"x"}`, "room-not-found"},
		{`{"type":"join","room":"tiny","name":"x"}`, ""}, // fills tiny
	}
	for _, p := range pre {
		if p.code == "" {
			if err := bad.SendRaw(websocket.TextMessage, []byte(p.frame)); err != nil {
				t.Fatal(err)
			}
			continue
		}
		expectError(t, ctx, bad, websocket.TextMessage, p.frame, p.code)
	}
	// The join into "tiny" succeeded; a second join is refused, and "tiny" is full.
	if _, err := bad.WaitFor(ctx, 0, func(e client.Event) bool { return e.Type == "joined" }); err != nil {
		t.Fatal(err)
	}
	ev := expectError(t, ctx, bad, websocket.TextMessage, `{"type":"join","id":"again","room":"main","name":"x"}`, "already-joined")
	if ev.ID != "again" {
		t.Errorf("error id = %q, want the request's", ev.ID)
	}
	full, err := client.Connect(ctx, srv.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(full.Close)
	expectError(t, ctx, full, websocket.TextMessage, `{"type":"join","room":"tiny","name":"y"}`, "room-full")

	// Joined: every malformed message of the protocol.
	c := srv.Join(ctx, "main")
	cases := []struct {
		name, frame, code string
		binary            bool
	}{
		{name: "not JSON", frame: `hello`, code: "bad-request"},
		{name: "binary frame", frame: "\x00\x01", code: "bad-request", binary: true},
		{name: "array", frame: `[]`, code: "bad-request"},
		{name: "no type", frame: `{}`, code: "bad-request"},
		{name: "unknown type", frame: `{"type":"teleport"}`, code: "bad-request"},
		{name: "numeric id", frame: `{"type":"leave","id":1}`, code: "bad-request"},
		{name: "offer without sdp", frame: `{"type":"offer"}`, code: "bad-request"},
		{name: "garbage sdp", frame: `{"type":"offer","sdp":"hello"}`, code: "bad-sdp"},
		{name: "sdp without media", frame: `{"type":"offer","sdp":"v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"}`, code: "bad-sdp"},
		{name: "sdp without mid", frame: sdpFrame("offer", sdpWithoutMid), code: "bad-sdp"},
		{name: "sdp without ice credentials", frame: sdpFrame("offer", sdpWithoutICE), code: "bad-sdp"},
		{name: "sdp with no usable codec", frame: sdpFrame("offer", sdpUnknownCodec), code: "bad-sdp"},
		{name: "answer without an offer", frame: sdpFrame("answer", sdpWithoutMid), code: "bad-sdp"},
		{name: "candidate garbage", frame: `{"type":"candidate","candidate":{"candidate":"garbage"}}`, code: "bad-request"},
		{name: "candidate wrong type", frame: `{"type":"candidate","candidate":42}`, code: "bad-request"},
		{name: "subscribe nothing", frame: `{"type":"subscribe","tracks":[]}`, code: "bad-request"},
		{name: "subscribe unknown", frame: `{"type":"subscribe","tracks":["t-none"]}`, code: "not-found"},
		{name: "unsubscribe unknown", frame: `{"type":"unsubscribe","tracks":["t-none"]}`, code: "not-found"},
		{name: "layer of unknown track", frame: `{"type":"layer","track":"t-none","rid":"q"}`, code: "not-found"},
		{name: "layer with a bad rid", frame: `{"type":"layer","track":"` + va.TrackID + `","rid":"zz"}`, code: "bad-request"},
		{name: "mute without muted", frame: `{"type":"mute","track":"` + va.TrackID + `"}`, code: "bad-request"},
		{name: "mute someone else's", frame: `{"type":"mute","track":"` + va.TrackID + `","muted":true}`, code: "forbidden"},
		{name: "mute unknown", frame: `{"type":"mute","track":"t-none","muted":true}`, code: "not-found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			typ := websocket.TextMessage
			if tc.binary {
				typ = websocket.BinaryMessage
			}
			expectError(t, ctx, c, typ, tc.frame, tc.code)
		})
	}

	// The socket is still open and the sender still works: it can publish.
	select {
	case <-c.Done():
		t.Fatal("an error closed the socket")
	default:
	}
	vc := st.Publish(ctx, t, c, "video")
	got := receiveTracks(t, b, 1)
	if got[vc.TrackID] == nil {
		t.Fatalf("b did not receive the new track after the bad input")
	}
	// The call in progress went on.
	before := recv.Packets.Load()
	testutil.Eventually(t, 5*time.Second, "media keeps flowing to b", func() bool { return recv.Packets.Load() > before+20 })
	if n := recv.Corrupt.Load() + recv.SeqGaps.Load(); n != 0 {
		t.Errorf("the call lost or corrupted %d packets", n)
	}
}

// TestOversizedFrameClosesSocket: only a frame over the limit closes the socket (1009).
func TestOversizedFrameClosesSocket(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{Signaling: signaling.Config{MaxMessageBytes: 4096}})
	a := srv.Join(ctx, "big")
	b := srv.Join(ctx, "big")
	mark := b.Mark()
	// The server may close the socket on the frame's first bytes, before
	// the client has written the rest: the write then ends with ErrCloseSent.
	if err := a.SendRaw(websocket.TextMessage, []byte(`{"type":"offer","sdp":"`+strings.Repeat("x", 8192)+`"}`)); err != nil && !errors.Is(err, websocket.ErrCloseSent) {
		t.Fatal(err)
	}
	select {
	case <-a.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("socket not closed after an oversized frame")
	}
	if ce := a.CloseError(); ce == nil || ce.Code != websocket.CloseMessageTooBig {
		t.Errorf("close = %v, want 1009", ce)
	}
	waitEvent(t, ctx, b, mark, "participant-left", func(e client.Event) bool {
		return e.Type == "participant-left" && e.LeftID == a.Self.ID
	})
}

func sdpFrame(typ, sdp string) string {
	b, _ := json.Marshal(map[string]string{"type": typ, "sdp": sdp})
	return string(b)
}

const sdpWithoutMid = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 00:11\r\na=setup:actpass\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n"

const sdpWithoutICE = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n" +
	"a=fingerprint:sha-256 00:11\r\na=setup:actpass\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n"

const sdpUnknownCodec = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 00:11\r\na=setup:actpass\r\na=sendonly\r\na=rtpmap:96 MPV/90000\r\n"
