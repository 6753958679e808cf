package signaling_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/signaling/client"
)

// speaker is a participant publishing synthetic audio and video.
type speaker struct {
	c            *client.Client
	audio, video *client.Synth
}

func joinSpeaker(ctx context.Context, t *testing.T, srv *st.Server, room, name string, level uint32) *speaker {
	t.Helper()
	c := srv.Join(ctx, room, client.Options{Name: name})
	a := st.Publish(ctx, t, c, "audio")
	a.Synth.Level.Store(level)
	v := st.Publish(ctx, t, c, "video")
	return &speaker{c: c, audio: a.Synth, video: v.Synth}
}

// viewer is a WHEP session with its two received tracks.
type viewer struct {
	*client.WHIP
	audio, video *st.Received
}

func watchWHEP(ctx context.Context, t *testing.T, endpoint string, opt client.WHIPOptions) *viewer {
	t.Helper()
	w, err := client.WatchWHEP(ctx, endpoint, opt)
	if err != nil {
		t.Fatalf("WHEP %s: %v", endpoint, err)
	}
	t.Cleanup(func() { _ = w.PC.Close() })
	v := &viewer{WHIP: w}
	timeout := time.After(15 * time.Second)
	for v.audio == nil || v.video == nil {
		select {
		case tr := <-w.Tracks:
			if tr.Kind() == webrtc.RTPCodecTypeAudio {
				v.audio = st.Receive(tr)
			} else {
				v.video = st.Receive(tr)
			}
		case <-timeout:
			t.Fatalf("the viewer of %s got audio %v, video %v", endpoint, v.audio != nil, v.video != nil)
		}
	}
	return v
}

// shows waits until the viewer receives s's audio and video.
func (v *viewer) shows(t *testing.T, s *speaker, within time.Duration) {
	t.Helper()
	testutil.Eventually(t, within, "the viewer showing "+s.c.Self.Name, func() bool {
		return v.audio.LastSource.Load() == s.audio.Source && v.video.LastSource.Load() == s.video.Source
	})
}

// intact checks that every stream the viewer got was whole: payloads
// intact, no sequence number skipped at or between the switches, each
// new source starting on a keyframe.
func (v *viewer) intact(t *testing.T) {
	t.Helper()
	for _, r := range []*st.Received{v.audio, v.video} {
		if n := r.Corrupt.Load(); n != 0 {
			t.Errorf("%s: %d corrupt payloads", r.Track.Kind(), n)
		}
		if n := r.SeqGaps.Load(); n != 0 {
			t.Errorf("%s: %d sequence numbers skipped", r.Track.Kind(), n)
		}
		for _, s := range r.Switches() {
			if s.FirstSeq != s.MaxSeq+1 {
				t.Errorf("%s: switch %d→%d at sequence %d after %d", r.Track.Kind(), s.From, s.To, s.FirstSeq, s.MaxSeq)
			}
			if r.Track.Kind() == webrtc.RTPCodecTypeVideo && !s.Key {
				t.Errorf("video: switch %d→%d does not start on a keyframe", s.From, s.To)
			}
		}
	}
	if !v.video.FirstKey.Load() {
		t.Error("video does not start on a keyframe")
	}
}

// TestWHEPFollowsSpeaker: a WHEP viewer of a three-party room plays the
// loudest participant's audio and video, changes source when another
// participant gets loud, keeps one unbroken stream per kind, and is never
// renegotiated; a loud participant without a camera takes the sound but
// not the picture; a viewer of one participant plays that one whoever
// speaks, and ends when it leaves; DELETE ends a session.
func TestWHEPFollowsSpeaker(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{})
	silent := uint32(127)
	a := joinSpeaker(ctx, t, srv, "stage", "A", 20)
	b := joinSpeaker(ctx, t, srv, "stage", "B", silent)
	c := joinSpeaker(ctx, t, srv, "stage", "C", silent)

	endpoint, err := client.WHEPEndpoint(srv.URL, "stage", "")
	if err != nil {
		t.Fatal(err)
	}
	v := watchWHEP(ctx, t, endpoint, client.WHIPOptions{})
	v.shows(t, a, 5*time.Second)

	start := time.Now()
	a.audio.Level.Store(silent)
	b.audio.Level.Store(20)
	v.shows(t, b, 5*time.Second)
	t.Logf("the viewer showed B %s after B got loud", time.Since(start).Round(10*time.Millisecond))

	c.audio.Level.Store(10)
	b.audio.Level.Store(silent)
	v.shows(t, c, 5*time.Second)
	v.intact(t)
	if n := len(v.video.Switches()); n != 2 {
		t.Errorf("the video switched %d times, want 2 (A→B→C)", n)
	}

	// A speaker without a camera: the sound follows, the picture stays.
	d := srv.Join(ctx, "stage", client.Options{Name: "D"})
	dAudio := st.Publish(ctx, t, d, "audio").Synth
	c.audio.Level.Store(silent)
	dAudio.Level.Store(10)
	testutil.Eventually(t, 5*time.Second, "the viewer hearing D", func() bool {
		return v.audio.LastSource.Load() == dAudio.Source
	})
	// The picture keeps coming (a feed switched to nothing would stop it).
	shown := v.video.Packets.Load()
	testutil.Eventually(t, 5*time.Second, "C's picture while D speaks", func() bool {
		return v.video.Packets.Load() > shown+50
	})
	if v.video.LastSource.Load() != c.video.Source || len(v.video.Switches()) != 2 {
		t.Errorf("the picture left C for a speaker without a camera: %+v", v.video.Switches())
	}
	if got := v.PC.CurrentRemoteDescription(); got == nil || v.PC.SignalingState() != webrtc.SignalingStateStable {
		t.Error("the viewer's session is not stable")
	}

	// One participant, whoever speaks.
	endpointA, err := client.WHEPEndpoint(srv.URL, "stage", a.c.Self.ID)
	if err != nil {
		t.Fatal(err)
	}
	va := watchWHEP(ctx, t, endpointA, client.WHIPOptions{})
	va.shows(t, a, 5*time.Second)
	time.Sleep(time.Second)
	if va.video.LastSource.Load() != a.video.Source || len(va.video.Switches()) != 0 {
		t.Errorf("the viewer of A switched: %v", va.video.Switches())
	}
	va.intact(t)

	// The room lists the viewers for what they are.
	viewers := 0
	for _, r := range srv.Registry.Rooms(ctx) {
		for _, p := range r.Participants {
			if p.Via == rooms.ViaWHEP {
				viewers++
			}
		}
	}
	if viewers != 2 || srv.Handler.WHEPSessions() != 2 {
		t.Fatalf("%d viewers in the room, %d sessions; want 2", viewers, srv.Handler.WHEPSessions())
	}

	// A leaves: its viewer's session ends; the speaker's viewer goes on.
	a.c.Close()
	testutil.Eventually(t, 10*time.Second, "the viewer of A ended", func() bool {
		return srv.Handler.WHEPSessions() == 1 && va.PC.ConnectionState() != webrtc.PeerConnectionStateConnected
	})
	before := v.video.Packets.Load()
	testutil.Eventually(t, 5*time.Second, "media for the speaker's viewer", func() bool {
		return v.video.Packets.Load() > before+50
	})
	if err := v.Close(ctx); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "no viewer left", func() bool {
		return srv.Handler.WHEPSessions() == 0 && len(srv.Registry.Rooms(ctx)[0].Participants) == 3
	})
}

// TestWHEPRefused: requests the server cannot take get their status, and
// leave nothing behind.
func TestWHEPRefused(t *testing.T) {
	ctx := testutil.Context(t)
	srv, issue := tokenServer(t)
	watch := rooms.Permissions{Subscribe: true}
	// A player's offer: audio and video, receive only.
	recvOffer := offerSDP(t, webrtc.RTPTransceiverDirectionRecvonly, webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo)
	sendOffer := validOffer(t)
	base := srv.HTTP.URL + "/whep/"
	pub := srv.Join(ctx, "private", client.Options{Token: issue("private", rooms.Permissions{Publish: true, Subscribe: true})})

	checkStatuses(ctx, t, []httpCase{
		{"wrong content type", "POST", base + "open", "application/json", "", recvOffer, http.StatusUnsupportedMediaType},
		{"not SDP", "POST", base + "open", "application/sdp", "", "hello", http.StatusBadRequest},
		{"an offer that sends", "POST", base + "open", "application/sdp", "", sendOffer, http.StatusForbidden},
		{"bad room name", "POST", base + "no%20spaces", "application/sdp", "", recvOffer, http.StatusBadRequest},
		{"token required, none", "POST", base + "private", "application/sdp", "", recvOffer, http.StatusUnauthorized},
		{"forged token", "POST", base + "private", "application/sdp", "Bearer " + issue("private", watch) + "x", recvOffer, http.StatusUnauthorized},
		{"token without subscribe", "POST", base + "private", "application/sdp", "Bearer " + issue("private", rooms.Permissions{Publish: true}), recvOffer, http.StatusForbidden},
		{"unknown participant", "POST", base + "private/p-nobody", "application/sdp", "Bearer " + issue("private", watch), recvOffer, http.StatusNotFound},
		{"unknown session PATCH", "PATCH", base + "open/session/0123", "application/trickle-ice-sdpfrag", "", "a=ice-ufrag:x\r\n", http.StatusNotFound},
		{"unknown session DELETE", "DELETE", base + "open/session/0123", "", "", "", http.StatusNotFound},
		{"GET", "GET", base + "open", "", "", "", http.StatusMethodNotAllowed},
	})

	// A viewer's session is not a publisher's: its URL under /whip/ is
	// unknown, and another token cannot end it.
	tok := issue("private", watch)
	endpoint, err := client.WHEPEndpoint(srv.URL, "private", pub.Self.ID)
	if err != nil {
		t.Fatal(err)
	}
	w, err := client.WatchWHEP(ctx, endpoint, client.WHIPOptions{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	defer w.PC.Close()
	id := w.Location[len(w.Location)-32:]
	for _, tc := range []struct {
		name, url, auth string
		want            int
	}{
		{"as a WHIP session", srv.HTTP.URL + "/whip/private/" + id, "Bearer " + tok, http.StatusNotFound},
		{"with another token", w.Location, "Bearer " + issue("private", rooms.Permissions{Publish: true, Subscribe: true}), http.StatusUnauthorized},
		{"without a token", w.Location, "", http.StatusUnauthorized},
	} {
		if resp := whipRequest(t, ctx, "DELETE", tc.url, "", tc.auth, "", nil); resp.StatusCode != tc.want {
			t.Errorf("DELETE %s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	if err := w.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Nothing leaked, and refused requests did not use up the address's
	// allowance.
	nothingLeft(ctx, t, srv)
	for range 40 {
		if resp := whipRequest(t, ctx, "POST", base+"open", "application/sdp", "", sendOffer, nil); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("an offer that sends: %d", resp.StatusCode)
		}
	}
	open, err := client.WHEPEndpoint(srv.URL, "open", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.WatchWHEP(ctx, open, client.WHIPOptions{}); err != nil {
		t.Fatalf("a good request after 40 refused ones: %v", err)
	}
}

// TestWHEPSimulcastFollowsBandwidth: a WHEP viewer whose downlink is
// capped at 300 kbit/s is moved to the publisher's lowest simulcast layer,
// and back to the best when the cap is lifted, on one unbroken stream.
func TestWHEPSimulcastFollowsBandwidth(t *testing.T) {
	ctx := testutil.Context(t)
	vn := st.NewVNet(t)
	srv := st.NewServer(t, st.Options{SFU: sfu.Config{Net: vn.Host("10.0.0.1")}})
	pubNet := vn.Host("10.0.0.2")
	viewNet, link := vn.LimitedHost("10.0.0.3", 100_000_000)

	a := srv.Join(ctx, "bwe", client.Options{API: vn.API(pubNet)})
	_, layers := simulcastPublisher(ctx, t, a, 100)
	audio, err := client.NewSynth("audio", "mic", a.Self.ID, 110, 60)
	if err != nil {
		t.Fatal(err)
	}
	if _, tr, err := a.Publish(ctx, audio.Track); err != nil {
		t.Fatal(err)
	} else {
		audio.UseTransceiver(tr)
	}
	go audio.Run(ctx, 20*time.Millisecond)

	endpoint, err := client.WHEPEndpoint(srv.URL, "bwe", a.Self.ID)
	if err != nil {
		t.Fatal(err)
	}
	v := watchWHEP(ctx, t, endpoint, client.WHIPOptions{API: vn.API(viewNet)})
	q, f := layers[0].Source, layers[2].Source
	recv := v.video
	testutil.Eventually(t, 10*time.Second, "an unconstrained viewer gets layer f", func() bool { return recv.LastSource.Load() == f })

	start := time.Now()
	link.SetRate(300_000)
	testutil.Eventually(t, 5*time.Second, "a viewer capped at 300 kbit/s is moved to layer q", func() bool { return recv.LastSource.Load() == q })
	t.Logf("down to q after %s", time.Since(start).Round(100*time.Millisecond))

	start = time.Now()
	link.SetRate(100_000_000)
	testutil.Eventually(t, 10*time.Second, "after the cap is lifted the viewer is back on f", func() bool { return recv.LastSource.Load() == f })
	t.Logf("back to f after %s", time.Since(start).Round(100*time.Millisecond))
	if n := recv.Corrupt.Load(); n != 0 {
		t.Errorf("%d corrupt payloads", n)
	}
	// Switching up (the link has room again), the new layer starts on a
	// keyframe; a switch down may see it lost on the saturated link, and
	// repaired after.
	ups := 0
	for _, s := range recv.Switches() {
		if s.To == f {
			ups++
			if !s.Key {
				t.Errorf("switch %d→%d does not start on a keyframe", s.From, s.To)
			}
		}
	}
	if ups == 0 {
		t.Errorf("switches %+v: none back up to f", recv.Switches())
	}
}

// TestWHEPRestartICE: an ICE restart through PATCH keeps a viewer's
// session, and its streams go on on the new ICE session: video whole
// (what was lost while ICE changed paths is retransmitted), audio intact.
func TestWHEPRestartICE(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{})
	a := joinSpeaker(ctx, t, srv, "stage", "A", 20)
	endpoint, err := client.WHEPEndpoint(srv.URL, "stage", a.c.Self.ID)
	if err != nil {
		t.Fatal(err)
	}
	v := watchWHEP(ctx, t, endpoint, client.WHIPOptions{})
	v.shows(t, a, 5*time.Second)
	oldUfrag := iceUfragOf(v.PC.CurrentRemoteDescription().SDP)
	from := uint16(v.video.LastSeq.Load())
	if err := v.RestartICE(ctx); err != nil {
		t.Fatalf("ICE restart: %v", err)
	}
	if u := iceUfragOf(v.PC.CurrentRemoteDescription().SDP); u == oldUfrag || u == "" {
		t.Errorf("the server's ufrag after the restart is %q (was %q)", u, oldUfrag)
	}
	before := v.video.Packets.Load()
	testutil.Eventually(t, 10*time.Second, "media after the ICE restart", func() bool {
		return v.video.Packets.Load() > before+100 && v.PC.ICEConnectionState() == webrtc.ICEConnectionStateConnected
	})
	to := uint16(v.video.LastSeq.Load()) - 20
	testutil.Eventually(t, 5*time.Second, "the video whole across the restart", func() bool {
		return v.video.SeqHoles(from, to) == 0
	})
	t.Logf("skipped on first sight across the restart: video %d, audio %d", v.video.SeqGaps.Load(), v.audio.SeqGaps.Load())
	for _, r := range []*st.Received{v.audio, v.video} {
		if n := r.Corrupt.Load(); n != 0 {
			t.Errorf("%s: %d corrupt payloads", r.Track.Kind(), n)
		}
	}
	if srv.Handler.WHEPSessions() != 1 {
		t.Errorf("%d sessions after the restart", srv.Handler.WHEPSessions())
	}
}

// TestWHEPRoomLimits: viewers are counted apart from the participants: a
// full call still takes a viewer, viewers do not fill the call, and the
// viewers' own limit refuses one more (503).
func TestWHEPRoomLimits(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{Rooms: rooms.Config{OnDemand: true, MaxParticipants: 2, MaxViewers: 2}})
	a := joinSpeaker(ctx, t, srv, "small", "A", 20)
	endpoint, err := client.WHEPEndpoint(srv.URL, "small", "")
	if err != nil {
		t.Fatal(err)
	}
	watchWHEP(ctx, t, endpoint, client.WHIPOptions{}).shows(t, a, 5*time.Second)
	watchWHEP(ctx, t, endpoint, client.WHIPOptions{})
	// Two viewers in, the call still has room for its second person...
	srv.Join(ctx, "small", client.Options{Name: "B"})
	// ...and is now full, while the viewers are too.
	if c, err := client.Dial(ctx, srv.URL, client.Options{Room: "small", Name: "C"}); err == nil {
		c.Close()
		t.Error("a third person joined a room of two")
	}
	_, err = client.WatchWHEP(ctx, endpoint, client.WHIPOptions{})
	var refused *client.HTTPError
	if !errors.As(err, &refused) || refused.Status != http.StatusServiceUnavailable {
		t.Errorf("a third viewer: %v, want 503", err)
	}
}
