package relay

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/turn/v5"
)

type (
	AllocateConfig = turn.AllocateListenerConfig
	ConnConfig     = turn.AllocateConnConfig
)

// ErrTCPRelay refuses TCP allocations (RFC 6062): media is relayed over UDP.
var ErrTCPRelay = errors.New("relay: TCP relaying is not offered")

// relayGen binds each allocation's relay socket on a media IP of the
// family asked for, so that the media sockets reach it directly.
type relayGen struct{ s *Server }

func (g *relayGen) Validate() error { return nil }

func (g *relayGen) AllocatePacketConn(conf AllocateConfig) (net.PacketConn, net.Addr, error) {
	var ip netip.Addr
	for _, m := range g.s.cfg.Media { // in order: the first media IP of the family
		if a := m.Addr().Unmap(); a.Is4() == (conf.Network == "udp4") {
			ip = a
			break
		}
	}
	if !ip.IsValid() {
		return nil, nil, errors.New("relay: no media address of that family")
	}
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(ip, 0)))
	if err != nil {
		return nil, nil, err
	}
	return &guardConn{UDPConn: c, s: g.s}, c.LocalAddr(), nil
}

func (g *relayGen) AllocateListener(AllocateConfig) (net.Listener, net.Addr, error) {
	return nil, nil, ErrTCPRelay
}

func (g *relayGen) AllocateConn(ConnConfig) (net.Conn, error) { return nil, ErrTCPRelay }

// guardConn is a relay socket that talks to media sockets only.
type guardConn struct {
	*net.UDPConn
	s *Server
}

// WriteTo sends to a media socket; anything else is dropped (counted), as
// UDP would lose it.
func (c *guardConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	ua, ok := addr.(*net.UDPAddr)
	if !ok {
		c.s.refuse()
		return len(b), nil
	}
	dst, ok := c.s.toMedia(ua.AddrPort())
	if !ok {
		c.s.refuse()
		return len(b), nil
	}
	return c.UDPConn.WriteToUDPAddrPort(b, dst)
}

// ReadFrom returns what media sockets send, under the address the client
// knows them by; anything else is dropped.
func (c *guardConn) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, from, err := c.UDPConn.ReadFromUDPAddrPort(b)
		if err != nil {
			return n, nil, err
		}
		if src, ok := c.s.fromMedia(from); ok {
			return n, net.UDPAddrFromAddrPort(src), nil
		}
		c.s.refuse()
	}
}

// Stream connections (TURN over TCP and TLS) must allocate soon after
// they connect, and may then stay idle for a while: allocations and
// permissions are refreshed every few minutes.
var (
	allocateWithin = 15 * time.Second // a variable for tests
	idleAllocated  = 10 * time.Minute
)

// streamListener labels the connections it accepts with their transport,
// and bounds how long they may stay quiet.
type streamListener struct {
	net.Listener
	s         *Server
	transport string
}

func (l *streamListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	key := c.RemoteAddr().String()
	st := &stream{transport: l.transport}
	l.s.mu.Lock()
	l.s.streams[key] = st
	l.s.mu.Unlock()
	return &streamConn{Conn: c, s: l.s, key: key, st: st, deadline: time.Now().Add(allocateWithin)}, nil
}

// stream is what the relay knows of one TCP or TLS connection.
type stream struct {
	transport string
	allocs    atomic.Int32
}

type streamConn struct {
	net.Conn
	s        *Server
	key      string
	st       *stream
	deadline time.Time // when a quiet connection is dropped; read by its one reader
	set      bool      // the first deadline is on the connection
	once     sync.Once
}

// Read moves the idle deadline at most once per half of idleAllocated, not
// per packet (a relayed call reads every media packet through here): an
// allocated connection is dropped after 10 to 15 minutes of quiet.
func (c *streamConn) Read(b []byte) (int, error) {
	if !c.set {
		_ = c.Conn.SetReadDeadline(c.deadline)
		c.set = true
	}
	if c.st.allocs.Load() > 0 {
		if now := time.Now(); c.deadline.Sub(now) < idleAllocated {
			c.deadline = now.Add(idleAllocated + idleAllocated/2)
			_ = c.Conn.SetReadDeadline(c.deadline)
		}
	}
	return c.Conn.Read(b)
}

func (c *streamConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.streams, c.key)
		c.s.mu.Unlock()
	})
	return c.Conn.Close()
}
