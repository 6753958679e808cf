package sfu

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

func TestForRelay(t *testing.T) {
	build := func(setters ...stun.Setter) []byte {
		m, err := stun.Build(append([]stun.Setter{stun.TransactionID}, setters...)...)
		if err != nil {
			t.Fatal(err)
		}
		return m.Raw
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want bool
	}{
		{"ICE check", build(stun.BindingRequest, stun.NewUsername("a:b"), stun.Fingerprint), false},
		{"ICE check answered", build(stun.BindingSuccess, stun.Fingerprint), false},
		{"binding indication", build(stun.NewType(stun.MethodBinding, stun.ClassIndication)), false},
		{"plain STUN query", build(stun.BindingRequest, stun.Fingerprint), true},
		{"TURN allocate", build(stun.NewType(stun.MethodAllocate, stun.ClassRequest)), true},
		{"TURN refresh", build(stun.NewType(stun.MethodRefresh, stun.ClassRequest), stun.NewUsername("a:b")), true},
		{"TURN send indication", build(stun.NewType(stun.MethodSend, stun.ClassIndication)), true},
		{"ChannelData", []byte{0x40, 0x00, 0x00, 0x04, 1, 2, 3, 4}, true},
		{"ChannelData, last channel", []byte{0x4f, 0xff, 0x00, 0x00}, true},
		{"DTLS", []byte{22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false},
		{"RTP", []byte{0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, false},
		{"short", []byte{0x00, 0x03}, false},
		{"no cookie", make([]byte, 20), false},
		{"attribute overrunning", append(build(stun.BindingRequest)[:20:20], 0x00, 0x06, 0xff, 0xff), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := forRelay(tc.b); got != tc.want {
				t.Errorf("forRelay = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSharedUDP checks that a shared media port hands TURN's packets to
// SharedUDP, and that what TURN writes leaves from the media port.
func TestSharedUDP(t *testing.T) {
	e, err := NewEngine(Config{UDPPort: freeUDPPort(t), Loopback: true, IPs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, ShareUDP: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var side net.PacketConn
	for _, s := range e.SharedUDP() {
		if s.LocalAddr().(*net.UDPAddr).IP.To4() != nil {
			side = s
		}
	}
	if side == nil {
		t.Fatalf("no IPv4 socket among %d shared", len(e.SharedUDP()))
	}
	sides := []net.PacketConn{side}
	port := side.LocalAddr().(*net.UDPAddr).Port
	client, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	m, _ := stun.Build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest))
	if _, err := client.Write(m.Raw); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 1500)
	_ = sides[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	n, from, err := sides[0].ReadFrom(buf)
	if err != nil || string(buf[:n]) != string(m.Raw) || from.String() != client.LocalAddr().String() {
		t.Fatalf("side read %d bytes from %v: %v", n, from, err)
	}
	if _, err := sides[0].WriteTo([]byte("answer"), from); err != nil {
		t.Fatal(err)
	}
	_ = client.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := client.Read(buf); err != nil || string(buf[:n]) != "answer" {
		t.Fatalf("client read %q: %v", buf[:n], err)
	}
	_ = e.Close()
	if _, _, err := sides[0].ReadFrom(buf); err == nil {
		t.Error("side still reads after the engine closed")
	}
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

// FuzzForRelay: the media port's classifier never panics, and whatever it
// hands to TURN is ChannelData or a STUN message of the right shape.
func FuzzForRelay(f *testing.F) {
	m, _ := stun.Build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest))
	f.Add(m.Raw)
	b, _ := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername("a:b"))
	f.Add(b.Raw)
	f.Add([]byte{0x40, 0x01, 0x00, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		if !forRelay(b) {
			return
		}
		if b[0] >= 64 && b[0] <= 79 {
			return
		}
		if !stun.IsMessage(b) {
			t.Fatalf("%x handed to TURN: neither ChannelData nor STUN", b)
		}
	})
}

// BenchmarkForRelay is the cost the shared media port adds to every packet
// read: an RTP packet, an ICE check and a TURN ChannelData packet.
func BenchmarkForRelay(b *testing.B) {
	check, _ := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername("abcd:efgh"), stun.NewShortTermIntegrity("pwd"), stun.Fingerprint)
	for _, bc := range []struct {
		name string
		pkt  []byte
	}{
		{"rtp", append([]byte{0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1}, make([]byte, 1000)...)},
		{"ice-check", check.Raw},
		{"channel-data", append([]byte{0x40, 0x00, 0x03, 0xe8}, make([]byte, 1000)...)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				forRelay(bc.pkt)
			}
		})
	}
}
