package signaling_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/webrtc/v4"
	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/signaling/client"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

// receiveTracks waits for n remote tracks on c and starts verifying each.
func receiveTracks(t *testing.T, c *client.Client, n int) map[string]*st.Received {
	t.Helper()
	out := map[string]*st.Received{}
	timeout := time.After(15 * time.Second)
	for len(out) < n {
		select {
		case tr := <-c.Tracks():
			out[tr.ID()] = st.Receive(tr)
		case <-timeout:
			t.Fatalf("%s received %d tracks, want %d", c.Self.Name, len(out), n)
		}
	}
	return out
}

func waitEvent(t *testing.T, ctx context.Context, c *client.Client, mark int, what string, f func(client.Event) bool) client.Event {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ev, err := c.WaitFor(ctx, mark, f)
	if err != nil {
		t.Fatalf("%s: waiting for %s: %v", c.Self.Name, what, err)
	}
	return ev
}

func TestThreeParticipantsExchangeMedia(t *testing.T) {
	t.Run("ephemeral ports", func(t *testing.T) { threeParticipants(t, st.Options{}) })
	// One UDP port: the ICE mux and the batched sending of fan-outs.
	t.Run("one port", func(t *testing.T) { threeParticipants(t, st.Options{SFU: sfu.Config{UDPPort: freeUDPPort(t)}}) })
}

func freeUDPPort(t *testing.T) int {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).Port
}

func threeParticipants(t *testing.T, opts st.Options) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, opts)
	clients := make([]*client.Client, 3)
	pubs := map[string]*st.Publisher{} // by track id
	for i := range clients {
		clients[i] = srv.Join(ctx, "room1")
	}
	for _, c := range clients {
		for _, kind := range []string{"video", "audio"} {
			p := st.Publish(ctx, t, c, kind)
			pubs[p.TrackID] = p
		}
	}
	for _, c := range clients {
		got := receiveTracks(t, c, 4)
		for id, r := range got {
			pub := pubs[id]
			if pub == nil {
				t.Fatalf("%s received unknown track %s", c.Self.Name, id)
			}
			if r.Track.StreamID() == c.Self.ID {
				t.Errorf("%s received its own track %s", c.Self.Name, id)
			}
			if r.Source != pub.Synth.Source {
				t.Errorf("track %s carries source %d, want %d", id, r.Source, pub.Synth.Source)
			}
			if pub.Kind == "video" && !r.FirstKey.Load() {
				t.Errorf("%s: video track %s did not start at a keyframe: %s", c.Self.Name, id, r.First)
			}
		}
		for id, r := range got {
			testutil.Eventually(t, 5*time.Second, fmt.Sprintf("%s receives 50 packets of %s", c.Self.Name, id), func() bool {
				return r.Packets.Load() >= 50
			})
			if n := r.Corrupt.Load(); n > 0 {
				t.Errorf("%s: %d corrupt packets on %s", c.Self.Name, n, id)
			}
			if n := r.SeqGaps.Load(); n > 0 {
				t.Errorf("%s: %d sequence numbers missing on %s (loopback, no loss expected)", c.Self.Name, n, id)
			}
		}
	}
	// Each participant's view of the room is complete.
	for _, c := range clients {
		seen := map[string]bool{}
		for _, ev := range c.Events() {
			if ev.Type == "track-published" {
				seen[ev.Track.ID] = true
			}
		}
		if len(seen) != 6 {
			t.Errorf("%s saw %d track-published, want all 6", c.Self.Name, len(seen))
		}
	}
}

func TestLateJoinerReceivesExistingTracks(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{})
	a := srv.Join(ctx, "late")
	va := st.Publish(ctx, t, a, "video")
	aa := st.Publish(ctx, t, a, "audio")

	b := srv.Join(ctx, "late")
	if len(b.Others) != 1 || b.Others[0].ID != a.Self.ID || len(b.Others[0].Tracks) != 2 {
		t.Fatalf("joined.participants = %+v, want %s with 2 tracks", b.Others, a.Self.ID)
	}
	got := receiveTracks(t, b, 2)
	for _, id := range []string{va.TrackID, aa.TrackID} {
		r := got[id]
		if r == nil {
			t.Fatalf("late joiner did not get %s", id)
		}
		if r.Track.StreamID() != a.Self.ID {
			t.Errorf("stream id %s, want the publisher %s", r.Track.StreamID(), a.Self.ID)
		}
		testutil.Eventually(t, 5*time.Second, "media flows to the late joiner", func() bool { return r.Packets.Load() > 20 })
	}
}

// TestDepartureRemovesTracks: a participant that leaves, or closes its
// socket and PeerConnection without leaving, is gone for everyone within
// seconds, tracks first; also with resuming on (the default 15 s grace),
// since a closed PeerConnection cannot come back.
func TestDepartureRemovesTracks(t *testing.T) {
	for _, how := range []string{"leave", "abrupt close", "abrupt close, resuming on"} {
		t.Run(how, func(t *testing.T) {
			ctx := testutil.Context(t)
			opts := st.Options{}
			if how == "abrupt close, resuming on" {
				opts.Rooms = rooms.Config{OnDemand: true, MaxParticipants: 10, ResumeGrace: 15 * time.Second}
			}
			srv := st.NewServer(t, opts)
			a := srv.Join(ctx, "dep")
			st.Publish(ctx, t, a, "video")
			st.Publish(ctx, t, a, "audio")
			b := srv.Join(ctx, "dep")
			c := srv.Join(ctx, "dep")
			receiveTracks(t, b, 2)
			receiveTracks(t, c, 2)
			markB, markC := b.Mark(), c.Mark()

			start := time.Now()
			if how == "leave" {
				if err := a.Leave(); err != nil {
					t.Fatal(err)
				}
				select {
				case <-a.Done():
				case <-time.After(5 * time.Second):
					t.Fatal("server did not close the socket after leave")
				}
				if ce := a.CloseError(); ce == nil || ce.Code != websocket.CloseNormalClosure {
					t.Errorf("close after leave = %v, want 1000", ce)
				}
			} else {
				a.Close()
			}
			for _, w := range []struct {
				c    *client.Client
				mark int
			}{{b, markB}, {c, markC}} {
				unpub := 0
				waitEvent(t, ctx, w.c, w.mark, "two track-unpublished then participant-left", func(e client.Event) bool {
					if e.Type == "track-unpublished" {
						unpub++
					}
					return e.Type == "participant-left" && e.LeftID == a.Self.ID && unpub == 2
				})
			}
			if d := time.Since(start); d > 3*time.Second {
				t.Errorf("departure took %s to reach the others", d)
			}
			// Nothing of a is left in the registry.
			for _, r := range srv.Registry.Rooms(ctx) {
				for _, p := range r.Participants {
					if p.ID == a.Self.ID {
						t.Errorf("%s still in room %s", a.Self.ID, r.Name)
					}
					if len(p.Tracks) != 0 {
						t.Errorf("%s still lists tracks %+v", p.ID, p.Tracks)
					}
				}
			}
			// The subscribers' sessions renegotiated the sections away.
			testutil.Eventually(t, 5*time.Second, "subscriber's transceivers become inactive", func() bool {
				for _, tr := range b.PC().GetTransceivers() {
					if tr.Direction() != webrtc.RTPTransceiverDirectionInactive && tr.Receiver() != nil && len(tr.Receiver().Tracks()) > 0 {
						if cur := tr.Direction(); cur == webrtc.RTPTransceiverDirectionRecvonly {
							return false
						}
					}
				}
				return true
			})
		})
	}
}

func TestSelectiveSubscription(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{})
	a := srv.Join(ctx, "sel")
	va := st.Publish(ctx, t, a, "video")
	aa := st.Publish(ctx, t, a, "audio")
	b := srv.Join(ctx, "sel")
	vb := st.Publish(ctx, t, b, "video")

	off := false
	c := srv.Join(ctx, "sel", client.Options{AutoSubscribe: &off})
	if len(c.Others) != 2 {
		t.Fatalf("joined lists %d participants, want 2", len(c.Others))
	}
	select {
	case tr := <-c.Tracks():
		t.Fatalf("autoSubscribe=false received track %s unasked", tr.ID())
	case <-time.After(500 * time.Millisecond):
	}

	// Subscribe to two of the three tracks, and name one unknown id.
	err := c.Call(ctx, protocol.Subscribe{Tracks: []string{va.TrackID, "t-bogus", vb.TrackID, "t-nope"}}, time.Second)
	var cerr *client.Error
	if !errors.As(err, &cerr) || cerr.Code != "not-found" || !strings.Contains(cerr.Message, "t-bogus") || !strings.Contains(cerr.Message, "t-nope") {
		t.Fatalf("subscribe with unknown ids: %v, want one not-found naming both", err)
	}
	got := receiveTracks(t, c, 2)
	if got[va.TrackID] == nil || got[vb.TrackID] == nil {
		t.Fatalf("received %v, want exactly %s and %s", keys(got), va.TrackID, vb.TrackID)
	}
	select {
	case tr := <-c.Tracks():
		t.Fatalf("received %s, which was not asked for", tr.ID())
	case <-time.After(500 * time.Millisecond):
	}
	for _, r := range got {
		testutil.Eventually(t, 5*time.Second, "chosen tracks flow", func() bool { return r.Packets.Load() > 20 })
	}

	// A new track of a is announced but not forwarded to c.
	mark := c.Mark()
	a2 := st.Publish(ctx, t, a, "video")
	waitEvent(t, ctx, c, mark, "track-published for the new track", func(e client.Event) bool {
		return e.Type == "track-published" && e.Track.ID == a2.TrackID
	})

	// Unsubscribe one: it stops; the other keeps flowing.
	if err := c.Call(ctx, protocol.Unsubscribe{Tracks: []string{va.TrackID}}, time.Second); err != nil {
		t.Fatal(err)
	}
	stopped := got[va.TrackID]
	testutil.Eventually(t, 5*time.Second, "unsubscribed track stops", func() bool {
		before := stopped.Packets.Load()
		time.Sleep(300 * time.Millisecond)
		return stopped.Packets.Load() == before
	})
	kept := got[vb.TrackID]
	before := kept.Packets.Load()
	testutil.Eventually(t, 5*time.Second, "other track keeps flowing", func() bool { return kept.Packets.Load() > before+20 })

	// Subscribing to the audio later works too.
	if err := c.Call(ctx, protocol.Subscribe{Tracks: []string{aa.TrackID}}, time.Second); err != nil {
		t.Fatal(err)
	}
	more := receiveTracks(t, c, 1)
	if more[aa.TrackID] == nil {
		t.Fatalf("got %v, want %s", keys(more), aa.TrackID)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func TestMute(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{})
	a := srv.Join(ctx, "mute")
	va := st.Publish(ctx, t, a, "video")
	b := srv.Join(ctx, "mute")
	r := receiveTracks(t, b, 1)[va.TrackID]
	testutil.Eventually(t, 5*time.Second, "video flows", func() bool { return r.Packets.Load() > 20 })

	markA, markB := a.Mark(), b.Mark()
	if err := a.Call(ctx, protocol.NewMute(va.TrackID, true), 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		c    *client.Client
		mark int
	}{{a, markA}, {b, markB}} {
		waitEvent(t, ctx, c.c, c.mark, "track-muted", func(e client.Event) bool {
			return e.Type == "track-muted" && e.TrackID == va.TrackID && e.Muted
		})
	}
	testutil.Eventually(t, 3*time.Second, "muted track stops being forwarded", func() bool {
		before := r.Packets.Load()
		time.Sleep(200 * time.Millisecond)
		return r.Packets.Load() == before
	})
	// A late joiner sees it muted.
	c := srv.Join(ctx, "mute")
	if tr := c.Others[0].Tracks; len(tr) != 1 || !tr[0].Muted {
		t.Errorf("late joiner sees %+v, want the track muted", tr)
	}

	before := r.Packets.Load()
	gapsBefore := r.SeqGaps.Load()
	if err := a.Call(ctx, protocol.NewMute(va.TrackID, false), 300*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "unmuted track resumes", func() bool { return r.Packets.Load() > before+20 })
	if r.SeqGaps.Load() != gapsBefore {
		t.Errorf("sequence gap across mute/unmute: %d numbers skipped", r.SeqGaps.Load()-gapsBefore)
	}

	// Muting somebody else's track is forbidden; an unknown one is not found.
	err := b.Call(ctx, protocol.NewMute(va.TrackID, true), time.Second)
	var cerr *client.Error
	if !errors.As(err, &cerr) || cerr.Code != "forbidden" {
		t.Errorf("muting another's track: %v, want forbidden", err)
	}
	err = a.Call(ctx, protocol.NewMute("t-none", true), time.Second)
	if !errors.As(err, &cerr) || cerr.Code != "not-found" {
		t.Errorf("muting an unknown track: %v, want not-found", err)
	}
}

// TestCollidingOffersConverge makes the client offer (to publish) while the
// server's offer (of the room's existing tracks) is in flight: the server
// ignores the client's offer, the client answers and offers again, and both
// directions end up working.
func TestCollidingOffersConverge(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{})
	a := srv.Join(ctx, "glare")
	va := st.Publish(ctx, t, a, "video")
	st.Publish(ctx, t, a, "audio")

	collided := false
	for attempt := 0; attempt < 10 && !collided; attempt++ {
		b, err := client.Connect(ctx, srv.URL, client.Options{Room: "glare", Name: fmt.Sprintf("b%d", attempt)})
		if err != nil {
			t.Fatal(err)
		}
		// Publish right after joining: the server's offer is on its way.
		if err := b.Join(ctx); err != nil {
			t.Fatal(err)
		}
		synth, err := client.NewSynth("video", "bv", b.Self.ID, 999, 300)
		if err != nil {
			t.Fatal(err)
		}
		id, _, err := b.Publish(ctx, synth.Track)
		if err != nil {
			t.Fatalf("publish during a collision: %v", err)
		}
		pctx, stop := context.WithCancel(ctx)
		go synth.Run(pctx, 10*time.Millisecond)

		collided = b.Collisions() > 0
		got := receiveTracks(t, b, 2)
		r := got[va.TrackID]
		testutil.Eventually(t, 5*time.Second, "b receives a's video", func() bool { return r.Packets.Load() > 20 })
		rA := receiveTracks(t, a, 1)[id]
		if rA == nil {
			t.Fatalf("a did not receive b's track %s", id)
		}
		testutil.Eventually(t, 5*time.Second, "a receives b's video", func() bool { return rA.Packets.Load() > 20 })
		stop()
		b.Close()
		// a's subscription to b ends with b.
		for len(a.Tracks()) > 0 {
			<-a.Tracks()
		}
	}
	t.Logf("collision seen: %v (the server side of a collision is also tested deterministically in package sfu)", collided)
}

// TestNAT1To1Candidates: with public addresses configured (a server behind
// a 1:1 NAT), the server's host candidates carry them instead of its own.
func TestNAT1To1Candidates(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{SFU: sfu.Config{NAT1To1IPs: []string{"203.0.113.7"}}})
	c := srv.Join(ctx, "nat")
	ev := waitEvent(t, ctx, c, 0, "a server candidate", func(e client.Event) bool {
		return e.Type == "candidate" && e.Candidate != nil && e.Candidate.Candidate != ""
	})
	if !strings.Contains(ev.Candidate.Candidate, " 203.0.113.7 ") || !strings.Contains(ev.Candidate.Candidate, "typ host") {
		t.Errorf("server candidate %q, want a host candidate on 203.0.113.7", ev.Candidate.Candidate)
	}
}
