package relay

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/pion/turn/v5"
)

const secret = "0123456789abcdef0123456789abcdef"

// fixture is a relay in front of one "media socket" on loopback, with its
// TURN ports on loopback too.
type fixture struct {
	s     *Server
	media *net.UDPConn // stands for the server's media port
	udp   string       // TURN over UDP
	tcp   string       // TURN over TCP
}

func newFixture(t testing.TB, tweak func(*Config)) *fixture {
	t.Helper()
	media := listenUDP(t)
	turnUDP := listenUDP(t)
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Secret: secret,
		Media:  []netip.AddrPort{media.LocalAddr().(*net.UDPAddr).AddrPort()},
		UDP:    []net.PacketConn{turnUDP},
		TCP:    tcp,
		Logger: slog.New(slog.DiscardHandler),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &fixture{s: s, media: media, udp: turnUDP.LocalAddr().String(), tcp: tcp.Addr().String()}
}

func listenUDP(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// client is a TURN client over UDP with the given credentials.
func (f *fixture) client(t *testing.T, user, pass string) *turn.Client {
	t.Helper()
	return f.clientOn(t, listenUDP(t), f.udp, user, pass)
}

func (f *fixture) clientOn(t *testing.T, conn net.PacketConn, server, user, pass string) *turn.Client {
	t.Helper()
	c, err := turn.NewClient(&turn.ClientConfig{
		TURNServerAddr: server, STUNServerAddr: server, Conn: conn,
		Username: user, Password: pass, Realm: "tessera", RTO: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// tcpClient is a TURN client over one TCP connection.
func (f *fixture) tcpClient(t *testing.T, user, pass string) *turn.Client {
	t.Helper()
	conn, err := net.Dial("tcp", f.tcp)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return f.clientOn(t, turn.NewSTUNConn(conn), f.tcp, user, pass)
}

// roundTrip sends through the relay to the media socket and back, and
// checks both directions arrive intact, from the addresses each side
// expects.
func (f *fixture) roundTrip(t *testing.T, relayConn net.PacketConn) {
	t.Helper()
	up := []byte("from the client, through the relay")
	if _, err := relayConn.WriteTo(up, f.media.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = f.media.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, from, err := f.media.ReadFromUDPAddrPort(buf)
	if err != nil {
		t.Fatalf("media socket received nothing through the relay: %v", err)
	}
	if !bytes.Equal(buf[:n], up) {
		t.Fatalf("media socket received %q, want %q", buf[:n], up)
	}
	if from.String() != relayConn.LocalAddr().String() {
		t.Errorf("packet came from %s, want the relayed address %s", from, relayConn.LocalAddr())
	}
	down := []byte("from the server, back through the relay")
	if _, err := f.media.WriteToUDPAddrPort(down, from); err != nil {
		t.Fatal(err)
	}
	_ = relayConn.SetReadDeadline(time.Now().Add(3 * time.Second))
	n, src, err := relayConn.ReadFrom(buf)
	if err != nil {
		t.Fatalf("client received nothing back: %v", err)
	}
	if !bytes.Equal(buf[:n], down) || src.String() != f.media.LocalAddr().String() {
		t.Fatalf("client received %q from %s, want %q from %s", buf[:n], src, down, f.media.LocalAddr())
	}
}

func TestRelayToMedia(t *testing.T) {
	f := newFixture(t, nil)
	user, pass, exp := f.s.Credentials("p1")
	if !strings.HasSuffix(user, ":p1") || time.Until(exp) < 11*time.Hour {
		t.Fatalf("credentials %q expire %v: want expiry:participant, about 12h ahead", user, exp)
	}
	for _, tc := range []struct {
		name      string
		client    func() *turn.Client
		transport string
	}{
		{"udp", func() *turn.Client { return f.client(t, user, pass) }, "udp"},
		{"tcp", func() *turn.Client { return f.tcpClient(t, user, pass) }, "tcp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rc, err := tc.client().Allocate()
			if err != nil {
				t.Fatalf("allocate: %v", err)
			}
			defer rc.Close()
			f.roundTrip(t, rc)
			a, ok := f.s.ByRelayAddr(rc.LocalAddr().(*net.UDPAddr).AddrPort())
			if !ok || a.Participant != "p1" || a.Transport != tc.transport {
				t.Errorf("allocation = %+v, %v; want p1 over %s", a, ok, tc.transport)
			}
		})
	}
}

func TestRelayRefusesBadCredentials(t *testing.T) {
	gone := "p-gone"
	f := newFixture(t, func(c *Config) { c.Active = func(p string) bool { return p != gone } })
	user, pass, _ := f.s.Credentials("p1")
	expiredUser, expiredPass, _ := turn.GenerateLongTermTURNRESTCredentials(secret, "p1", -time.Minute)
	otherUser, otherPass, _ := turn.GenerateLongTermTURNRESTCredentials("another secret of enough length", "p1", time.Hour)
	goneUser, gonePass, _ := f.s.Credentials(gone)
	for _, tc := range []struct{ name, user, pass string }{
		{"wrong password", user, pass[:len(pass)-2] + "xx"},
		{"another participant's name", strings.Replace(user, ":p1", ":p2", 1), pass},
		{"a later expiry", "9" + user, pass},
		{"expired", expiredUser, expiredPass},
		{"another secret", otherUser, otherPass},
		{"no expiry", "p1", pass},
		{"participant who left", goneUser, gonePass},
		{"empty", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.client(t, tc.user, tc.pass).Allocate()
			if err == nil {
				t.Fatal("allocation granted")
			}
		})
	}
	if n := len(f.s.Allocations()); n != 0 {
		t.Errorf("%d allocations after refused requests", n)
	}
}

func TestRelayOnlyToMedia(t *testing.T) {
	f := newFixture(t, nil)
	user, pass, _ := f.s.Credentials("p1")
	rc, err := f.client(t, user, pass).Allocate()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()

	// Another address: the permission is refused, so nothing can be sent.
	foreign := &net.UDPAddr{IP: net.IPv4(192, 0, 2, 1), Port: 9}
	if _, err := rc.WriteTo([]byte("x"), foreign); err == nil {
		t.Error("write to a foreign address through the relay succeeded")
	}

	// Another port of the media IP: a permission is per IP, so it is
	// granted, but the relay socket drops the packets both ways.
	other := listenUDP(t)
	if _, err := rc.WriteTo([]byte("to a local service"), other.LocalAddr()); err != nil {
		t.Fatalf("write: %v", err)
	}
	_ = other.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	buf := make([]byte, 1500)
	if n, _, err := other.ReadFrom(buf); err == nil {
		t.Fatalf("a non-media port received %q through the relay", buf[:n])
	}
	if _, err := other.WriteTo([]byte("from a local service"), rc.LocalAddr()); err != nil {
		t.Fatal(err)
	}
	f.roundTrip(t, rc) // the media socket still works, and only its packet comes back
	if got := f.s.Refused(); got < 2 {
		t.Errorf("refused = %d, want both stray packets counted", got)
	}
}

func TestRelayQuota(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.MaxPerParticipant = 2 })
	user, pass, _ := f.s.Credentials("p1")
	var conns []net.PacketConn
	for i := range 2 {
		rc, err := f.client(t, user, pass).Allocate()
		if err != nil {
			t.Fatalf("allocation %d: %v", i+1, err)
		}
		conns = append(conns, rc)
	}
	if _, err := f.client(t, user, pass).Allocate(); err == nil {
		t.Fatal("third allocation granted over a quota of 2")
	}
	u2, p2, _ := f.s.Credentials("p2")
	rc, err := f.client(t, u2, p2).Allocate()
	if err != nil {
		t.Fatalf("another participant refused: %v", err)
	}
	_ = rc.Close()
	// Releasing one makes room again.
	_ = conns[0].Close()
	deadline := time.Now().Add(3 * time.Second)
	for {
		rc, err := f.client(t, user, pass).Allocate()
		if err == nil {
			_ = rc.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no allocation after one was released: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRelayStreamMustAllocate(t *testing.T) {
	d := allocateWithin
	t.Cleanup(func() { allocateWithin = d }) // after the server's own cleanup
	allocateWithin = time.Second
	f := newFixture(t, nil)
	conn, err := net.Dial("tcp", f.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A connection that never allocates is dropped after allocateWithin.
	_ = conn.SetReadDeadline(time.Now().Add(allocateWithin + 5*time.Second))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("idle connection still open after the allocation deadline")
	}
}

func TestNewChecksConfig(t *testing.T) {
	if _, err := New(Config{Secret: "short", Media: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}}); !errors.Is(err, ErrSecret) {
		t.Errorf("short secret: %v", err)
	}
	if _, err := New(Config{Secret: secret}); !errors.Is(err, ErrNoMedia) {
		t.Errorf("no media: %v", err)
	}
}

// TestRelayPublicAddress: behind a 1:1 NAT the client knows the media port
// by its public address. The relay sends to the local socket behind it,
// returns its packets under the public address, and still refuses other
// ports of that address and other public ones.
func TestRelayPublicAddress(t *testing.T) {
	public := netip.MustParseAddr("203.0.113.7")
	f := newFixture(t, func(c *Config) {
		c.Public = map[netip.Addr]netip.Addr{public: netip.MustParseAddr("127.0.0.1")}
	})
	media := f.media.LocalAddr().(*net.UDPAddr).AddrPort()
	pub := netip.AddrPortFrom(public, media.Port())
	for _, tc := range []struct {
		dst  netip.AddrPort
		want netip.AddrPort
		ok   bool
	}{
		{media, media, true},
		{pub, media, true},
		{netip.AddrPortFrom(public, media.Port()+1), netip.AddrPort{}, false},
		{netip.AddrPortFrom(netip.MustParseAddr("203.0.113.8"), media.Port()), netip.AddrPort{}, false},
	} {
		if got, ok := f.s.toMedia(tc.dst); ok != tc.ok || (ok && got != tc.want) {
			t.Errorf("toMedia(%s) = %s, %v; want %s, %v", tc.dst, got, ok, tc.want, tc.ok)
		}
	}
	if got, ok := f.s.fromMedia(media); !ok || got != pub {
		t.Errorf("fromMedia(%s) = %s, %v; want the public %s", media, got, ok, pub)
	}
	if !f.s.permitted(nil, net.IP(public.AsSlice())) || f.s.permitted(nil, net.IPv4(203, 0, 113, 8)) {
		t.Error("permissions: the public address must be allowed, another one refused")
	}
}
