package portmux

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"runtime"
	"testing"
	"time"

	"github.com/pion/stun/v4"
)

func stunBinding(t testing.TB) []byte {
	t.Helper()
	m, err := stun.Build(stun.TransactionID, stun.BindingRequest, stun.NewUsername("abcd:efgh"), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

func turnAllocate(t testing.TB) []byte {
	t.Helper()
	m, err := stun.Build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), stun.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	return m.Raw
}

func framed(b []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(len(b))), b...)
}

func TestClassify(t *testing.T) {
	binding, allocate := stunBinding(t), turnAllocate(t)
	for _, tc := range []struct {
		name string
		in   []byte
		want Kind
	}{
		{"http", []byte("GET / HTTP/1.1\r\n"), HTTP},
		{"http options", []byte("OPTIONS *"), HTTP},
		{"tls client hello", []byte{0x16, 0x03, 0x01, 0x02, 0x00}, TLS},
		{"tls wrong version", []byte{0x16, 0x02}, Unknown},
		{"turn allocate", allocate, STUN},
		{"stun binding", binding, STUN},
		{"ice-tcp framed binding", framed(binding), ICETCP},
		{"framed without cookie", framed(bytes.Repeat([]byte{0}, 30)), Unknown},
		{"zeros", make([]byte, 20), Unknown},
		{"high bits", []byte{0x80, 0x00}, Unknown},
		{"lowercase", []byte("get /"), Unknown},
		{"ssh", []byte("SSH-2.0-"), HTTP}, // uppercase: HTTP's server answers 400
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, decided := Classify(tc.in)
			if !decided || got != tc.want {
				t.Fatalf("Classify = %v, %v; want %v, decided", got, decided, tc.want)
			}
			// Byte by byte, it waits until it can decide, then agrees.
			for i := range tc.in {
				k, d := Classify(tc.in[:i])
				if d && k != tc.want {
					t.Fatalf("on %d bytes: %v, want %v", i, k, tc.want)
				}
			}
		})
	}
	if _, decided := Classify(binding[:7]); decided {
		t.Error("decided on 7 bytes of STUN")
	}
}

func FuzzClassify(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Add(stunBinding(f))
	f.Add(framed(stunBinding(f)))
	f.Add([]byte{0x16, 0x03, 0x01})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, decided := Classify(b)
		if len(b) >= ClassifyLen && !decided {
			t.Fatalf("undecided on %d bytes", len(b))
		}
		// Once decided on a prefix, more bytes never change the answer.
		for i := 0; i <= len(b); i++ {
			if pk, pd := Classify(b[:i]); pd {
				if !decided || pk != k {
					t.Fatalf("prefix of %d bytes: %v; whole: %v, %v", i, pk, k, decided)
				}
				break
			}
		}
	})
}

// fixture is a Mux on a loopback port with a self-signed certificate.
type fixture struct {
	m    *Mux
	addr string
	tls  *tls.Config // for clients
}

func newMux(t testing.TB, tweak func(*Config)) *fixture {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cert, err := SelfSigned("127.0.0.1", "localhost")
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{
		Listener:      ln,
		TLS:           &tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1", "stun.turn"}},
		PlainHTTP:     true,
		HeaderTimeout: time.Second,
		Logger:        slog.New(slog.DiscardHandler),
	}
	if tweak != nil {
		tweak(&cfg)
	}
	m := New(cfg)
	done := make(chan error, 1)
	go func() { done <- m.Serve() }()
	t.Cleanup(func() {
		_ = m.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &fixture{m: m, addr: ln.Addr().String(), tls: &tls.Config{InsecureSkipVerify: true}}
}

// accept returns the next connection of route r, or fails.
func (f *fixture) accept(t *testing.T, r Route) net.Conn {
	t.Helper()
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() { c, err := f.m.Listener(r).Accept(); ch <- res{c, err} }()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatal(r.err)
		}
		t.Cleanup(func() { _ = r.c.Close() })
		return r.c
	case <-time.After(3 * time.Second):
		t.Fatalf("nothing reached %v", r)
		return nil
	}
}

func TestMuxRoutes(t *testing.T) {
	f := newMux(t, nil)
	binding, allocate := stunBinding(t), turnAllocate(t)
	http := []byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	for _, tc := range []struct {
		name  string
		alpn  []string // nil: plain TCP
		tls   bool
		send  []byte
		route Route
	}{
		{"http", nil, false, http, RouteHTTP},
		{"turn over tcp", nil, false, allocate, RouteTURN},
		{"ice-tcp", nil, false, framed(binding), RouteICETCP},
		{"https with alpn", []string{"http/1.1"}, true, http, RouteHTTP},
		{"https without alpn", nil, true, http, RouteHTTP},
		{"turn over tls with alpn", []string{"stun.turn"}, true, allocate, RouteTURNTLS},
		{"turn over tls without alpn", nil, true, allocate, RouteTURNTLS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c net.Conn
			var err error
			if tc.tls {
				cfg := f.tls.Clone()
				cfg.NextProtos = tc.alpn
				c, err = tls.Dial("tcp", f.addr, cfg)
			} else {
				c, err = net.Dial("tcp", f.addr)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			got := f.accept(t, tc.route)
			buf := make([]byte, len(tc.send))
			_ = got.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := io.ReadFull(got, buf); err != nil || !bytes.Equal(buf, tc.send) {
				t.Fatalf("route %v read %q, %v; want what was sent", tc.route, buf, err)
			}
			// And the other way.
			if _, err := got.Write([]byte("reply")); err != nil {
				t.Fatal(err)
			}
			reply := make([]byte, 5)
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			if _, err := io.ReadFull(c, reply); err != nil || string(reply) != "reply" {
				t.Fatalf("client read %q, %v", reply, err)
			}
		})
	}
}

// closedWithin checks that the server closes c within d.
func closedWithin(t *testing.T, c net.Conn, d time.Duration) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(d))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("still open after %v", d)
	}
}

func TestMuxRefuses(t *testing.T) {
	base := runtime.NumGoroutine()
	f := newMux(t, func(c *Config) { c.MaxPendingPerIP = 4 })
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"garbage", []byte{0xff, 0xfe, 0xfd, 0xfc}},
		{"nothing", nil},
		{"half a stun header", []byte{0x00, 0x01, 0x00}},
		{"half a tls record", []byte{0x16, 0x03, 0x01, 0x00}},
		{"framed garbage", framed([]byte("not a stun message at all"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Write(tc.send); err != nil {
				t.Fatal(err)
			}
			closedWithin(t, c, 3*time.Second)
		})
	}

	// More undecided connections from one address than allowed: the extra
	// ones are closed at once, and the port still serves the others.
	var idle []net.Conn
	for range 4 {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		idle = append(idle, c)
	}
	time.Sleep(100 * time.Millisecond) // let the mux count them
	extra, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer extra.Close()
	closedWithin(t, extra, 300*time.Millisecond)
	for _, c := range idle {
		closedWithin(t, c, 3*time.Second)
	}
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	f.accept(t, RouteHTTP)
	if _, refused := f.m.Stats(); refused < 5+1 {
		t.Errorf("refused = %d, want the bad connections and the extra one", refused)
	}

	// Nothing is left running once the connections are gone.
	_ = c.Close()
	_ = f.m.Close()
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > base+2 {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, %d before:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMuxClosedRoute(t *testing.T) {
	f := newMux(t, nil)
	_ = f.m.Listener(RouteICETCP).Close()
	if _, err := f.m.Listener(RouteICETCP).Accept(); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept on a closed route: %v", err)
	}
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write(framed(stunBinding(t))); err != nil {
		t.Fatal(err)
	}
	closedWithin(t, c, 3*time.Second)
}

// TestMuxPlainHTTPRefused: a port with a certificate and without PlainHTTP
// answers plain HTTP with 400 and serves nothing in clear.
func TestMuxPlainHTTPRefused(t *testing.T) {
	f := newMux(t, func(c *Config) { c.PlainHTTP = false })
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	reply, _ := io.ReadAll(c)
	if !bytes.HasPrefix(reply, []byte("HTTP/1.0 400")) || !bytes.Contains(reply, []byte("https://")) {
		t.Fatalf("plain HTTP answered %q, want 400 pointing to https", reply)
	}
	// HTTPS still reaches the server.
	tc, err := tls.Dial("tcp", f.addr, f.tls)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	if _, err := tc.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
		t.Fatal(err)
	}
	f.accept(t, RouteHTTP)
}

// FuzzMux sends arbitrary first bytes to a running Mux (plain, and inside
// TLS), then checks it still routes an HTTP request: no input stops it.
func FuzzMux(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\n\r\n"), false)
	f.Add(turnAllocate(f), true)
	f.Add(framed(stunBinding(f)), false)
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01}, false)
	fx := newMux(f, func(c *Config) {
		// Every connection comes from 127.0.0.1: no per-address bound here.
		c.HeaderTimeout, c.MaxPendingPerIP, c.MaxPending = 200*time.Millisecond, 1<<20, 1<<20
	})
	for r := range numRoutes {
		go func() {
			for {
				c, err := fx.m.Listener(r).Accept()
				if err != nil {
					return
				}
				go func() { _, _ = io.Copy(io.Discard, c); _ = c.Close() }()
			}
		}()
	}
	probe := func(t *testing.T) {
		before, _ := fx.m.Stats()
		defer func() {
			for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(time.Millisecond) {
				if now, _ := fx.m.Stats(); now["http"] > before["http"] {
					return
				}
				if time.Now().After(deadline) {
					t.Fatal("an HTTP request was not routed")
				}
			}
		}()
		c, err := net.Dial("tcp", fx.addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := c.Write([]byte("GET / HTTP/1.1\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte, inTLS bool) {
		var c net.Conn
		var err error
		if inTLS {
			c, err = tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", fx.addr, fx.tls)
		} else {
			c, err = net.Dial("tcp", fx.addr)
		}
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(b)
		_ = c.Close()
		probe(t)
	})
}
