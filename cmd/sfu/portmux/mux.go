package portmux

import (
	"crypto/tls"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Config configures a Mux.
type Config struct {
	// Listener is the shared port. The Mux closes it.
	Listener net.Listener
	// TLS terminates TLS connections; nil closes them. Its NextProtos
	// should offer "stun.turn" besides HTTP's.
	TLS *tls.Config
	// PlainHTTP serves HTTP without TLS too. Without it, a plain HTTP
	// request is answered 400 and closed (as net/http's TLS server does), so
	// that no token crosses the network in clear by mistake.
	PlainHTTP bool
	// HeaderTimeout is how long a connection may take to show what it is,
	// TLS handshake included (default 10s).
	HeaderTimeout time.Duration
	// MaxPendingPerIP and MaxPending bound the connections still being
	// told apart, per client address and in total (defaults 16 and 1024).
	MaxPendingPerIP, MaxPending int
	Logger                      *slog.Logger
}

// Route names a destination of the Mux.
type Route int

// The destinations: HTTP gets plain and decrypted HTTP; TURN gets TURN over
// TCP; TURNTLS gets TURN over TLS, decrypted; ICETCP gets framed ICE.
const (
	RouteHTTP Route = iota
	RouteTURN
	RouteTURNTLS
	RouteICETCP
	numRoutes
)

func (r Route) String() string {
	return [...]string{"http", "turn-tcp", "turn-tls", "ice-tcp"}[r]
}

// Mux accepts on the shared port and hands each connection to the listener
// of its route.
type Mux struct {
	cfg    Config
	log    *slog.Logger
	routes [numRoutes]*listener
	done   chan struct{}
	once   sync.Once
	wg     sync.WaitGroup

	mu      sync.Mutex
	pending map[netip.Addr]int // guarded by mu
	total   int                // guarded by mu
	counts  [numRoutes]uint64  // connections routed, guarded by mu
	refused uint64             // guarded by mu
}

// New makes a Mux; Serve starts it.
func New(cfg Config) *Mux {
	if cfg.HeaderTimeout <= 0 {
		cfg.HeaderTimeout = 10 * time.Second
	}
	if cfg.MaxPendingPerIP <= 0 {
		cfg.MaxPendingPerIP = 16
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 1024
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	m := &Mux{cfg: cfg, log: cfg.Logger, done: make(chan struct{}), pending: map[netip.Addr]int{}}
	for i := range m.routes {
		m.routes[i] = &listener{m: m, conns: make(chan net.Conn), closed: make(chan struct{})}
	}
	return m
}

// Listener is what the server of route r accepts from.
func (m *Mux) Listener(r Route) net.Listener { return m.routes[r] }

// Addr is the shared port's address.
func (m *Mux) Addr() net.Addr { return m.cfg.Listener.Addr() }

// Stats counts the connections routed, per route, and those closed
// because they were nothing the server speaks, too slow, or too many.
func (m *Mux) Stats() (routed map[string]uint64, refused uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	routed = map[string]uint64{}
	for r, n := range m.counts {
		routed[Route(r).String()] = n
	}
	return routed, m.refused
}

// Serve accepts until the listener fails or the Mux is closed; it returns
// nil after Close.
func (m *Mux) Serve() error {
	var delay time.Duration
	for {
		c, err := m.cfg.Listener.Accept()
		if err != nil {
			select {
			case <-m.done:
				return nil
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() { // e.g. too many open files
				delay = min(max(2*delay, 5*time.Millisecond), time.Second)
				time.Sleep(delay)
				continue
			}
			return err
		}
		delay = 0
		ip := remoteIP(c)
		if !m.admit(ip) {
			_ = c.Close()
			continue
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.handle(c, ip)
		}()
	}
}

// Close stops accepting, closes the routes' listeners and waits for the
// connections being told apart. Connections already handed over are their
// servers'.
func (m *Mux) Close() error {
	var err error
	m.once.Do(func() {
		close(m.done)
		err = m.cfg.Listener.Close()
	})
	m.wg.Wait()
	return err
}

func (m *Mux) admit(ip netip.Addr) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.total >= m.cfg.MaxPending || m.pending[ip] >= m.cfg.MaxPendingPerIP {
		m.refused++
		return false
	}
	m.total++
	m.pending[ip]++
	return true
}

func (m *Mux) release(ip netip.Addr) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.total--
	if m.pending[ip]--; m.pending[ip] <= 0 {
		delete(m.pending, ip)
	}
}

// handle tells c apart and hands it over, or closes it.
func (m *Mux) handle(c net.Conn, ip netip.Addr) {
	route, conn, ok := m.classify(c)
	m.release(ip)
	if !ok {
		m.mu.Lock()
		m.refused++
		m.mu.Unlock()
		_ = c.Close()
		return
	}
	_ = conn.SetDeadline(time.Time{})
	m.mu.Lock()
	m.counts[route]++
	m.mu.Unlock()
	m.routes[route].deliver(conn)
}

func (m *Mux) classify(c net.Conn) (Route, net.Conn, bool) {
	_ = c.SetDeadline(time.Now().Add(m.cfg.HeaderTimeout))
	kind, head, err := sniff(c)
	if err != nil {
		m.log.Debug("connection closed before it said what it is", "remote", c.RemoteAddr().String(), "err", err)
		return 0, nil, false
	}
	pc := &prefixConn{Conn: c, head: head}
	switch kind {
	case HTTP:
		if !m.cfg.PlainHTTP {
			_, _ = io.WriteString(c, plainRefused)
			return 0, nil, false
		}
		return RouteHTTP, pc, true
	case STUN:
		return RouteTURN, pc, true
	case ICETCP:
		return RouteICETCP, pc, true
	case TLS:
		if m.cfg.TLS != nil {
			return m.classifyTLS(tls.Server(pc, m.cfg.TLS))
		}
	}
	m.log.Debug("connection of an unknown kind closed", "remote", c.RemoteAddr().String(), "kind", kind.String())
	return 0, nil, false
}

// classifyTLS completes the handshake (within the deadline already set)
// and routes by ALPN, or by the first decrypted bytes.
func (m *Mux) classifyTLS(tc *tls.Conn) (Route, net.Conn, bool) {
	if err := tc.Handshake(); err != nil {
		m.log.Debug("TLS handshake failed", "remote", tc.RemoteAddr().String(), "err", err)
		return 0, nil, false
	}
	switch tc.ConnectionState().NegotiatedProtocol {
	case "stun.turn":
		return RouteTURNTLS, tc, true
	case "http/1.1":
		return RouteHTTP, tc, true
	case "acme-tls/1": // the certificate was the answer
		return 0, nil, false
	}
	kind, head, err := sniff(tc)
	if err != nil {
		return 0, nil, false
	}
	pc := &prefixConn{Conn: tc, head: head}
	switch kind {
	case HTTP:
		return RouteHTTP, pc, true
	case STUN:
		return RouteTURNTLS, pc, true
	}
	return 0, nil, false
}

// plainRefused answers a plain HTTP request on a port that serves HTTPS.
const plainRefused = "HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nThis server speaks HTTPS: use https://.\n"

// sniff reads until Classify decides; the bytes read are returned to be
// read again.
func sniff(c net.Conn) (Kind, []byte, error) {
	buf := make([]byte, 0, ClassifyLen)
	for {
		n, err := c.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if k, decided := Classify(buf); decided {
			return k, buf, nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Unknown, nil, err
		}
	}
}

func remoteIP(c net.Conn) netip.Addr {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		ip, _ := netip.AddrFromSlice(a.IP)
		return ip.Unmap()
	}
	return netip.Addr{}
}

// prefixConn replays the bytes read to tell a connection apart.
type prefixConn struct {
	net.Conn
	head []byte
}

func (c *prefixConn) Read(b []byte) (int, error) {
	if len(c.head) > 0 {
		n := copy(b, c.head)
		c.head = c.head[n:]
		return n, nil
	}
	return c.Conn.Read(b)
}

// listener hands a route's connections to its server.
type listener struct {
	m      *Mux
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

// handoffTimeout bounds how long a connection waits for its server to
// accept it.
const handoffTimeout = 5 * time.Second

func (l *listener) deliver(c net.Conn) {
	t := time.NewTimer(handoffTimeout)
	defer t.Stop()
	select {
	case l.conns <- c:
	case <-l.m.done:
		_ = c.Close()
	case <-l.closed:
		_ = c.Close()
	case <-t.C:
		_ = c.Close()
	}
}

func (l *listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.m.done:
		return nil, net.ErrClosed
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close ends the route: its connections are closed from then on. The
// shared port stays open for the other routes.
func (l *listener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *listener) Addr() net.Addr { return l.m.cfg.Listener.Addr() }
