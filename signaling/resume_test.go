package signaling_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/signaling/client"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

func resumeServer(t *testing.T, grace time.Duration) *st.Server {
	return st.NewServer(t, st.Options{Rooms: rooms.Config{OnDemand: true, MaxParticipants: 10, ResumeGrace: grace}})
}

// TestResumeWithinGrace: a publisher's socket breaks; within the grace
// period a new socket resumes it. Nobody saw it leave, its tracks were
// never unpublished, its media never stopped, and signaling works again.
func TestResumeWithinGrace(t *testing.T) {
	ctx := testutil.Context(t)
	srv := resumeServer(t, 5*time.Second)
	a := srv.Join(ctx, "r")
	if a.ResumeToken == "" {
		t.Fatal("joined carries no resume token")
	}
	va := st.Publish(ctx, t, a, "video")
	b := srv.Join(ctx, "r")
	recv := receiveTracks(t, b, 1)[va.TrackID]
	testutil.Eventually(t, 5*time.Second, "media flows", func() bool { return recv.Packets.Load() > 20 })
	mark := b.Mark()

	a.DropSocket()
	time.Sleep(time.Second) // away for a while
	before := recv.Packets.Load()
	ev, err := a.Resume(ctx)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if ev.Self.ID != a.Self.ID || len(ev.Participants) != 1 || ev.Participants[0].ID != b.Self.ID {
		t.Fatalf("resumed = %+v", ev)
	}
	if len(ev.Self.Tracks) != 1 || ev.Self.Tracks[0].ID != va.TrackID {
		t.Errorf("resumed lists its own tracks as %+v", ev.Self.Tracks)
	}
	if before < 50 {
		t.Errorf("media stopped while the socket was down: %d packets", before)
	}
	for _, e := range b.Events()[mark:] {
		if e.Type == "participant-left" || e.Type == "track-unpublished" {
			t.Errorf("b was told %s during a resumable outage", e.Type)
		}
	}
	if n := recv.SeqGaps.Load() + recv.Corrupt.Load(); n != 0 {
		t.Errorf("b's stream had %d missing or corrupt packets across the outage", n)
	}
	// The resumed session works: a mute is announced to b.
	if err := a.Call(ctx, protocol.NewMute(va.TrackID, true), 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, b, mark, "track-muted after the resume", func(e client.Event) bool {
		return e.Type == "track-muted" && e.TrackID == va.TrackID
	})
	// A later departure is still seen.
	mark = b.Mark()
	if err := a.Leave(); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, b, mark, "participant-left", func(e client.Event) bool { return e.Type == "participant-left" && e.LeftID == a.Self.ID })
}

// TestResumeAfterGrace: not resumed in time, the participant is removed,
// everyone is told, and the token no longer works.
func TestResumeAfterGrace(t *testing.T) {
	ctx := testutil.Context(t)
	srv := resumeServer(t, 500*time.Millisecond)
	a := srv.Join(ctx, "r")
	st.Publish(ctx, t, a, "audio")
	b := srv.Join(ctx, "r")
	mark := b.Mark()
	start := time.Now()
	a.DropSocket()
	waitEvent(t, ctx, b, mark, "participant-left after the grace period", func(e client.Event) bool {
		return e.Type == "participant-left" && e.LeftID == a.Self.ID
	})
	if d := time.Since(start); d < 400*time.Millisecond || d > 3*time.Second {
		t.Errorf("removed after %s, grace 500 ms", d)
	}
	_, err := a.Resume(ctx)
	var cerr *client.Error
	if !errors.As(err, &cerr) || cerr.Code != "not-found" {
		t.Fatalf("resume after the grace period: %v, want not-found", err)
	}
	// The socket stays usable: a bad resume is an error like another.
	if err := a.Join(ctx); err != nil {
		t.Fatalf("join after a failed resume: %v", err)
	}
}

// TestResumeRefusedWhileConnected: a resume token presented while the
// participant's socket still answers (a token seen in a log, a second tab)
// takes nothing over: the resume is refused, the participant keeps its
// socket, and the token still works for the participant itself later.
func TestResumeRefusedWhileConnected(t *testing.T) {
	ctx := testutil.Context(t)
	srv := resumeServer(t, 5*time.Second)
	a := srv.Join(ctx, "r")
	pub := st.Publish(ctx, t, a, "audio")
	thief, err := client.Connect(ctx, srv.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(thief.Close)
	expectError(t, ctx, thief, websocket.TextMessage, `{"type":"resume","token":"`+a.ResumeToken+`"}`, "forbidden")
	// a's session is untouched: it is still open, and requests work.
	select {
	case <-a.Done():
		t.Fatalf("the participant's socket was closed: %v", a.CloseError())
	default:
	}
	if err := a.Call(ctx, protocol.NewMute(pub.TrackID, true), 300*time.Millisecond); err != nil {
		t.Fatalf("after a refused resume: %v", err)
	}
	// The token was not spent: a real network failure still resumes.
	if _, err := a.Resume(ctx); err != nil {
		t.Fatalf("resume after the refused one: %v", err)
	}
}

// halfOpenJoin joins with a raw socket and stops reading once joined, as a
// connection whose network vanished: it answers no ping. It returns the
// participant's resume token and the socket.
func halfOpenJoin(t *testing.T, ctx context.Context, url, room string) (string, *websocket.Conn) {
	t.Helper()
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ws.Close() })
	if err := ws.WriteJSON(map[string]any{"type": "join", "room": room, "name": "half-open"}); err != nil {
		t.Fatal(err)
	}
	var joined struct {
		Type, ResumeToken string
	}
	if err := ws.ReadJSON(&joined); err != nil || joined.Type != "joined" || joined.ResumeToken == "" {
		t.Fatalf("joined: %+v, %v", joined, err)
	}
	return joined.ResumeToken, ws
}

// TestResumeTakesOverHalfOpenSocket: a resume while the old socket still
// looks open but answers nothing (a half-open TCP connection after a
// network change) takes the participant over and closes the old socket
// (4000); the token is spent, and resumed carries the next.
func TestResumeTakesOverHalfOpenSocket(t *testing.T) {
	ctx := testutil.Context(t)
	srv := resumeServer(t, 5*time.Second)
	token, old := halfOpenJoin(t, ctx, srv.URL, "r")
	other, err := client.Connect(ctx, srv.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(other.Close)
	mark := other.Mark()
	if err := other.SendRaw(websocket.TextMessage, []byte(`{"type":"resume","id":"r1","token":"`+token+`"}`)); err != nil {
		t.Fatal(err)
	}
	resumed, err := other.WaitFor(ctx, mark, func(e client.Event) bool { return e.Type == "resumed" && e.ID == "r1" })
	if err != nil {
		t.Fatal(err)
	}
	if resumed.ResumeToken == "" || resumed.ResumeToken == token {
		t.Errorf("resumed carries token %q: want a new one", resumed.ResumeToken)
	}
	// The old socket was closed with 4000: its close frame is there to read.
	_ = old.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := old.ReadMessage()
		if err == nil {
			continue // what was sent before the close
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4000 {
			t.Errorf("old socket ended with %v, want a close 4000", err)
		}
		break
	}
	// Bad tokens are refused without closing the socket.
	bad, err := client.Connect(ctx, srv.URL, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bad.Close)
	expectError(t, ctx, bad, websocket.TextMessage, `{"type":"resume","token":"nope"}`, "not-found")
	// The token is spent: it resumes nothing again.
	expectError(t, ctx, bad, websocket.TextMessage, `{"type":"resume","token":"`+token+`"}`, "not-found")
	expectError(t, ctx, bad, websocket.TextMessage, `{"type":"resume"}`, "bad-request")
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	select {
	case <-bad.Done():
		t.Fatal("a bad resume closed the socket")
	case <-tctx.Done():
	}
}

// TestClosedPeerDoesNotWaitForResume: a client whose socket broke and who
// then closed its PeerConnection (a tab closed during a network change)
// will not come back; it is removed at once, not after the grace period.
func TestClosedPeerDoesNotWaitForResume(t *testing.T) {
	ctx := testutil.Context(t)
	srv := resumeServer(t, time.Minute)
	a := srv.Join(ctx, "r")
	st.Publish(ctx, t, a, "audio")
	b := srv.Join(ctx, "r")
	receiveTracks(t, b, 1)
	mark := b.Mark()
	pa, err := srv.Registry.Participant(ctx, "r", a.Self.ID)
	if err != nil {
		t.Fatal(err)
	}
	a.DropSocket()
	testutil.Eventually(t, 5*time.Second, "the server sees the socket gone", pa.Away)
	if err := a.PC().Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	waitEvent(t, ctx, b, mark, "participant-left", func(e client.Event) bool {
		return e.Type == "participant-left" && e.LeftID == a.Self.ID
	})
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the participant left %s after closing its PeerConnection", took)
	}
	if _, err := a.Resume(ctx); err == nil {
		t.Error("a participant whose PeerConnection closed could resume")
	}
}

// TestResumeRestoresState: what changed while a publisher was away and is
// still true reaches it after `resumed`: the layers its subscribers need
// now, and who speaks; its own tracks come with their mids.
func TestResumeRestoresState(t *testing.T) {
	ctx := testutil.Context(t)
	srv := resumeServer(t, 10*time.Second)
	a := srv.Join(ctx, "r")
	video, _ := simulcastPublisher(ctx, t, a, 300)
	audio := st.Publish(ctx, t, a, "audio")
	audio.Synth.Level.Store(20) // loud: a speaks
	mids := map[string]string{}
	for _, e := range a.Events() {
		if e.Type == "track-published" && e.Track.Participant == a.Self.ID {
			mids[e.Track.ID] = e.Track.Mid
		}
	}
	if mids[video] == "" || mids[audio.TrackID] == "" {
		t.Fatalf("track-published gave the publisher mids %v", mids)
	}
	b := srv.Join(ctx, "r")
	receiveTracks(t, b, 2)
	mark := a.Mark()
	if err := b.Call(ctx, protocol.Layer{Track: video, RID: "q"}, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, a, mark, "layers q", func(e client.Event) bool {
		return e.Type == "layers" && e.TrackID == video && slices.Equal(e.Active, []string{"q"})
	})
	waitEvent(t, ctx, b, 0, "a speaking", func(e client.Event) bool {
		return e.Type == "speakers" && slices.Contains(e.Speakers, a.Self.ID)
	})

	a.DropSocket()
	if err := b.Call(ctx, protocol.Layer{Track: video, RID: "h"}, 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	// The server wants q and h now; the `layers` telling the publisher is lost.
	pa, err := srv.Registry.Participant(ctx, "r", a.Self.ID)
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "the server wants layers q,h", func() bool {
		for _, up := range pa.Peer().Published() {
			if up.ID() == video {
				return slices.Equal(up.WantedLayers(), []string{"q", "h"})
			}
		}
		return false
	})
	mark = a.Mark()
	ev, err := a.Resume(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tr := range ev.Self.Tracks {
		if tr.Mid != mids[tr.ID] {
			t.Errorf("resumed gives track %s mid %q, want %q", tr.ID, tr.Mid, mids[tr.ID])
		}
	}
	waitEvent(t, ctx, a, mark, "layers q,h after resuming", func(e client.Event) bool {
		return e.Type == "layers" && e.TrackID == video && slices.Equal(e.Active, []string{"q", "h"})
	})
	waitEvent(t, ctx, a, mark, "speakers after resuming", func(e client.Event) bool {
		return e.Type == "speakers" && slices.Contains(e.Speakers, a.Self.ID)
	})
}
