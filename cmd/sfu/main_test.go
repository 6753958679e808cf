package main

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tessera-rtc/tessera/signaling/client"
)

// TestMain lets a test run the real main in a child process (the test
// binary itself), to send it real signals.
func TestMain(m *testing.M) {
	if os.Getenv("SFU_TEST_RUN_MAIN") == "1" {
		os.Args = append([]string{"sfu"}, strings.Fields(os.Getenv("SFU_TEST_ARGS"))...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rooms.yaml")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// startInProcess runs the server until the test ends and returns its address.
func startInProcess(t *testing.T, args ...string) string {
	t.Helper()
	return startLogged(t, io.Discard, args...)
}

func TestServesClientHealthAndSocket(t *testing.T) {
	addr := startInProcess(t, "--listen", "127.0.0.1:0")
	for _, path := range []string{"/healthz", "/"} {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		if path == "/" && !bytes.Contains(body, []byte("<html")) {
			t.Errorf("GET / is not the web client: %.100s", body)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+addr+"/ws", client.Options{Room: "r", Name: "n"})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	// A foreign origin is refused; the server's own is not.
	h := http.Header{"Origin": {"https://evil.example"}}
	if _, resp, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", h); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("foreign origin: err=%v, want 403", err)
	}
	h = http.Header{"Origin": {"http://" + addr}}
	ws, _, err := websocket.DefaultDialer.Dial("ws://"+addr+"/ws", h)
	if err != nil {
		t.Errorf("same origin refused: %v", err)
	} else {
		ws.Close()
	}
}

func TestConfigErrorsStopStartup(t *testing.T) {
	bad := writeConfig(t, "listen: 127.0.0.1:0\nice:\n  udp_prot: 5\n")
	err := run(context.Background(), []string{"--config", bad}, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), `line 3: ice: unknown key "udp_prot"`) {
		t.Errorf("err = %v", err)
	}
	err = run(context.Background(), []string{"--udp-port", "70000"}, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "ice.udp_port") {
		t.Errorf("--udp-port 70000: err = %v", err)
	}
	err = run(context.Background(), []string{"--config", filepath.Join(t.TempDir(), "missing.yaml")}, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("missing file: err = %v", err)
	}
	if err := run(context.Background(), []string{"stray"}, io.Discard, nil); err == nil {
		t.Error("a stray argument was accepted")
	}
}

// startProcess runs the real binary (this test binary, as main) on the
// configuration text until the test ends. It returns the process, the
// address it listens on, and its log after the listening line.
func startProcess(t *testing.T, config string) (*exec.Cmd, string, *syncBuffer) {
	t.Helper()
	cfg := writeConfig(t, config)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SFU_TEST_RUN_MAIN=1", "SFU_TEST_ARGS=--config "+cfg)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	logs := bufio.NewScanner(stderr)
	urlRe := regexp.MustCompile(`url=http://([0-9.:]+)/`)
	addr := ""
	for addr == "" && logs.Scan() {
		if m := urlRe.FindStringSubmatch(logs.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatal("no listening line in the log")
	}
	rest := &syncBuffer{}
	go func() {
		for logs.Scan() {
			rest.WriteString(logs.Text() + "\n")
		}
	}()
	return cmd, addr, rest
}

// syncBuffer is a bytes.Buffer safe for one writer and other readers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) WriteString(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.WriteString(s)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSignalShutdown runs the real binary, puts a call through it and sends
// SIGTERM: both participants are told (1001), and the process exits cleanly
// within a few seconds.
func TestSignalShutdown(t *testing.T) {
	cmd, addr, rest := startProcess(t, "listen: 127.0.0.1:0\nice:\n  loopback: true\n  udp_port: 0\nshutdown_timeout: 5s\n")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "ws://" + addr + "/ws"
	a, err := client.Dial(ctx, url, client.Options{Room: "r", Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	synth, err := client.NewSynth("video", "v", a.Self.ID, 1, 300)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Publish(ctx, synth.Track); err != nil {
		t.Fatal(err)
	}
	go synth.Run(ctx, 10*time.Millisecond)
	b, err := client.Dial(ctx, url, client.Options{Room: "r", Name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	select {
	case <-b.Tracks():
	case <-time.After(10 * time.Second):
		t.Fatal("no media before shutdown")
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client.Client{a, b} {
		select {
		case <-c.Done():
			if ce := c.CloseError(); ce == nil || ce.Code != websocket.CloseGoingAway {
				t.Errorf("%s: close %v, want 1001 going away", c.Self.Name, ce)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s was not told of the shutdown", c.Self.Name)
		}
	}
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Errorf("exit: %v\n%s", err, rest.String())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("process did not exit within 5s of SIGTERM")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("shutdown took %s", d)
	}
	if !strings.Contains(rest.String(), "shut down") {
		t.Errorf("log does not record the shutdown:\n%s", rest.String())
	}
}

// TestEmbeddedConfigStaysOnLoopback: the embedded configuration, whose
// operator endpoints need no credential, refuses to listen beyond loopback.
func TestEmbeddedConfigStaysOnLoopback(t *testing.T) {
	for _, listen := range []string{"0.0.0.0:0", ":0", "[::]:0"} {
		err := run(context.Background(), []string{"--listen", listen}, io.Discard, nil)
		if err == nil || !strings.Contains(err.Error(), "admin.token") {
			t.Errorf("--listen %s on the embedded configuration: err = %v, want a refusal naming admin.token", listen, err)
		}
	}
}

// TestLoopbackAnswersOnlyLoopbackNames: on loopback, a request naming
// another host (a DNS-rebound name resolving to 127.0.0.1) is refused, so a
// page elsewhere cannot reach the open operator endpoints or the socket.
func TestLoopbackAnswersOnlyLoopbackNames(t *testing.T) {
	addr := startInProcess(t, "--listen", "127.0.0.1:0")
	_, port, _ := net.SplitHostPort(addr)
	for _, tc := range []struct {
		host string
		want int
	}{
		{"127.0.0.1:" + port, http.StatusOK},
		{"localhost:" + port, http.StatusOK},
		{"[::1]:" + port, http.StatusOK},
		{"attacker.example:" + port, http.StatusMisdirectedRequest},
		{"127.0.0.1.nip.io:" + port, http.StatusMisdirectedRequest},
	} {
		for _, path := range []string{"/healthz", "/debug/rooms"} {
			req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
			req.Host = tc.host
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("GET %s with Host %s: %s, want %d", path, tc.host, resp.Status, tc.want)
			}
		}
	}
}

// TestLoopbackHostsThroughTrustedProxy: a reverse proxy on this machine
// passing the public Host is let through when it is trusted, and only then.
func TestLoopbackHostsThroughTrustedProxy(t *testing.T) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})
	for _, tc := range []struct {
		trusted []netip.Prefix
		want    int
	}{
		{nil, http.StatusMisdirectedRequest},
		{[]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}, http.StatusOK},
		{[]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, http.StatusMisdirectedRequest},
	} {
		r := httptest.NewRequest(http.MethodGet, "/healthz", nil)
		r.RemoteAddr, r.Host = "127.0.0.1:40000", "meet.example.org"
		w := httptest.NewRecorder()
		loopbackHosts(ok, tc.trusted).ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("trusted %v: %d, want %d", tc.trusted, w.Code, tc.want)
		}
	}
}
