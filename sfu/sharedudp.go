package sfu

import (
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"
)

// The media port shared with a TURN server. Packets that arrive on the
// UDP port are told apart by their first bytes (RFC 7983): DTLS and
// SRTP/SRTCP are ICE's; so are STUN Binding messages carrying a USERNAME
// (ICE connectivity checks). A TURN request or indication (any STUN
// method but Binding), a plain STUN Binding request (no USERNAME: a client
// asking its reflexive address) and TURN ChannelData (first byte 64-79)
// go to the TURN server, through a sideConn.

// forRelay reports whether a packet that arrived on the media port is for
// the TURN server. It reads only the header and the attribute headers, and
// allocates nothing: it runs for every packet read.
func forRelay(b []byte) bool {
	if len(b) < 4 {
		return false
	}
	switch first := b[0]; {
	case first >= 64 && first <= 79: // ChannelData: channel numbers 0x4000-0x4FFF
		return true
	case first > 3: // DTLS, RTP, RTCP or noise
		return false
	}
	if len(b) < 20 || binary.BigEndian.Uint32(b[4:8]) != stunMagicCookie {
		return false
	}
	t := binary.BigEndian.Uint16(b[0:2])
	method := t&0x000f | (t&0x00e0)>>1 | (t&0x3e00)>>2
	class := (t&0x0100)>>7 | (t&0x0010)>>4
	if method != stunMethodBinding {
		return true
	}
	return class == stunClassRequest && !hasUsername(b)
}

const (
	stunMagicCookie   = 0x2112a442
	stunMethodBinding = 0x001
	stunClassRequest  = 0
	stunAttrUsername  = 0x0006
)

// hasUsername reports whether a STUN message carries a USERNAME attribute.
func hasUsername(b []byte) bool {
	end := 20 + int(binary.BigEndian.Uint16(b[2:4]))
	if end > len(b) {
		end = len(b)
	}
	for i := 20; i+4 <= end; {
		typ := binary.BigEndian.Uint16(b[i : i+2])
		n := int(binary.BigEndian.Uint16(b[i+2 : i+4]))
		if typ == stunAttrUsername {
			return true
		}
		i += 4 + (n+3)&^3
	}
	return false
}

// sideQueue bounds the packets waiting for the TURN server; beyond it they
// are dropped, as a full socket buffer would drop them.
const sideQueue = 512

// sidePacket is one packet handed to the TURN server.
type sidePacket struct {
	buf  *[]byte
	n    int
	from netip.AddrPort
}

var sideBufs = sync.Pool{New: func() any { b := make([]byte, 1500); return &b }}

// sideConn is the TURN server's view of a media socket: it reads what
// forRelay picked out, and writes through the socket.
type sideConn struct {
	c    *batchConn
	in   chan sidePacket
	done chan struct{}
	once sync.Once

	mu       sync.Mutex
	deadline time.Time // read deadline, guarded by mu
}

func newSideConn(c *batchConn) *sideConn {
	return &sideConn{c: c, in: make(chan sidePacket, sideQueue), done: make(chan struct{})}
}

// deliver queues a copy of b, or drops it when the queue is full or the
// side is closed. Called by the socket's single reader.
func (s *sideConn) deliver(b []byte, from netip.AddrPort) {
	select {
	case <-s.done:
		return
	default:
	}
	p := sidePacket{n: len(b), from: from}
	if len(b) <= 1500 {
		p.buf = sideBufs.Get().(*[]byte)
	} else {
		buf := make([]byte, len(b))
		p.buf = &buf
	}
	copy(*p.buf, b)
	select {
	case s.in <- p:
	default:
		s.release(p)
	}
}

func (s *sideConn) release(p sidePacket) {
	if cap(*p.buf) == 1500 {
		sideBufs.Put(p.buf)
	}
}

// ReadFrom implements net.PacketConn.
func (s *sideConn) ReadFrom(b []byte) (int, net.Addr, error) {
	s.mu.Lock()
	deadline := s.deadline
	s.mu.Unlock()
	var timeout <-chan time.Time
	if !deadline.IsZero() {
		d := time.Until(deadline)
		if d <= 0 {
			return 0, nil, os.ErrDeadlineExceeded
		}
		t := time.NewTimer(d)
		defer t.Stop()
		timeout = t.C
	}
	select {
	case p := <-s.in:
		n := copy(b, (*p.buf)[:p.n])
		s.release(p)
		return n, net.UDPAddrFromAddrPort(p.from), nil
	case <-s.done:
		return 0, nil, net.ErrClosed
	case <-timeout:
		return 0, nil, os.ErrDeadlineExceeded
	}
}

// WriteTo implements net.PacketConn: the packet leaves from the media port.
func (s *sideConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	select {
	case <-s.done:
		return 0, net.ErrClosed
	default:
	}
	return s.c.WriteTo(b, addr)
}

// Close ends the side; the media socket stays open.
func (s *sideConn) Close() error {
	s.once.Do(func() { close(s.done) })
	return nil
}

func (s *sideConn) LocalAddr() net.Addr { return s.c.LocalAddr() }

func (s *sideConn) SetDeadline(t time.Time) error { return s.SetReadDeadline(t) }

func (s *sideConn) SetReadDeadline(t time.Time) error {
	s.mu.Lock()
	s.deadline = t
	s.mu.Unlock()
	return nil
}

func (s *sideConn) SetWriteDeadline(time.Time) error { return nil }
