package signaling_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/signaling"
	"github.com/tessera-rtc/tessera/signaling/client"
)

// whipPublisher is a WHIP session sending an H264 and an Opus synthetic
// track, the shape of OBS's WHIP output.
type whipPublisher struct {
	*client.WHIP
	video, audio *client.Synth
}

func publishWHIP(ctx context.Context, t *testing.T, endpoint string, opt client.WHIPOptions) (*whipPublisher, error) {
	t.Helper()
	video, err := client.NewSynth(webrtc.MimeTypeH264, "video", "whip", 901, 600)
	if err != nil {
		t.Fatal(err)
	}
	audio, err := client.NewSynth("audio", "audio", "whip", 902, 100)
	if err != nil {
		t.Fatal(err)
	}
	w, err := client.PublishWHIP(ctx, endpoint, opt, video.Track, audio.Track)
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { _ = w.PC.Close() })
	for _, tr := range w.PC.GetTransceivers() {
		switch tr.Sender().Track() {
		case video.Track:
			video.UseTransceiver(tr)
		case audio.Track:
			audio.UseTransceiver(tr)
		}
	}
	go video.Run(ctx, 10*time.Millisecond)
	go audio.Run(ctx, 20*time.Millisecond)
	return &whipPublisher{WHIP: w, video: video, audio: audio}, nil
}

func whipEndpoint(t *testing.T, srv *st.Server, room string) string {
	t.Helper()
	u, err := client.WHIPEndpoint(srv.URL, room)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// receivedFrom checks that the subscriber's tracks carry the publisher's
// payloads, intact, and keep arriving.
func receivedFrom(t *testing.T, got map[string]*st.Received, pub *whipPublisher) {
	t.Helper()
	want := map[uint32]string{pub.video.Source: "video", pub.audio.Source: "audio"}
	testutil.Eventually(t, 10*time.Second, "media from the WHIP publisher", func() bool {
		n := 0
		for _, r := range got {
			if _, ok := want[r.Source]; ok && r.Packets.Load() >= 40 {
				n++
			}
		}
		return n == len(want)
	})
	for _, r := range got {
		if r.Corrupt.Load() != 0 {
			t.Errorf("%s: %d corrupt payloads", want[r.Source], r.Corrupt.Load())
		}
	}
}

func TestWHIPPublish(t *testing.T) {
	for _, trickle := range []bool{false, true} {
		name := "candidates in the offer"
		if trickle {
			name = "trickled with PATCH"
		}
		t.Run(name, func(t *testing.T) {
			ctx := testutil.Context(t)
			srv := st.NewServer(t, st.Options{})
			sub := srv.Join(ctx, "room1")
			mark := sub.Mark()

			pub, err := publishWHIP(ctx, t, whipEndpoint(t, srv, "room1")+"?name=OBS", client.WHIPOptions{Trickle: trickle})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(pub.Location, srv.HTTP.URL+"/whip/room1/") {
				t.Errorf("Location %q", pub.Location)
			}
			ev := waitEvent(t, ctx, sub, mark, "the WHIP publisher joining", func(e client.Event) bool { return e.Type == "participant-joined" })
			if ev.Participant.Via != "whip" || ev.Participant.Name != "OBS" {
				t.Errorf("participant-joined %+v, want via whip named OBS", ev.Participant)
			}
			receivedFrom(t, receiveTracks(t, sub, 2), pub)

			// The publisher is sent nothing: the server neither subscribes
			// it to the subscriber's track nor makes it an offer, which it
			// would have no way to receive.
			st.Publish(ctx, t, sub, webrtc.MimeTypeH264)
			time.Sleep(300 * time.Millisecond)
			parts, err := srv.Registry.Participants(ctx, "room1")
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range parts {
				if p.Via() != rooms.ViaWHIP {
					continue
				}
				stats := p.Peer().Stats()
				if len(stats.Subscribed) != 0 {
					t.Errorf("the WHIP publisher is subscribed to %d tracks", len(stats.Subscribed))
				}
				for _, e := range stats.Negotiation {
					if strings.HasPrefix(e.What, "server offer") {
						t.Errorf("the WHIP publisher was made an offer: %s", e.What)
					}
				}
			}

			mark = sub.Mark()
			if err := pub.Close(ctx); err != nil {
				t.Fatalf("DELETE: %v", err)
			}
			waitEvent(t, ctx, sub, mark, "the WHIP publisher leaving", func(e client.Event) bool {
				return e.Type == "participant-left" && e.LeftID == ev.Participant.ID
			})
			if n := srv.Handler.WHIPSessions(); n != 0 {
				t.Errorf("%d WHIP sessions after DELETE", n)
			}
			// The session is gone: a second DELETE finds nothing.
			err = pub.Close(ctx)
			var he *client.HTTPError
			if !errors.As(err, &he) || he.Status != http.StatusNotFound {
				t.Errorf("second DELETE: %v, want 404", err)
			}
		})
	}
}

// TestWHIPRestartICE: an ICE restart through PATCH keeps the session, and
// media flows on the new ICE session.
func TestWHIPRestartICE(t *testing.T) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{})
	sub := srv.Join(ctx, "room1")
	pub, err := publishWHIP(ctx, t, whipEndpoint(t, srv, "room1"), client.WHIPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := receiveTracks(t, sub, 2)
	receivedFrom(t, got, pub)
	before := pub.PC.SCTP().Transport().ICETransport()
	pair, err := before.GetSelectedCandidatePair()
	if err != nil || pair == nil {
		t.Fatalf("no selected pair before the restart: %v", err)
	}
	oldUfrag := iceUfragOf(pub.PC.CurrentRemoteDescription().SDP)
	if err := pub.RestartICE(ctx); err != nil {
		t.Fatalf("ICE restart: %v", err)
	}
	if u := iceUfragOf(pub.PC.CurrentRemoteDescription().SDP); u == oldUfrag || u == "" {
		t.Errorf("the server's ufrag after the restart is %q (was %q)", u, oldUfrag)
	}
	counts := map[uint32]int64{}
	for _, r := range got {
		counts[r.Source] = r.Packets.Load()
	}
	testutil.Eventually(t, 10*time.Second, "media after the ICE restart", func() bool {
		for _, r := range got {
			if r.Packets.Load() < counts[r.Source]+40 {
				return false
			}
		}
		return pub.PC.ICEConnectionState() == webrtc.ICEConnectionStateConnected
	})
	for _, r := range got {
		if r.Corrupt.Load() != 0 {
			t.Errorf("%d corrupt payloads", r.Corrupt.Load())
		}
	}
}

func iceUfragOf(desc string) string {
	for _, line := range strings.Split(desc, "\r\n") {
		if v, ok := strings.CutPrefix(line, "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}

// tokenServer is a server whose rooms need a token, but for the listed
// room "open"; issue makes a token for room granting p.
func tokenServer(t *testing.T) (*st.Server, func(room string, p rooms.Permissions) string) {
	t.Helper()
	auth, err := rooms.NewAuth(rooms.Key{ID: "a", Secret: []byte("http-test-secret-0123456789abcdef")})
	if err != nil {
		t.Fatal(err)
	}
	srv := st.NewServer(t, st.Options{
		Rooms: rooms.Config{
			OnDemand: true, MaxParticipants: 10, Auth: auth, RequireToken: true,
			Listed: []rooms.RoomConfig{{Name: "open"}},
		},
	})
	return srv, func(room string, p rooms.Permissions) string {
		tok, err := auth.Issue(rooms.Grant{Room: room, Permissions: p, Expires: time.Now().Add(time.Hour)}, "")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
}

// nothingLeft waits until no WHIP or WHEP participant or session is left.
func nothingLeft(ctx context.Context, t *testing.T, srv *st.Server) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, "no WHIP or WHEP participant or session left", func() bool {
		for _, r := range srv.Registry.Rooms(ctx) {
			for _, p := range r.Participants {
				if p.Via != "" {
					return false
				}
			}
		}
		return srv.Handler.WHIPSessions() == 0 && srv.Handler.WHEPSessions() == 0
	})
}

// httpCase is a request and the status it must get.
type httpCase struct {
	name        string
	method, url string
	contentType string
	auth        string
	body        string
	want        int
}

// checkStatuses makes each request and checks its status, and that a 401
// says how to authenticate.
func checkStatuses(ctx context.Context, t *testing.T, cases []httpCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := whipRequest(t, ctx, tc.method, tc.url, tc.contentType, tc.auth, tc.body, nil)
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s: %d, want %d", tc.method, tc.url, resp.StatusCode, tc.want)
			}
			if tc.want == http.StatusUnauthorized && resp.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

// TestWHIPRefused: requests the server cannot take get their status, and
// leave nothing behind: no participant, no session, no count against the
// client's address.
func TestWHIPRefused(t *testing.T) {
	ctx := testutil.Context(t)
	srv, issue := tokenServer(t)
	everything := rooms.Permissions{Publish: true, Subscribe: true}
	offer := validOffer(t)
	base := srv.HTTP.URL + "/whip/"

	checkStatuses(ctx, t, []httpCase{
		{"wrong content type", "POST", base + "open", "application/json", "", offer, http.StatusUnsupportedMediaType},
		{"no content type", "POST", base + "open", "", "", offer, http.StatusUnsupportedMediaType},
		{"not SDP", "POST", base + "open", "application/sdp", "", "hello", http.StatusBadRequest},
		{"SDP without media", "POST", base + "open", "application/sdp", "", "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n", http.StatusBadRequest},
		{"too large", "POST", base + "open", "application/sdp", "", offer + strings.Repeat("a=x-pad:0123456789\r\n", 5000), http.StatusRequestEntityTooLarge},
		{"bad room name", "POST", base + "no%20spaces", "application/sdp", "", offer, http.StatusBadRequest},
		{"token required, none", "POST", base + "private", "application/sdp", "", offer, http.StatusUnauthorized},
		{"not a bearer token", "POST", base + "private", "application/sdp", "Basic dXNlcjpwdw==", offer, http.StatusUnauthorized},
		{"forged token", "POST", base + "private", "application/sdp", "Bearer " + issue("private", everything) + "x", offer, http.StatusUnauthorized},
		{"token for another room", "POST", base + "private", "application/sdp", "Bearer " + issue("other", everything), offer, http.StatusUnauthorized},
		{"token without publish", "POST", base + "private", "application/sdp", "Bearer " + issue("private", rooms.Permissions{Subscribe: true}), offer, http.StatusForbidden},
		{"unknown session PATCH", "PATCH", base + "open/0123", "application/trickle-ice-sdpfrag", "", "a=ice-ufrag:x\r\n", http.StatusNotFound},
		{"unknown session DELETE", "DELETE", base + "open/0123", "", "", "", http.StatusNotFound},
		{"GET", "GET", base + "open", "", "", "", http.StatusMethodNotAllowed},
	})

	// A session's own URL refuses another token, and a bad fragment.
	tok := issue("private", rooms.Permissions{Publish: true})
	pub, err := publishWHIP(ctx, t, base+"private", client.WHIPOptions{Token: tok})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, method, auth, contentType, body string
		header                                http.Header
		want                                  int
	}{
		{"DELETE without the token", "DELETE", "", "", "", nil, http.StatusUnauthorized},
		{"DELETE with another token", "DELETE", "Bearer " + issue("private", everything), "", "", nil, http.StatusUnauthorized},
		{"PATCH of the wrong type", "PATCH", "Bearer " + tok, "application/sdp", "a=ice-ufrag:x\r\n", nil, http.StatusUnsupportedMediaType},
		{"PATCH of a candidate outside a section", "PATCH", "Bearer " + tok, "application/trickle-ice-sdpfrag", "a=candidate:1 1 udp 1 127.0.0.1 9 typ host\r\n", nil, http.StatusBadRequest},
		{"PATCH of a bad candidate", "PATCH", "Bearer " + tok, "application/trickle-ice-sdpfrag", "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\na=candidate:nonsense\r\n", nil, http.StatusBadRequest},
		{"ICE restart without If-Match", "PATCH", "Bearer " + tok, "application/trickle-ice-sdpfrag", "a=ice-ufrag:newu\r\na=ice-pwd:newpasswordnewpassword\r\n", nil, http.StatusPreconditionRequired},
		{"PATCH of a stale ICE session", "PATCH", "Bearer " + tok, "application/trickle-ice-sdpfrag", "a=end-of-candidates\r\n", http.Header{"If-Match": {`"stale"`}}, http.StatusPreconditionFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := whipRequest(t, ctx, tc.method, pub.Location, tc.contentType, tc.auth, tc.body, tc.header)
			if resp.StatusCode != tc.want {
				t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
			}
		})
	}
	// Still there, and still sending: none of that touched the session.
	sub := srv.Join(ctx, "private", client.Options{Token: issue("private", everything)})
	receivedFrom(t, receiveTracks(t, sub, 2), pub)
	if err := pub.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// Nothing leaked: no WHIP participant or session is left, and more
	// refused requests than one address may hold sessions did not use
	// up its allowance.
	nothingLeft(ctx, t, srv)
	for range 40 {
		resp := whipRequest(t, ctx, "POST", base+"open", "application/sdp", "", "v=0\r\n", nil)
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("bad SDP: %d", resp.StatusCode)
		}
	}
	if _, err := publishWHIP(ctx, t, base+"open", client.WHIPOptions{}); err != nil {
		t.Fatalf("a good request after 40 refused ones: %v", err)
	}
}

func whipRequest(t *testing.T, ctx context.Context, method, url, contentType, auth, body string, header http.Header) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	// Redirects are answers to check, not to follow.
	hc := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// validOffer is a WHIP offer the server would accept: audio, send only.
func validOffer(t *testing.T) string {
	return offerSDP(t, webrtc.RTPTransceiverDirectionSendonly, webrtc.RTPCodecTypeAudio)
}

// offerSDP is a pion client's offer of one section of each kind in
// direction dir.
func offerSDP(t *testing.T, dir webrtc.RTPTransceiverDirection, kinds ...webrtc.RTPCodecType) string {
	t.Helper()
	pc, err := webrtc.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, k := range kinds {
		if _, err := pc.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: dir}); err != nil {
			t.Fatal(err)
		}
	}
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	return offer.SDP
}

// TestWHIPRedirect: in a cluster, an encoder publishing into a room that
// another node hosts is sent there (307, RFC 9725 section 4.5), with its
// query; nothing is joined here.
func TestWHIPRedirect(t *testing.T) {
	ctx := testutil.Context(t)
	for _, tc := range []struct{ node, want string }{
		{"ws://10.0.0.2:8080/ws", "http://10.0.0.2:8080/whip/stage?name=OBS"},
		{"wss://node2.example.com/ws", "https://node2.example.com/whip/stage?name=OBS"},
	} {
		srv := st.NewServer(t, st.Options{Signaling: signaling.Config{Router: &fakeRouter{url: tc.node}}})
		resp := whipRequest(t, ctx, "POST", srv.HTTP.URL+"/whip/stage?name=OBS", "application/sdp", "", validOffer(t), nil)
		if resp.StatusCode != http.StatusTemporaryRedirect || resp.Header.Get("Location") != tc.want {
			t.Errorf("node %s: %d to %q, want 307 to %q", tc.node, resp.StatusCode, resp.Header.Get("Location"), tc.want)
		}
		if n := len(srv.Registry.Rooms(ctx)); n != 0 || srv.Handler.WHIPSessions() != 0 {
			t.Errorf("node %s: %d rooms, %d sessions here after a redirect", tc.node, n, srv.Handler.WHIPSessions())
		}
	}
}
