//go:build !linux

package sfu

import (
	"net"
	"net/netip"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Elsewhere than on Linux the media socket goes through the standard
// library and x/net's WriteBatch (one sendto per packet where there is no
// sendmmsg).

// sendQueue holds a batch's packets as x/net messages.
type sendQueue struct {
	msgs  [batchSize]ipv4.Message
	bufs  [batchSize][1][]byte
	addrs [batchSize]net.UDPAddr
	ips   [batchSize][16]byte
}

func (q *sendQueue) init() {
	for i := range q.msgs {
		q.msgs[i].Buffers = q.bufs[i][:]
		q.msgs[i].Addr = &q.addrs[i]
	}
}

func (q *sendQueue) set(i int, buf []byte, addr netip.AddrPort) {
	q.bufs[i][0] = buf
	a := addr.Addr().Unmap()
	if a.Is4() {
		ip4 := a.As4()
		copy(q.ips[i][:4], ip4[:])
		q.addrs[i].IP = q.ips[i][:4]
	} else {
		q.ips[i] = a.As16()
		q.addrs[i].IP = q.ips[i][:16]
	}
	q.addrs[i].Port = int(addr.Port())
}

type sockIO struct {
	c     *net.UDPConn
	batch func([]ipv4.Message) (int, error)
}

func newSockIO(c *net.UDPConn) (*sockIO, error) {
	s := &sockIO{c: c}
	if a, ok := c.LocalAddr().(*net.UDPAddr); ok && a.IP.To4() == nil {
		p := ipv6.NewPacketConn(c)
		s.batch = func(ms []ipv4.Message) (int, error) { return p.WriteBatch(ms, 0) }
	} else {
		p := ipv4.NewPacketConn(c)
		s.batch = func(ms []ipv4.Message) (int, error) { return p.WriteBatch(ms, 0) }
	}
	return s, nil
}

func (s *sockIO) recv(b []byte) (int, netip.AddrPort, error) { return s.c.ReadFromUDPAddrPort(b) }

func (s *sockIO) send(q *sendQueue, n int) error {
	var first error
	for from := 0; from < n; {
		sent, err := s.batch(q.msgs[from:n])
		if err != nil || sent <= 0 {
			if first == nil {
				first = err
			}
			sent = 1 // skip the packet refused
		}
		from += sent
	}
	return first
}
