package webtest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections to a server, so that a test can break the
// page's connections the way a network failure does: the sockets close
// without a WebSocket close frame, and new connections go nowhere for a
// while. Media between the browser and the server does not pass through it.
type Proxy struct {
	ln     net.Listener
	target string
	wg     sync.WaitGroup // the accept loop and one goroutine per connection

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // both ends of every forwarded connection, guarded by mu
	outage chan struct{}         // closed when an outage ends; nil when none, guarded by mu
	closed bool                  // guarded by mu
}

// NewProxy listens on an ephemeral loopback port and forwards every
// connection to target (host:port) until the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("proxy: %v", err)
	}
	p := &Proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the address to connect to instead of the target.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Cut starts an outage: every forwarded connection is closed at once on
// both sides (the browser and the server each see the other vanish), and
// new connections are accepted but not forwarded until Restore, as if
// their packets were lost.
func (p *Proxy) Cut() {
	p.mu.Lock()
	if p.outage == nil {
		p.outage = make(chan struct{})
	}
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	p.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
}

// Restore ends the outage: connections held meanwhile are forwarded.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.outage != nil {
		close(p.outage)
		p.outage = nil
	}
}

func (p *Proxy) close() {
	_ = p.ln.Close()
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = map[net.Conn]struct{}{}
	if p.outage != nil {
		close(p.outage)
		p.outage = nil
	}
	p.mu.Unlock()
	for c := range conns {
		_ = c.Close()
	}
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.forward(c)
	}
}

// forward waits out an outage, then copies both ways until either side
// closes or the proxy cuts the connection.
func (p *Proxy) forward(client net.Conn) {
	defer p.wg.Done()
	var server net.Conn
	for server == nil {
		p.mu.Lock()
		outage, closed := p.outage, p.closed
		p.mu.Unlock()
		if closed {
			_ = client.Close()
			return
		}
		if outage != nil {
			<-outage
			continue
		}
		c, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			return
		}
		if p.track(client, c) {
			server = c
		} else {
			_ = c.Close() // an outage began meanwhile: wait it out
		}
	}
	var wg sync.WaitGroup
	pipe := func(dst, src net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(dst, src)
		_ = src.Close()
		_ = dst.Close()
	}
	wg.Add(2)
	go pipe(server, client)
	go pipe(client, server)
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// track records both ends of a connection, unless the proxy is closed or
// an outage began while it was being dialled.
func (p *Proxy) track(client, server net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.outage != nil {
		return false
	}
	p.conns[client] = struct{}{}
	p.conns[server] = struct{}{}
	return true
}
