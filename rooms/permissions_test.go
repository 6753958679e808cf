package rooms_test

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/signaling/client"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

// These tests run join tokens and permissions end to end: a real client
// over a WebSocket, the signaling layer's error codes, real pion peers.

var (
	secretA = []byte("0123456789abcdef0123456789abcdef")
	secretB = []byte("fedcba9876543210fedcba9876543210")
)

type authServer struct {
	*st.Server
	auth *rooms.Auth
	t    *testing.T
}

// newAuthServer serves rooms on demand that require a token, and a listed
// room "open" that does not; keys "a" and "b" (a rotation) are accepted.
func newAuthServer(t *testing.T) *authServer {
	t.Helper()
	auth, err := rooms.NewAuth(rooms.Key{ID: "a", Secret: secretA}, rooms.Key{ID: "b", Secret: secretB})
	if err != nil {
		t.Fatal(err)
	}
	srv := st.NewServer(t, st.Options{Rooms: rooms.Config{
		OnDemand: true, MaxParticipants: 10, Auth: auth, RequireToken: true,
		Listed: []rooms.RoomConfig{{Name: "open"}},
	}})
	return &authServer{Server: srv, auth: auth, t: t}
}

var everything = rooms.Permissions{Publish: true, Subscribe: true}

func (s *authServer) token(room, name string, p rooms.Permissions, kid string) string {
	s.t.Helper()
	tok, err := s.auth.Issue(rooms.Grant{Room: room, Name: name, Permissions: p, Expires: time.Now().Add(time.Hour)}, kid)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// dial joins and returns the client, or the protocol error code.
func (s *authServer) dial(ctx context.Context, room, name, token string) (*client.Client, string) {
	s.t.Helper()
	c, err := client.Dial(ctx, s.URL, client.Options{Room: room, Name: name, Token: token})
	if err != nil {
		var perr *client.Error
		if !errors.As(err, &perr) {
			s.t.Fatalf("join %s: %v", room, err)
		}
		return nil, perr.Code + ": " + perr.Message
	}
	s.t.Cleanup(c.Close)
	return c, ""
}

func sign(t *testing.T, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestJoinTokens: where a token is required, only a valid one for that very
// room opens it; everything else is `unauthorized`.
func TestJoinTokens(t *testing.T) {
	srv := newAuthServer(t)
	ctx := testutil.Context(t)
	valid := srv.token("standup", "", everything, "")
	parts := strings.Split(valid, ".")
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sig[0] ^= 0x01 // one bit of the signature flipped
	claims := func(exp time.Time) jwt.MapClaims {
		return jwt.MapClaims{"room": "standup", "exp": exp.Unix(), "permissions": map[string]bool{"publish": true, "subscribe": true, "admin": true}}
	}
	hour := time.Now().Add(time.Hour)

	refused := []struct{ name, token, reason string }{
		{"no token", "", "requires a token"},
		{"expired", sign(t, jwt.SigningMethodHS256, secretA, "a", claims(time.Now().Add(-time.Hour))), "expired"},
		{"wrong key", sign(t, jwt.SigningMethodHS256, []byte("an attacker's own 32-byte secret!"), "a", claims(hour)), "bad token signature"},
		{"unknown kid", sign(t, jwt.SigningMethodHS256, secretA, "c", claims(hour)), "unknown key"},
		{"tampered signature", parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(sig), "bad token signature"},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "a", claims(hour)), "HS256 only"},
		{"token for another room", srv.token("lobby", "", everything, ""), "another room"},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			c, code := srv.dial(ctx, "standup", "x", tc.token)
			if c != nil {
				t.Fatal("joined")
			}
			if !strings.HasPrefix(code, "unauthorized: ") || !strings.Contains(code, tc.reason) {
				t.Errorf("error %q, want unauthorized saying %q", code, tc.reason)
			}
		})
	}
	for _, info := range srv.Registry.Rooms(ctx) {
		if info.Name == "standup" {
			t.Errorf("refused joins created the room: %+v", info)
		}
	}

	// The room's own token opens it, signed with either key of the rotation.
	for _, kid := range []string{"a", "b"} {
		c, code := srv.dial(ctx, "standup", "x", srv.token("standup", "", everything, kid))
		if c == nil {
			t.Fatalf("token signed with %q: %s", kid, code)
		}
	}
	// A listed room without require_token opens without one; a bad token
	// is refused there too.
	if c, code := srv.dial(ctx, "open", "x", ""); c == nil {
		t.Errorf("open room without a token: %s", code)
	}
	if _, code := srv.dial(ctx, "open", "x", "garbage"); !strings.HasPrefix(code, "unauthorized: ") {
		t.Errorf("open room with a bad token: %q", code)
	}
}

// TestNameClaim: the token's name is the participant's, whatever the client asks.
func TestNameClaim(t *testing.T) {
	srv := newAuthServer(t)
	ctx := testutil.Context(t)
	ann, code := srv.dial(ctx, "r", "Ann", srv.token("r", "Ann", everything, ""))
	if ann == nil {
		t.Fatal(code)
	}
	mark := ann.Mark()
	mallory, code := srv.dial(ctx, "r", "Ann", srv.token("r", "Mallory", everything, ""))
	if mallory == nil {
		t.Fatal(code)
	}
	if mallory.Self.Name != "Mallory" {
		t.Errorf("joined as %q, want the token's name Mallory", mallory.Self.Name)
	}
	ev, err := ann.WaitFor(ctx, mark, func(e client.Event) bool { return e.Type == "participant-joined" })
	if err != nil {
		t.Fatal(err)
	}
	if ev.Participant.Name != "Mallory" {
		t.Errorf("others see %q, want Mallory", ev.Participant.Name)
	}
	// Without a name claim the client chooses.
	free, code := srv.dial(ctx, "r", "Bob", srv.token("r", "", everything, ""))
	if free == nil || free.Self.Name != "Bob" {
		t.Errorf("without a name claim: %v %s", free, code)
	}
}

// TestNoPublishPermission: an offer that publishes is refused (forbidden),
// nothing is announced, and the participant can still receive.
func TestNoPublishPermission(t *testing.T) {
	srv := newAuthServer(t)
	ctx := testutil.Context(t)
	viewer, code := srv.dial(ctx, "r", "viewer", srv.token("r", "", rooms.Permissions{Subscribe: true}, ""))
	if viewer == nil {
		t.Fatal(code)
	}
	other, code := srv.dial(ctx, "r", "other", srv.token("r", "", everything, ""))
	if other == nil {
		t.Fatal(code)
	}
	mark, otherMark := viewer.Mark(), other.Mark()
	synth, err := client.NewSynth("audio", "a", viewer.Self.ID, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() { _, _, _ = viewer.Publish(pctx, synth.Track) }() // waits in vain for track-published
	ev, err := viewer.WaitFor(ctx, mark, func(e client.Event) bool { return e.Type == "error" })
	if err != nil {
		t.Fatal(err)
	}
	if ev.Error.Code != "forbidden" || !strings.Contains(ev.Error.Message, "may not publish") {
		t.Errorf("publishing offer: %+v, want forbidden", ev.Error)
	}
	for _, info := range srv.Registry.Rooms(ctx) {
		for _, p := range info.Participants {
			if len(p.Tracks) > 0 {
				t.Errorf("%s has tracks: %+v", p.Name, p.Tracks)
			}
		}
	}
	// It still receives what others publish. That publication is also a
	// barrier: the room announces in order, so a track of the viewer's
	// would have been announced before it.
	pub := st.Publish(ctx, t, other, "audio")
	select {
	case <-viewer.Tracks():
	case <-time.After(15 * time.Second):
		t.Fatal("the viewer receives nothing")
	}
	for _, c := range []struct {
		c    *client.Client
		mark int
	}{{viewer, mark}, {other, otherMark}} {
		if _, err := c.c.WaitFor(ctx, c.mark, func(e client.Event) bool {
			return e.Type == "track-published" && e.Track.ID == pub.TrackID
		}); err != nil {
			t.Fatal(err)
		}
		for _, e := range c.c.Events()[c.mark:] {
			if e.Type == "track-published" && e.Track.ID != pub.TrackID {
				t.Errorf("%s was told of a track: %+v", c.c.Self.Name, e.Track)
			}
		}
	}
}

// TestNoSubscribePermission: never subscribed, automatically or on request.
func TestNoSubscribePermission(t *testing.T) {
	srv := newAuthServer(t)
	ctx := testutil.Context(t)
	pub, code := srv.dial(ctx, "r", "pub", srv.token("r", "", everything, ""))
	if pub == nil {
		t.Fatal(code)
	}
	early := st.Publish(ctx, t, pub, "audio")
	deaf, code := srv.dial(ctx, "r", "deaf", srv.token("r", "", rooms.Permissions{Publish: true}, ""))
	if deaf == nil {
		t.Fatal(code)
	}
	mark := deaf.Mark()
	late := st.Publish(ctx, t, pub, "video")
	if _, err := deaf.WaitFor(ctx, mark, func(e client.Event) bool {
		return e.Type == "track-published" && e.Track.ID == late.TrackID
	}); err != nil {
		t.Fatal(err)
	}
	err := deaf.Call(ctx, protocol.Subscribe{Tracks: []string{early.TrackID}}, time.Second)
	var perr *client.Error
	if !errors.As(err, &perr) || perr.Code != "forbidden" {
		t.Errorf("subscribe: %v, want forbidden", err)
	}
	// It may publish, and others receive it.
	st.Publish(ctx, t, deaf, "audio")
	select {
	case <-pub.Tracks():
	case <-time.After(15 * time.Second):
		t.Fatal("the publisher does not receive the deaf participant's track")
	}
	select {
	case tr := <-deaf.Tracks():
		t.Errorf("received track %s without the subscribe permission", tr.ID())
	case <-time.After(time.Second):
	}
	p, err := srv.Registry.Participant(ctx, "r", deaf.Self.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{early.TrackID, late.TrackID} {
		if _, ok := p.Peer().DownTrack(id); ok {
			t.Errorf("subscribed to %s", id)
		}
	}
}

// TestAdminMutesOthers: admin may mute anyone's track; others may not.
func TestAdminMutesOthers(t *testing.T) {
	srv := newAuthServer(t)
	ctx := testutil.Context(t)
	pub, code := srv.dial(ctx, "r", "pub", srv.token("r", "", everything, ""))
	if pub == nil {
		t.Fatal(code)
	}
	track := st.Publish(ctx, t, pub, "audio")
	peer, code := srv.dial(ctx, "r", "peer", srv.token("r", "", everything, ""))
	if peer == nil {
		t.Fatal(code)
	}
	admin, code := srv.dial(ctx, "r", "host", srv.token("r", "", rooms.Permissions{Admin: true, Subscribe: true}, ""))
	if admin == nil {
		t.Fatal(code)
	}
	err := peer.Call(ctx, protocol.NewMute(track.TrackID, true), time.Second)
	var perr *client.Error
	if !errors.As(err, &perr) || perr.Code != "forbidden" {
		t.Errorf("a participant without admin muting another's track: %v, want forbidden", err)
	}
	mark := pub.Mark()
	if err := admin.Call(ctx, protocol.NewMute(track.TrackID, true), 500*time.Millisecond); err != nil {
		t.Fatalf("admin mute: %v", err)
	}
	if _, err := pub.WaitFor(ctx, mark, func(e client.Event) bool {
		return e.Type == "track-muted" && e.TrackID == track.TrackID && e.Muted
	}); err != nil {
		t.Fatalf("the publisher was not told: %v", err)
	}
	info := srv.Registry.Rooms(ctx)
	for _, r := range info {
		for _, p := range r.Participants {
			for _, tr := range p.Tracks {
				if tr.ID == track.TrackID && !tr.Muted {
					t.Error("the track is not muted")
				}
			}
		}
	}
}

// tokenUntil issues a token for room, named name, that expires at exp.
func (s *authServer) tokenUntil(room, name string, exp time.Time) string {
	s.t.Helper()
	tok, err := s.auth.Issue(rooms.Grant{Room: room, Name: name, Permissions: everything, Expires: exp}, "")
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// TestTokenExpiry: a session lasts as long as its token. Tokens that
// expired a few seconds short of the 30 s tolerance for clock skew are
// still accepted at join, and expire for good a second or two later.
func TestTokenExpiry(t *testing.T) {
	srv := newAuthServer(t)
	ctx := testutil.Context(t)
	nearlyExpired := func() time.Time { return time.Now().Add(-28 * time.Second) }

	// Without a fresh token: warned, then removed.
	lapsing, code := srv.dial(ctx, "exp", "lapsing", srv.tokenUntil("exp", "lapsing", nearlyExpired()))
	if lapsing == nil {
		t.Fatal(code)
	}
	// With one: warned, refreshed, and it stays.
	firstExp := nearlyExpired()
	staying, code := srv.dial(ctx, "exp", "staying", srv.tokenUntil("exp", "staying", firstExp))
	if staying == nil {
		t.Fatal(code)
	}
	warnCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	for _, c := range []*client.Client{lapsing, staying} {
		if _, err := c.WaitFor(warnCtx, 0, func(e client.Event) bool { return e.Type == "token-expiring" }); err != nil {
			t.Fatalf("%s was not warned of its token's expiry: %v", c.Self.Name, err)
		}
	}
	// Fresh tokens that do not fit the session are refused, and change nothing.
	refused := []struct{ name, token, code string }{
		{"another room", srv.tokenUntil("elsewhere", "staying", time.Now().Add(time.Hour)), "unauthorized"},
		{"another name", srv.tokenUntil("exp", "someone", time.Now().Add(time.Hour)), "unauthorized"},
		{"other permissions", srv.token("exp", "staying", rooms.Permissions{Subscribe: true}, ""), "forbidden"},
		{"expired", srv.tokenUntil("exp", "staying", time.Now().Add(-time.Hour)), "unauthorized"},
		{"forged", srv.tokenUntil("exp", "staying", time.Now().Add(time.Hour)) + "x", "unauthorized"},
	}
	for _, r := range refused {
		_, err := staying.Refresh(ctx, r.token)
		var perr *client.Error
		if !errors.As(err, &perr) || perr.Code != r.code {
			t.Errorf("refresh with a token for %s: %v, want %s", r.name, err, r.code)
		}
	}
	fresh := time.Now().Add(time.Hour)
	exp, err := staying.Refresh(ctx, srv.tokenUntil("exp", "staying", fresh))
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if exp.Unix() != fresh.Unix() {
		t.Errorf("refreshed until %s, want %s", exp, fresh)
	}

	select {
	case <-lapsing.Done():
		if ce := lapsing.CloseError(); ce == nil || ce.Code != 4000 || !strings.Contains(ce.Text, "token expired") {
			t.Errorf("closed with %v, want 4000 naming the token's expiry", ce)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a participant whose token expired is still there")
	}
	if _, err := staying.WaitFor(ctx, 0, func(e client.Event) bool {
		return e.Type == "participant-left" && e.LeftID == lapsing.Self.ID
	}); err != nil {
		t.Fatalf("the room was not told: %v", err)
	}
	// Past the end of staying's first token, it is still there.
	firstEnd := time.Unix(firstExp.Unix()+1, 0).Add(30 * time.Second)
	select {
	case <-staying.Done():
		t.Fatalf("the refreshed participant was removed: %v", staying.CloseError())
	case <-time.After(time.Until(firstEnd) + 500*time.Millisecond):
	}
	ps, err := srv.Registry.Participants(ctx, "exp")
	if err != nil || len(ps) != 1 || ps[0].Name() != "staying" {
		t.Errorf("participants %v (%v), want only staying", ps, err)
	}
}
