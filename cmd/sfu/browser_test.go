package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"image/png"
	"log/slog"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tessera-rtc/tessera/configs"
	"github.com/tessera-rtc/tessera/web/webtest"
)

// The browser tests run the real server in-process and drive the web client
// in headless Chromium with fake camera and microphone (web/webtest). They
// are skipped without /usr/bin/chromium, except under CI=true.

// lockedBuffer collects the server's log, shown when a test fails.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// startServer runs the server on cfg until the test ends and returns the
// address it listens on.
func startServer(t *testing.T, cfg configs.Config) string {
	t.Helper()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("config: %v", err)
	}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv, err := newServer(cfg, log)
	if err != nil {
		t.Fatalf("newServer: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- srv.serve(ctx, func(addr string) { ready <- addr }) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("serve: %v", err)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("shutdown: %v", err)
		}
		if t.Failed() || os.Getenv("SHOW_SERVER_LOG") != "" {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return addr
}

// loopbackConfig is the embedded default on an ephemeral port, with ICE
// kept on the loopback interface.
func loopbackConfig() configs.Config {
	cfg := configs.Default()
	cfg.Listen = "127.0.0.1:0"
	cfg.ICE.Loopback = true
	cfg.ICE.IPs = []string{"127.0.0.1"}
	return cfg
}

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser tests are slow: skipped with -short")
	}
}

// tileMedia is what tileStatsJS reports for one remote tile.
type tileMedia struct {
	Key         string `json:"key"`
	Participant string `json:"participant"`
	Name        string `json:"name"`
	Screen      bool   `json:"screen"`
	VideoMuted  bool   `json:"videoMuted"`
	AudioMuted  bool   `json:"audioMuted"`
	Frames      int    `json:"frames"`  // framesDecoded of the tile's video
	Packets     int    `json:"packets"` // audio packetsReceived of the tile's audio
	Width       int    `json:"width"`   // the video element's videoWidth
}

// tileStatsJS lists the remote tiles with the inbound-rtp counters of the
// tracks they show.
const tileStatsJS = `(async () => {
  const c = window.tessera && window.tessera.client;
  const inbound = new Map();
  if (c && c.pc) (await c.pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp') inbound.set(s.trackIdentifier, s);
  });
  return [...document.querySelectorAll('#grid .tile:not([data-local])')].map((el) => {
    const v = el.querySelector('video');
    let frames = 0, packets = 0;
    for (const t of (v.srcObject ? v.srcObject.getTracks() : [])) {
      const s = inbound.get(t.id);
      if (!s) continue;
      if (t.kind === 'video') frames += s.framesDecoded || 0;
      else packets += s.packetsReceived || 0;
    }
    return {key: el.dataset.key, participant: el.dataset.participant, name: el.dataset.name,
      screen: el.hasAttribute('data-screen'), videoMuted: el.dataset.videoMuted === 'true',
      audioMuted: el.dataset.audioMuted === 'true', frames, packets, width: v.videoWidth};
  });
})()`

func remoteTiles(t *testing.T, tab *webtest.Tab) []tileMedia {
	t.Helper()
	return webtest.MustEval[[]tileMedia](t, tab, tileStatsJS)
}

func byName(tiles []tileMedia) map[string]tileMedia {
	m := make(map[string]tileMedia, len(tiles))
	for _, ti := range tiles {
		if !ti.Screen {
			m[ti.Name] = ti
		}
	}
	return m
}

// waitTiles waits until tab shows exactly the remote people named.
func waitTiles(t *testing.T, tab *webtest.Tab, timeout time.Duration, names ...string) {
	t.Helper()
	want := slices.Clone(names)
	slices.Sort(want)
	deadline := time.Now().Add(timeout)
	for {
		var got []string
		for name := range byName(remoteTiles(t, tab)) {
			got = append(got, name)
		}
		slices.Sort(got)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: remote tiles %q, want %q after %s%s", tab.Name, got, want, timeout, diagnose(tab))
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// waitMediaFlowing waits until every named remote tile of tab plays video
// (frames decoded, a picture size) and receives audio, then until both
// counters have risen again: media is flowing now, not just once.
func waitMediaFlowing(t *testing.T, tab *webtest.Tab, timeout time.Duration, names ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var first map[string]tileMedia
	for {
		tiles := byName(remoteTiles(t, tab))
		ok := true
		for _, n := range names {
			ti, found := tiles[n]
			if !found || ti.Frames == 0 || ti.Packets == 0 || ti.Width == 0 {
				ok = false
				break
			}
			if first != nil && (ti.Frames <= first[n].Frames || ti.Packets <= first[n].Packets) {
				ok = false
				break
			}
		}
		switch {
		case ok && first == nil:
			first = tiles
		case ok:
			return
		case time.Now().After(deadline):
			js, _ := json.Marshal(tiles)
			t.Fatalf("%s: media of %q not flowing after %s: %s%s", tab.Name, names, timeout, js, diagnose(tab))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// diagnose describes what the page shows besides tiles: its connection
// state, its messages and its console errors.
func diagnose(tab *webtest.Tab) string {
	v, err := webtest.Eval[string](tab, `'connection: ' + document.getElementById('conn').dataset.state + '; messages: ' + JSON.stringify([...document.querySelectorAll('#toasts .toast')].map((el) => el.innerText))`)
	if err != nil {
		v = err.Error()
	}
	return fmt.Sprintf("\n\t%s\n\tconsole: %q", v, tab.ConsoleErrors())
}

// waitScreenFlowing waits until tab shows the named screen-share tile with
// its video decoding, and the count rising.
func waitScreenFlowing(t *testing.T, tab *webtest.Tab, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	first := -1
	for {
		frames := -1
		for _, ti := range remoteTiles(t, tab) {
			if ti.Screen && ti.Name == name && ti.Width > 0 {
				frames = ti.Frames
			}
		}
		switch {
		case frames > 0 && first < 0:
			first = frames
		case frames > first && first > 0:
			return
		case time.Now().After(deadline):
			t.Fatalf("%s: screen tile %q not playing after %s (frames %d)%s", tab.Name, name, timeout, frames, diagnose(tab))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// checkPage fails the test for every console error, uncaught exception or
// error message the page showed.
func checkPage(t *testing.T, tab *webtest.Tab) {
	t.Helper()
	tab.CheckConsole(t)
	msgs, err := webtest.Eval[[]string](tab, `tessera.state.messages.filter((m) => m.kind === 'error').map((m) => m.title + ': ' + m.message)`)
	if err != nil {
		t.Errorf("%s: reading its messages: %v", tab.Name, err)
	}
	for _, m := range msgs {
		t.Errorf("%s showed an error: %s", tab.Name, m)
	}
}

func tileAttr(name, attr, value string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#grid .tile:not([data-local]):not([data-screen])')].some((el) => el.dataset.name === %q && el.getAttribute(%q) === %q)`, name, attr, value)
}

func pageURL(base, room, name string) string {
	return base + "/?" + url.Values{"room": {room}, "name": {name}}.Encode()
}

// TestBrowserConference runs a three-person call through the web page:
// media flows between everyone, mute, leave, rejoin, reload and closing a
// tab are seen by the others, and no page logs an error.
func TestBrowserConference(t *testing.T) {
	skipShort(t)
	webtest.RequireChromium(t)
	start := time.Now()
	cfg := loopbackConfig()
	cfg.Rooms.MaxParticipants = 3 // a fourth person is refused
	base := "http://" + startServer(t, cfg)
	b := webtest.NewBrowser(t, webtest.Options{Width: 1280, Height: 720})
	const room = "e2e"

	names := []string{"Ada", "Grace", "Linus"}
	tabs := map[string]*webtest.Tab{}
	for _, n := range names {
		tabs[n] = b.NewTab(n)
	}
	for _, n := range names {
		tabs[n].Navigate(t, pageURL(base, room, n))
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range names {
				if !tabs[n].Closed() {
					t.Logf("%s's page:%s", n, diagnose(tabs[n]))
				}
			}
		}
	})
	ada, grace, linus := tabs["Ada"], tabs["Grace"], tabs["Linus"]
	// Each step builds on the previous ones: stop at the first failure.
	step := func(name string, f func(t *testing.T)) {
		if !t.Failed() {
			t.Run(name, f)
		}
	}
	others := func(n string) []string {
		return slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == n })
	}

	step("three people see and hear each other", func(t *testing.T) {
		for _, n := range names {
			tabs[n].WaitFor(t, "the call view", 10*time.Second, `!document.getElementById('call-view').hidden`)
		}
		for _, n := range names {
			waitTiles(t, tabs[n], 15*time.Second, others(n)...)
		}
		for _, n := range names {
			waitMediaFlowing(t, tabs[n], 20*time.Second, others(n)...)
		}
		for _, n := range names {
			tabs[n].WaitFor(t, "the connected indicator", 5*time.Second, `document.getElementById('conn').dataset.state === 'connected'`)
			tabs[n].WaitFor(t, "a share link", time.Second, fmt.Sprintf(`document.getElementById('share-link').value.endsWith('?room=%s')`, room))
		}
		t.Logf("call established and media flowing after %s", time.Since(start).Round(time.Millisecond))
	})
	step("screenshot", func(t *testing.T) {
		shot := ada.Screenshot(t)
		img, err := png.Decode(bytes.NewReader(shot))
		if err != nil {
			t.Fatalf("screenshot is not a PNG: %v", err)
		}
		if w := img.Bounds().Dx(); w < 640 {
			t.Fatalf("screenshot is %d pixels wide", w)
		}
		if os.Getenv("UPDATE_SCREENSHOT") == "1" {
			path := filepath.Join("..", "..", "docs", "screenshot.png")
			if err := os.WriteFile(path, shot, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s", path)
		}
	})

	step("camera off and microphone mute are shown to the others", func(t *testing.T) {
		linus.Click(t, "#camera")
		linus.WaitFor(t, "the camera button to offer turning it on", 2*time.Second, `document.getElementById('camera').dataset.active === 'true' && document.querySelector('#camera .label').textContent === 'Start video'`)
		for _, tab := range []*webtest.Tab{ada, grace} {
			tab.WaitFor(t, "Linus's camera shown off", 5*time.Second, tileAttr("Linus", "data-video-muted", "true"))
		}
		grace.Click(t, "#mic")
		for _, tab := range []*webtest.Tab{ada, linus} {
			tab.WaitFor(t, "Grace's microphone shown muted", 5*time.Second, tileAttr("Grace", "data-audio-muted", "true"))
			tab.WaitFor(t, "Grace's mute badge", time.Second, `[...document.querySelectorAll('#grid .tile')].some((el) => el.dataset.name === 'Grace' && !el.querySelector('.mic-off').hidden)`)
		}
		linus.Click(t, "#camera")
		grace.Click(t, "#mic")
		for _, tab := range []*webtest.Tab{ada, grace} {
			tab.WaitFor(t, "Linus's camera back on", 5*time.Second, tileAttr("Linus", "data-video-muted", "false"))
		}
		for _, tab := range []*webtest.Tab{ada, linus} {
			tab.WaitFor(t, "Grace's microphone back on", 5*time.Second, tileAttr("Grace", "data-audio-muted", "false"))
		}
		waitMediaFlowing(t, ada, 10*time.Second, "Grace", "Linus")
	})

	step("screen sharing", func(t *testing.T) {
		// Twice: the second share reuses the transceiver the first left inactive.
		for range 2 {
			ada.Click(t, "#screen")
			ada.WaitFor(t, "the local screen tile", 5*time.Second, `!!document.querySelector('#grid .tile[data-local][data-screen]')`)
			for _, tab := range []*webtest.Tab{grace, linus} {
				waitScreenFlowing(t, tab, "Ada (screen)", 10*time.Second)
			}
			ada.Click(t, "#screen")
			for _, tab := range []*webtest.Tab{grace, linus} {
				tab.WaitFor(t, "Ada's screen tile to go", 5*time.Second, `!document.querySelector('#grid .tile[data-screen]')`)
			}
		}
		waitMediaFlowing(t, grace, 10*time.Second, "Ada", "Linus")
	})

	step("errors are shown", func(t *testing.T) {
		// An error reply in the call: a toast with the server's code.
		webtest.MustEval[bool](t, ada, `(() => { tessera.client.subscribe(['t-nope']); return true; })()`)
		ada.WaitFor(t, "the error message", 5*time.Second, `[...document.querySelectorAll('#toasts .toast')].some((el) => el.innerText.includes('not-found') && el.innerText.includes('t-nope'))`)
		webtest.MustEval[bool](t, ada, `(() => { tessera.state.messages.length = 0; document.querySelectorAll('#toasts .toast').forEach((el) => el.remove()); return true; })()`)

		// A refused join: the form says why.
		eve := b.NewTab("Eve")
		eve.Navigate(t, pageURL(base, room, "Eve"))
		eve.WaitFor(t, "the room-full message", 10*time.Second, `(() => { const e = document.getElementById('join-error'); return !e.hidden && e.textContent.includes('room-full') && !document.getElementById('join-view').hidden; })()`)
		eve.CheckConsole(t)
		eve.Close()
		for _, n := range names {
			waitTiles(t, tabs[n], 2*time.Second, others(n)...)
		}
	})

	step("switching microphone", func(t *testing.T) {
		ada.Click(t, "#settings")
		ada.WaitFor(t, "the devices dialog", 5*time.Second, `document.getElementById('devices').open && document.getElementById('mic-select').options.length >= 2`)
		label := webtest.MustEval[string](t, ada, `(() => {
			const s = document.getElementById('mic-select');
			const o = [...s.options].find((o) => !o.selected);
			s.value = o.value;
			s.dispatchEvent(new Event('change'));
			return o.textContent;
		})()`)
		ada.WaitFor(t, "the new microphone being sent", 5*time.Second, fmt.Sprintf(`(() => {
			const mic = tessera.state.tracks.mic;
			const pub = tessera.client.publications.find((p) => p.kind === 'audio');
			return !!mic && mic.label === %q && mic.readyState === 'live' && pub.transceiver.sender.track === mic;
		})()`, label))
		ada.Click(t, "#devices button.primary")
		ada.WaitFor(t, "the dialog closed", 2*time.Second, `!document.getElementById('devices').open`)
		waitMediaFlowing(t, grace, 10*time.Second, "Ada", "Linus")
	})

	step("leaving with the button and joining again", func(t *testing.T) {
		linus.Click(t, "#leave")
		linus.WaitFor(t, "the join form", 5*time.Second, `!document.getElementById('join-view').hidden && document.getElementById('call-view').hidden`)
		waitTiles(t, ada, 5*time.Second, "Grace")
		waitTiles(t, grace, 5*time.Second, "Ada")
		linus.WaitFor(t, "the form kept room and name", time.Second, fmt.Sprintf(`document.getElementById('room').value === %q && document.getElementById('name').value === 'Linus'`, room))
		linus.Click(t, "#join-button")
		for _, n := range names {
			waitTiles(t, tabs[n], 10*time.Second, others(n)...)
		}
		for _, n := range names {
			waitMediaFlowing(t, tabs[n], 15*time.Second, others(n)...)
		}
	})

	step("a reload rejoins cleanly", func(t *testing.T) {
		oldID := byName(remoteTiles(t, ada))["Grace"].Participant
		if oldID == "" {
			t.Fatal("Ada has no tile for Grace")
		}
		grace.Reload(t)
		gone := fmt.Sprintf(`![...document.querySelectorAll('#grid .tile')].some((el) => el.dataset.participant === %q)`, oldID)
		back := fmt.Sprintf(`[...document.querySelectorAll('#grid .tile:not([data-local])')].some((el) => el.dataset.name === 'Grace' && el.dataset.participant !== %q)`, oldID)
		for _, tab := range []*webtest.Tab{ada, linus} {
			tab.WaitFor(t, "Grace's old participant to leave", 5*time.Second, gone)
			tab.WaitFor(t, "Grace to come back", 10*time.Second, back)
		}
		for _, n := range names {
			waitTiles(t, tabs[n], 10*time.Second, others(n)...)
		}
		for _, n := range names {
			waitMediaFlowing(t, tabs[n], 15*time.Second, others(n)...)
		}
	})

	step("reconnects after the connection drops", func(t *testing.T) {
		oldID := byName(remoteTiles(t, ada))["Grace"].Participant
		grace.Click(t, "#camera") // the camera stays off across the reconnection
		ada.WaitFor(t, "Grace's camera shown off", 5*time.Second, tileAttr("Grace", "data-video-muted", "true"))
		webtest.MustEval[bool](t, grace, `(() => {
			window.reconnectingShown = false;
			tessera.client.addEventListener('connectionstatechange', () => {
				if (document.getElementById('conn').dataset.state === 'reconnecting') window.reconnectingShown = true;
			});
			tessera.client.session.ws.close(4100, 'dropped');
			return true;
		})()`)
		grace.WaitFor(t, "the reconnecting indicator", 5*time.Second, `window.reconnectingShown`)
		back := fmt.Sprintf(`[...document.querySelectorAll('#grid .tile:not([data-local])')].some((el) => el.dataset.name === 'Grace' && el.dataset.participant !== %q)`, oldID)
		for _, tab := range []*webtest.Tab{ada, linus} {
			tab.WaitFor(t, "Grace to come back", 10*time.Second, back)
			tab.WaitFor(t, "Grace's camera still shown off", 5*time.Second, tileAttr("Grace", "data-video-muted", "true"))
		}
		grace.WaitFor(t, "the connected indicator", 10*time.Second, `document.getElementById('conn').dataset.state === 'connected'`)
		grace.Click(t, "#camera")
		for _, n := range names {
			waitTiles(t, tabs[n], 5*time.Second, others(n)...)
		}
		for _, n := range names {
			waitMediaFlowing(t, tabs[n], 15*time.Second, others(n)...)
		}
	})

	step("closing a tab", func(t *testing.T) {
		checkPage(t, linus)
		linus.Close()
		waitTiles(t, ada, 5*time.Second, "Grace")
		waitTiles(t, grace, 5*time.Second, "Ada")
	})

	step("phone width", func(t *testing.T) {
		ada.SetViewport(t, 390, 844, true)
		ada.WaitFor(t, "no horizontal scrolling", 3*time.Second, `document.documentElement.scrollWidth <= window.innerWidth`)
		ada.WaitFor(t, "controls on screen", time.Second, `(() => { const r = document.getElementById('leave').getBoundingClientRect(); return r.bottom <= window.innerHeight && r.right <= window.innerWidth && r.width > 0; })()`)
	})

	for _, n := range names {
		if !tabs[n].Closed() {
			checkPage(t, tabs[n])
		}
	}
	t.Logf("browser test took %s", time.Since(start).Round(time.Millisecond))
}

// lanAddress returns an IPv4 address of this machine that is not loopback
// or link-local, if there is one.
func lanAddress() (net.IP, bool) {
	ifaces, err := net.Interfaces()
	if err != nil {
		return nil, false
	}
	for _, ifi := range ifaces {
		if ifi.Flags&net.FlagUp == 0 || ifi.Flags&net.FlagLoopback != 0 {
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
			if ip4 := ipn.IP.To4(); ip4 != nil && !ip4.IsLoopback() && !ip4.IsLinkLocalUnicast() {
				return ip4, true
			}
		}
	}
	return nil, false
}

// selfSigned writes a self-signed certificate for ip (and localhost) and
// its key as PEM files, and returns their paths.
func selfSigned(t *testing.T, ip net.IP) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "tessera test"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IPAddresses:           []net.IP{ip, net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestBrowserTLS serves the page over https with a self-signed certificate,
// as on a LAN (docs/lan.md): on a non-loopback address of this machine when
// it has one, with ICE on that address only. The page must be a secure
// context (getUserMedia works) and two people must exchange media.
func TestBrowserTLS(t *testing.T) {
	skipShort(t)
	webtest.RequireChromium(t)
	cfg := configs.Default()
	ip, lan := lanAddress()
	if lan {
		cfg.ICE.Loopback = false
		cfg.ICE.IPs = []string{ip.String()}
	} else {
		t.Log("no non-loopback address: serving https on 127.0.0.1 (the LAN part is skipped)")
		ip = net.IPv4(127, 0, 0, 1)
		cfg.ICE.Loopback = true
		cfg.ICE.IPs = []string{"127.0.0.1"}
	}
	cfg.Listen = net.JoinHostPort(ip.String(), "0")
	cfg.TLS.Cert, cfg.TLS.Key = selfSigned(t, ip)
	base := "https://" + startServer(t, cfg)
	if !strings.HasPrefix(base, "https://"+ip.String()+":") {
		t.Fatalf("server listens on %s, want %s", base, ip)
	}
	t.Logf("serving %s", base)

	b := webtest.NewBrowser(t, webtest.Options{IgnoreCertErrors: true, Width: 1024, Height: 640})
	one, two := b.NewTab("Ada"), b.NewTab("Grace")
	one.Navigate(t, pageURL(base, "lan", "Ada"))
	two.Navigate(t, pageURL(base, "lan", "Grace"))
	for _, tab := range []*webtest.Tab{one, two} {
		tab.WaitFor(t, "a secure context with media devices", 5*time.Second,
			`window.isSecureContext && location.protocol === 'https:' && !!(navigator.mediaDevices && navigator.mediaDevices.getUserMedia)`)
	}
	waitTiles(t, one, 15*time.Second, "Grace")
	waitTiles(t, two, 15*time.Second, "Ada")
	waitMediaFlowing(t, one, 20*time.Second, "Grace")
	waitMediaFlowing(t, two, 20*time.Second, "Ada")
	checkPage(t, one)
	checkPage(t, two)
}
