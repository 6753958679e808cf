package sfu

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// TestBatchConn: what is written while a batch is open arrives when it
// closes, intact and in order, also past one sendmmsg's worth; writes
// outside a batch go out at once.
func TestBatchConn(t *testing.T) {
	recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer recv.Close()
	to := recv.LocalAddr().(*net.UDPAddr).AddrPort()
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	b := newBatchConn(c, false)
	defer b.Close()

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
