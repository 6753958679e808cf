package sfu

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/pion/ice/v4"
	"github.com/pion/logging"
)

// The UDP port all ICE traffic shares: one socket per local address, each
// under pion's ICE UDP mux, each wrapped in a batchConn.
//
// A batchConn turns the packets written while a fan-out is in progress into
// one sendmmsg call: forwarding a packet to fifty subscribers costs one
// system call instead of fifty. pion writes each SRTP packet down to the
// socket synchronously, on the forwarding goroutine, so the packets of one
// fan-out reach the socket between the forwarder's begin and end, which
// flushes them.

// batchSize bounds one sendmmsg call.
const batchSize = 64

// batchConn is a UDP socket that queues writes while a batch is open.
type batchConn struct {
	*net.UDPConn
	io   *sockIO
	side *sideConn // set before the first read when the port is shared with TURN

	mu    sync.Mutex
	open  int      // open batches, guarded by mu
	cur   *batch   // guarded by mu
	spare []*batch // guarded by mu
}

// batch is a set of queued packets; its buffers are reused.
type batch struct {
	bufs [batchSize][]byte
	q    sendQueue // the packets as the system call takes them
	n    int
}

func newBatchConn(c *net.UDPConn) (*batchConn, error) {
	io, err := newSockIO(c)
	if err != nil {
		return nil, err
	}
	return &batchConn{UDPConn: c, io: io, cur: newBatch()}, nil
}

func newBatch() *batch {
	b := &batch{}
	for i := range b.bufs {
		b.bufs[i] = make([]byte, 0, 1500)
	}
	b.q.init()
	return b
}

// ReadFromAddrPort implements ice.AddrPortReaderWriter. When the port is
// shared, what is the TURN server's goes to its side instead.
func (c *batchConn) ReadFromAddrPort(b []byte) (int, netip.AddrPort, error) {
	for {
		n, from, err := c.io.recv(b)
		if err != nil || c.side == nil || !forRelay(b[:n]) {
			return n, from, err
		}
		c.side.deliver(b[:n], from)
	}
}

// WriteToAddrPort implements ice.AddrPortReaderWriter: the write is queued
// when a batch is open, sent at once otherwise (through the same raw
// system call, as a batch of one).
func (c *batchConn) WriteToAddrPort(b []byte, addr netip.AddrPort) (int, error) {
	if len(b) > 1500 || len(b) == 0 {
		return c.WriteToUDPAddrPort(b, addr)
	}
	c.mu.Lock()
	alone := c.open == 0 // then nothing else is queued
	q := c.cur
	i := q.n
	q.bufs[i] = append(q.bufs[i][:0], b...)
	q.q.set(i, q.bufs[i], addr)
	q.n++
	var out *batch
	if alone || q.n == batchSize {
		out = c.take()
	}
	c.mu.Unlock()
	if out == nil {
		return len(b), nil
	}
	if err := c.flush(out); err != nil && alone {
		return 0, err
	}
	return len(b), nil
}

// WriteTo implements net.PacketConn for writes that come with a net.Addr.
func (c *batchConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if ua, ok := addr.(*net.UDPAddr); ok {
		return c.WriteToAddrPort(b, ua.AddrPort())
	}
	return c.UDPConn.WriteTo(b, addr)
}

// begin opens a batch: writes are queued until the matching end.
func (c *batchConn) begin() {
	c.mu.Lock()
	c.open++
	c.mu.Unlock()
}

// end closes a batch and sends what is queued.
func (c *batchConn) end() {
	c.mu.Lock()
	c.open--
	var out *batch
	if c.cur.n > 0 {
		out = c.take()
	}
	c.mu.Unlock()
	if out != nil {
		c.flush(out)
	}
}

// take swaps the current batch for a spare one. Called with mu held.
func (c *batchConn) take() *batch {
	out := c.cur
	if n := len(c.spare); n > 0 {
		c.cur, c.spare = c.spare[n-1], c.spare[:n-1]
	} else {
		c.cur = newBatch()
	}
	return out
}

// spareBatch hands out an empty batch for a caller to fill on its own
// (the direct path's sendBatch), to give back through flush or putBatch.
func (c *batchConn) spareBatch() *batch {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.spare); n > 0 {
		q := c.spare[n-1]
		c.spare = c.spare[:n-1]
		return q
	}
	return newBatch()
}

// putBatch returns an unused batch to the spares.
func (c *batchConn) putBatch(q *batch) {
	q.n = 0
	c.mu.Lock()
	c.spare = append(c.spare, q)
	c.mu.Unlock()
}

// flush sends a batch and returns it to the spares. Errors are those of
// UDP: a packet the kernel refuses is lost, as a failed sendto would lose
// it, and the rest still go; the first refusal is returned.
func (c *batchConn) flush(q *batch) error {
	err := c.io.send(&q.q, q.n)
	q.n = 0
	c.mu.Lock()
	c.spare = append(c.spare, q)
	c.mu.Unlock()
	return err
}

// udpMux is the ICE UDP mux over batching sockets on one port.
type udpMux struct {
	*ice.MultiUDPMuxDefault
	conns []*batchConn
}

// begin opens a batch on every socket.
func (m *udpMux) begin() {
	for _, c := range m.conns {
		c.begin()
	}
}

// end closes the batch on every socket, sending what was queued.
func (m *udpMux) end() {
	for _, c := range m.conns {
		c.end()
	}
}

// conn returns the socket of the local candidate address:port, nil when
// it is none of the mux's. A 1:1 NAT address (ice.nat_1to1_ips) is not
// a local one: it maps to the only socket of its family, when there is
// one.
func (m *udpMux) conn(address string, port uint16) *batchConn {
	a, err := netip.ParseAddr(address)
	if err != nil {
		return nil
	}
	a = a.Unmap()
	var same *batchConn
	sameFamily := 0
	for _, c := range m.conns {
		la := c.LocalAddr().(*net.UDPAddr).AddrPort()
		if la.Port() != port {
			continue
		}
		if la.Addr().Unmap() == a {
			return c
		}
		if la.Addr().Unmap().Is4() == a.Is4() && !la.Addr().IsLoopback() {
			same, sameFamily = c, sameFamily+1
		}
	}
	if sameFamily == 1 && !a.IsLoopback() && !a.IsPrivate() {
		return same
	}
	return nil
}

// listenUDPMux binds port on every local address that the interface and IP
// filters (and the loopback setting) allow.
func listenUDPMux(cfg Config, ifFilter func(string) bool, ipFilter func(net.IP) bool, logger logging.LeveledLogger) (*udpMux, error) {
	addrs, err := localAddrs(cfg.Loopback, ifFilter, ipFilter)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 {
		return nil, errors.New("no interface left after the interface and ip filters")
	}
	m := &udpMux{}
	var muxes []ice.UDPMux
	for _, a := range addrs {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, uint16(cfg.UDPPort))))
		if err != nil {
			for _, b := range m.conns {
				_ = b.Close()
			}
			return nil, fmt.Errorf("listen on %s: %w", a, err)
		}
		_ = c.SetReadBuffer(4 << 20)
		_ = c.SetWriteBuffer(4 << 20)
		b, err := newBatchConn(c)
		if err != nil {
			_ = c.Close()
			for _, b := range m.conns {
				_ = b.Close()
			}
			return nil, fmt.Errorf("listen on %s: %w", a, err)
		}
		if cfg.ShareUDP {
			b.side = newSideConn(b)
		}
		m.conns = append(m.conns, b)
		muxes = append(muxes, ice.NewUDPMuxDefault(ice.UDPMuxParams{Logger: logger, UDPConn: b}))
	}
	m.MultiUDPMuxDefault = ice.NewMultiUDPMuxDefault(muxes...)
	return m, nil
}

// localAddrs lists the addresses of the interfaces that are up, as ICE
// would gather them: loopback only when asked for, no IPv6 link-local.
func localAddrs(loopback bool, ifFilter func(string) bool, ipFilter func(net.IP) bool) ([]netip.Addr, error) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, err
	}
	var out []netip.Addr
	for _, ifi := range ifaces {
		if ifi.Flags&net.FlagUp == 0 || (ifi.Flags&net.FlagLoopback != 0 && !loopback) {
			continue
		}
		if ifFilter != nil && !ifFilter(ifi.Name) {
			continue
		}
		addrs, err := ifi.Addrs()
		if err != nil {
			continue
		}
		for _, a := range addrs {
			ipn, ok := a.(*net.IPNet)
			if !ok {
				continue
			}
			ip, ok := netip.AddrFromSlice(ipn.IP)
			if !ok {
				continue
			}
			ip = ip.Unmap()
			if ip.IsLinkLocalUnicast() || (ip.IsLoopback() && !loopback) {
				continue
			}
			if ipFilter != nil && !ipFilter(ipn.IP) {
				continue
			}
			out = append(out, ip)
		}
	}
	return out, nil
}
