package sfu

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"
)

// batchPair returns a batchConn and a plain socket to send to, both on
// 127.0.0.1, closed at the test's end.
func batchPair(t *testing.T) (*batchConn, *net.UDPConn) {
	t.Helper()
	recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = recv.Close() })
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	b, err := newBatchConn(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b, recv
}

// TestBatchConn: what is written while a batch is open arrives when it
// closes, intact and in order, also past one sendmmsg's worth; writes
// outside a batch go out at once.
func TestBatchConn(t *testing.T) {
	b, recv := batchPair(t)
	to := recv.LocalAddr().(*net.UDPAddr).AddrPort()

	read := func() []byte {
		t.Helper()
		buf := make([]byte, 1600)
		_ = recv.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := recv.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		return buf[:n]
	}
	pkt := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 100+i) }

	if _, err := b.WriteToAddrPort(pkt(1), to); err != nil {
		t.Fatal(err)
	}
	if got := read(); !bytes.Equal(got, pkt(1)) {
		t.Fatal("direct write garbled")
	}

	b.begin()
	const n = batchSize*2 + 5
	for i := range n {
		if _, err := b.WriteToAddrPort(pkt(i), to); err != nil {
			t.Fatal(err)
		}
	}
	b.end()
	for i := range n {
		if got := read(); !bytes.Equal(got, pkt(i)) {
			t.Fatalf("packet %d: got %d bytes of %d", i, len(got), got[0])
		}
	}
	big := make([]byte, 200)
	if a := testing.AllocsPerRun(20, func() {
		b.begin()
		for i := range 10 {
			_, _ = b.WriteToAddrPort(big[:100+i], to)
		}
		b.end()
	}); a > 1 && !raceEnabled {
		t.Errorf("a batch of 10 allocates %.0f times", a)
	}
}

// TestBatchConnRead: the mux's reads return the datagram and who sent it,
// over IPv4 and IPv6.
func TestBatchConnRead(t *testing.T) {
	for _, tc := range []struct{ network, ip string }{{"udp4", "127.0.0.1"}, {"udp6", "::1"}} {
		t.Run(tc.network, func(t *testing.T) {
			local := &net.UDPAddr{IP: net.ParseIP(tc.ip)}
			c, err := net.ListenUDP(tc.network, local)
			if err != nil {
				t.Skipf("no %s loopback: %v", tc.network, err)
			}
			b, err := newBatchConn(c)
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			peer, err := net.ListenUDP(tc.network, local)
			if err != nil {
				t.Fatal(err)
			}
			defer peer.Close()
			if _, err := peer.WriteTo([]byte("hello"), b.LocalAddr()); err != nil {
				t.Fatal(err)
			}
			_ = b.SetReadDeadline(time.Now().Add(2 * time.Second))
			buf := make([]byte, 1500)
			n, from, err := b.ReadFromAddrPort(buf)
			if err != nil {
				t.Fatal(err)
			}
			if string(buf[:n]) != "hello" || from != peer.LocalAddr().(*net.UDPAddr).AddrPort() {
				t.Fatalf("read %q from %v, want %q from %v", buf[:n], from, "hello", peer.LocalAddr())
			}
			// An empty socket waits in the poller, so a deadline ends the
			// read; so does closing the socket, which ends the mux's loop.
			_ = b.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			if _, _, err := b.ReadFromAddrPort(buf); err == nil {
				t.Fatal("read with nothing to read and a deadline passed: no error")
			}
			_ = b.SetReadDeadline(time.Time{})
			done := make(chan error, 1)
			go func() {
				_, _, err := b.ReadFromAddrPort(buf)
				done <- err
			}()
			_ = b.Close() // before or during the read: either way it must end
			select {
			case err := <-done:
				if err == nil {
					t.Fatal("read on a closed socket: no error")
				}
			case <-time.After(2 * time.Second):
				t.Fatal("read still blocked after the socket closed")
			}
		})
	}
}

// TestBatchConnRefused: a packet the kernel refuses (here an IPv6
// destination on an IPv4 socket) is lost alone; the rest of its batch
// still goes.
func TestBatchConnRefused(t *testing.T) {
	b, recv := batchPair(t)
	to := recv.LocalAddr().(*net.UDPAddr).AddrPort()
	bad := netip.MustParseAddrPort("[2001:db8::1]:9")
	if _, err := b.WriteToAddrPort([]byte{9}, bad); err == nil {
		t.Error("a lone write the kernel refused reported no error")
	}
	b.begin()
	for i, dst := range []netip.AddrPort{bad, to, bad, to, to} {
		if _, err := b.WriteToAddrPort([]byte{byte(i)}, dst); err != nil {
			t.Fatal(err)
		}
	}
	b.end()
	buf := make([]byte, 10)
	for _, want := range []byte{1, 3, 4} {
		_ = recv.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := recv.Read(buf)
		if err != nil {
			t.Fatalf("packet %d: %v", want, err)
		}
		if n != 1 || buf[0] != want {
			t.Fatalf("got %v, want packet %d", buf[:n], want)
		}
	}
}
