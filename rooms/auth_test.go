package rooms

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tessera-rtc/tessera/internal/testutil"
)

var (
	testSecret1 = []byte("0123456789abcdef0123456789abcdef")
	testSecret2 = []byte("fedcba9876543210fedcba9876543210")
)

func testAuth(t *testing.T, keys ...Key) *Auth {
	t.Helper()
	if len(keys) == 0 {
		keys = []Key{{ID: "k1", Secret: testSecret1}}
	}
	a, err := NewAuth(keys...)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// signRaw signs arbitrary claims with arbitrary headers, as an attacker or
// a careless issuer would.
func signRaw(t *testing.T, method jwt.SigningMethod, key any, kid string, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestNewAuthChecksKeys(t *testing.T) {
	for _, tc := range []struct {
		keys []Key
		want string
	}{
		{nil, "at least one key"},
		{[]Key{{ID: "", Secret: testSecret1}}, "without an id"},
		{[]Key{{ID: "a", Secret: []byte("short")}}, "secret of 5 bytes (at least 32)"},
		{[]Key{{ID: "a", Secret: testSecret1}, {ID: "a", Secret: testSecret2}}, `"a" given twice`},
	} {
		if _, err := NewAuth(tc.keys...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewAuth(%d keys) = %v, want %q", len(tc.keys), err, tc.want)
		}
	}
}

func TestIssueAndVerify(t *testing.T) {
	a := testAuth(t, Key{ID: "old", Secret: testSecret1}, Key{ID: "new", Secret: testSecret2})
	exp := time.Now().Add(time.Hour).Truncate(time.Second)
	g := Grant{Room: "standup", Name: "Ann", Permissions: Permissions{Publish: true, Admin: true}, Expires: exp}
	for _, kid := range []string{"", "old", "new"} {
		tok, err := a.Issue(g, kid)
		if err != nil {
			t.Fatal(err)
		}
		got, err := a.Verify(tok)
		if err != nil {
			t.Fatalf("kid %q: %v", kid, err)
		}
		if got.Room != g.Room || got.Name != g.Name || got.Permissions != g.Permissions || !got.Expires.Equal(exp) {
			t.Errorf("kid %q: verified %+v, want %+v", kid, got, g)
		}
	}
	// The header names the key, the payload holds the claims in the open.
	tok, _ := a.Issue(g, "new")
	parts := strings.Split(tok, ".")
	header, _ := base64.RawURLEncoding.DecodeString(parts[0])
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	for _, want := range []string{`"alg":"HS256"`, `"kid":"new"`} {
		if !strings.Contains(string(header), want) {
			t.Errorf("header %s lacks %s", header, want)
		}
	}
	for _, want := range []string{`"room":"standup"`, `"name":"Ann"`, `"permissions":{"publish":true,"subscribe":false,"admin":true}`, `"exp":`} {
		if !strings.Contains(string(payload), want) {
			t.Errorf("payload %s lacks %s", payload, want)
		}
	}

	if _, err := a.Issue(Grant{Room: "r"}, ""); err == nil {
		t.Error("a token without expiry was issued")
	}
	if _, err := a.Issue(Grant{Room: "r", Expires: exp}, "nope"); err == nil {
		t.Error("a token was issued with an unknown key")
	}
	if _, err := a.Issue(Grant{Room: "bad room", Expires: exp}, ""); err == nil {
		t.Error("a token was issued for an invalid room name")
	}
}

// TestVerifyRefuses covers every way a token can be wrong: each is refused
// with ErrUnauthorized and a reason the client can act on.
func TestVerifyRefuses(t *testing.T) {
	a := testAuth(t)
	now := time.Now()
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwt.MapClaims{"room": "r", "exp": now.Add(time.Hour).Unix(), "permissions": map[string]bool{"publish": true}}
		if mod != nil {
			mod(c)
		}
		return c
	}
	valid := signRaw(t, jwt.SigningMethodHS256, testSecret1, "k1", claims(nil))
	if _, err := a.Verify(valid); err != nil {
		t.Fatalf("the valid token is refused: %v", err)
	}
	parts := strings.Split(valid, ".")
	otherPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"room":"r","exp":9999999999,"permissions":{"publish":true,"admin":true}}`))
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	sig[3] ^= 0x01 // one bit of the signature flipped
	flipped := base64.RawURLEncoding.EncodeToString(sig)
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, token, reason string
	}{
		{"empty", "", "malformed"},
		{"garbage", "not.a.jwt", "malformed"},
		{"expired an hour ago", signRaw(t, jwt.SigningMethodHS256, testSecret1, "k1", claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-time.Hour).Unix() })), "expired"},
		{"expired beyond the clock skew", signRaw(t, jwt.SigningMethodHS256, testSecret1, "k1", claims(func(c jwt.MapClaims) { c["exp"] = now.Add(-2 * clockSkew).Unix() })), "expired"},
		{"no exp", signRaw(t, jwt.SigningMethodHS256, testSecret1, "k1", claims(func(c jwt.MapClaims) { delete(c, "exp") })), "no expiry"},
		{"not valid yet", signRaw(t, jwt.SigningMethodHS256, testSecret1, "k1", claims(func(c jwt.MapClaims) { c["nbf"] = now.Add(time.Hour).Unix() })), "not valid yet"},
		{"issued in the future", signRaw(t, jwt.SigningMethodHS256, testSecret1, "k1", claims(func(c jwt.MapClaims) { c["iat"] = now.Add(time.Hour).Unix() })), "issued in the future"},
		{"no room", signRaw(t, jwt.SigningMethodHS256, testSecret1, "k1", claims(func(c jwt.MapClaims) { delete(c, "room") })), "no room claim"},
		{"wrong key under a known kid", signRaw(t, jwt.SigningMethodHS256, testSecret2, "k1", claims(nil)), "bad token signature"},
		{"unknown kid", signRaw(t, jwt.SigningMethodHS256, testSecret1, "k9", claims(nil)), "unknown key"},
		{"no kid", signRaw(t, jwt.SigningMethodHS256, testSecret1, "", claims(nil)), "no key id"},
		{"tampered signature", parts[0] + "." + parts[1] + "." + flipped, "bad token signature"},
		{"tampered payload", parts[0] + "." + otherPayload + "." + parts[2], "bad token signature"},
		{"alg none", signRaw(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, "k1", claims(nil)), "HS256 only"},
		{"alg none, unsigned", base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","kid":"k1"}`)) + "." + parts[1] + ".", "HS256 only"},
		{"HS512", signRaw(t, jwt.SigningMethodHS512, testSecret1, "k1", claims(nil)), "HS256 only"},
		{"ES256", signRaw(t, jwt.SigningMethodES256, ecKey, "k1", claims(nil)), "HS256 only"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g, err := a.Verify(tc.token)
			if !errors.Is(err, ErrUnauthorized) {
				t.Fatalf("Verify = %+v, %v; want ErrUnauthorized", g, err)
			}
			if !strings.Contains(err.Error(), tc.reason) {
				t.Errorf("err = %v, want it to say %q", err, tc.reason)
			}
		})
	}
}

func TestVerifyToleratesClockSkew(t *testing.T) {
	a := testAuth(t)
	tok := signRaw(t, jwt.SigningMethodHS256, testSecret1, "k1", jwt.MapClaims{
		"room": "r", "exp": time.Now().Add(-clockSkew / 3).Unix(), "nbf": time.Now().Add(clockSkew / 3).Unix(),
	})
	if _, err := a.Verify(tok); err != nil {
		t.Errorf("a token a few seconds off is refused: %v", err)
	}
}

// TestJoinAuthorization runs Local.Join's policy: which rooms need a token,
// what a token grants, and the name it imposes.
func TestJoinAuthorization(t *testing.T) {
	a := testAuth(t)
	reg := newRegistry(t, Config{
		OnDemand: true, MaxParticipants: 5, Auth: a, RequireToken: true,
		Listed: []RoomConfig{{Name: "open"}, {Name: "closed", RequireToken: true}},
	})
	token := func(room, name string, p Permissions) string {
		tok, err := a.Issue(Grant{Room: room, Name: name, Permissions: p, Expires: time.Now().Add(time.Minute)}, "")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	joinWith := func(room, name, tok string) (*Participant, error) {
		return reg.Join(t.Context(), JoinRequest{Room: room, Name: name, Token: tok, AutoSubscribe: true, Conn: &recorder{}})
	}

	// A listed room without require_token opens without a token, with the
	// default permissions.
	p, err := joinWith("open", "x", "")
	if err != nil {
		t.Fatal(err)
	}
	if p.Permissions() != noToken || !p.autoSubscribe {
		t.Errorf("tokenless permissions = %+v", p.Permissions())
	}
	// A bad token is refused even where none is needed.
	if _, err := joinWith("open", "x", "garbage"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("bad token in an open room: %v", err)
	}
	for _, room := range []string{"closed", "on-demand"} {
		if _, err := joinWith(room, "x", ""); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s without a token: %v, want ErrUnauthorized", room, err)
		}
		if _, err := joinWith(room, "x", token("elsewhere", "", noToken)); !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), "another room") {
			t.Errorf("%s with another room's token: %v", room, err)
		}
		p, err := joinWith(room, "Mallory", token(room, "Ann", Permissions{Publish: true}))
		if err != nil {
			t.Fatalf("%s with its token: %v", room, err)
		}
		if p.Name() != "Ann" {
			t.Errorf("%s: name %q, want the token's %q", room, p.Name(), "Ann")
		}
		if got := p.Permissions(); got != (Permissions{Publish: true}) || p.autoSubscribe {
			t.Errorf("%s: permissions %+v, autoSubscribe %v", room, got, p.autoSubscribe)
		}
	}
	// The unauthorized did not create the room they asked for.
	for _, info := range reg.Rooms(t.Context()) {
		if info.Name == "elsewhere" {
			t.Error("a refused join created a room")
		}
	}

	// Without keys, a token cannot be verified.
	bare := newRegistry(t, Config{OnDemand: true, MaxParticipants: 5})
	if _, err := bare.Join(t.Context(), JoinRequest{Room: "r", Name: "x", Token: token("r", "", noToken), Conn: &recorder{}}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("token on a server without keys: %v", err)
	}
}

// TestReloadRooms changes the policy of a running registry: a new listed
// room appears, an unlisted empty room goes, an unlisted busy one stays
// until empty and takes no newcomers, and tokens start to be required.
func TestReloadRooms(t *testing.T) {
	reg := newRegistry(t, Config{
		MaxParticipants: 2,
		Listed:          []RoomConfig{{Name: "keep"}, {Name: "busy"}, {Name: "idle"}},
	})
	busy, _ := join(t, reg, "busy", "a")
	join(t, reg, "keep", "a")
	join(t, reg, "keep", "b")
	if _, err := reg.Join(t.Context(), JoinRequest{Room: "keep", Name: "c", Conn: &recorder{}}); !errors.Is(err, ErrRoomFull) {
		t.Fatalf("third in keep: %v", err)
	}

	a := testAuth(t)
	err := reg.Reload(t.Context(), Config{
		MaxParticipants: 2,
		Auth:            a,
		Listed:          []RoomConfig{{Name: "keep", MaxParticipants: 3}, {Name: "new", RequireToken: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	names := func() []string {
		var out []string
		for _, info := range reg.Rooms(t.Context()) {
			out = append(out, info.Name)
		}
		return out
	}
	if got := strings.Join(names(), " "); got != "busy keep new" {
		t.Errorf("rooms after reload: %s, want busy keep new", got)
	}
	for _, info := range reg.Rooms(t.Context()) {
		if info.Name == "keep" && info.MaxParticipants != 3 {
			t.Errorf("keep's limit is %d, want 3", info.MaxParticipants)
		}
	}
	join(t, reg, "keep", "c") // the new limit applies
	if _, err := reg.Join(t.Context(), JoinRequest{Room: "busy", Name: "b", Conn: &recorder{}}); !errors.Is(err, ErrRoomNotFound) {
		t.Errorf("join an unlisted room in use: %v, want ErrRoomNotFound", err)
	}
	if _, err := reg.Join(t.Context(), JoinRequest{Room: "new", Name: "b", Conn: &recorder{}}); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("join the new room without a token: %v, want ErrUnauthorized", err)
	}
	tok, _ := a.Issue(Grant{Room: "new", Permissions: noToken, Expires: time.Now().Add(time.Minute)}, "")
	if _, err := reg.Join(t.Context(), JoinRequest{Room: "new", Name: "b", Token: tok, Conn: &recorder{}}); err != nil {
		t.Errorf("join the new room with a token: %v", err)
	}
	// The unlisted room's last participant leaves: it goes.
	busy.Leave()
	testutil.Eventually(t, 5*time.Second, "the busy participant is gone", func() bool { return !strings.Contains(strings.Join(names(), " "), "busy") })

	// Listed again, it comes back; unknown names are refused.
	if err := reg.Reload(t.Context(), Config{MaxParticipants: 2, Listed: []RoomConfig{{Name: "busy"}, {Name: "busy"}}}); err == nil {
		t.Error("a room listed twice was accepted")
	}
	if err := reg.Reload(t.Context(), Config{MaxParticipants: 2, Listed: []RoomConfig{{Name: "busy"}}}); err != nil {
		t.Fatal(err)
	}
	join(t, reg, "busy", "b")

	// With rooms on demand, a room taken off the list in use becomes one of
	// them: newcomers are welcome, and it goes when empty.
	if err := reg.Reload(t.Context(), Config{MaxParticipants: 2, OnDemand: true}); err != nil {
		t.Fatal(err)
	}
	p, _ := join(t, reg, "busy", "c")
	p.Leave()
	for _, q := range mustParticipants(t, reg, "busy") {
		q.Leave()
	}
	testutil.Eventually(t, 5*time.Second, "the busy participant is gone", func() bool { return !slices.Contains(names(), "busy") })
}

func mustParticipants(t *testing.T, reg *Local, room string) []*Participant {
	t.Helper()
	parts, err := reg.Participants(t.Context(), room)
	if err != nil {
		t.Fatal(err)
	}
	return parts
}
