package webtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultFirefox is where Debian's firefox-esr package installs the browser.
const DefaultFirefox = "/usr/bin/firefox-esr"

// FirefoxPath returns the Firefox to run: $FIREFOX when set, else
// [DefaultFirefox].
func FirefoxPath() string {
	if p := os.Getenv("FIREFOX"); p != "" {
		return p
	}
	return DefaultFirefox
}

// RequireFirefox returns Firefox's path. When there is none it skips the
// test, or fails it when the environment variable CI is "true", as
// [RequireChromium] does.
func RequireFirefox(t testing.TB) string {
	t.Helper()
	p := FirefoxPath()
	if _, err := exec.LookPath(p); err != nil {
		msg := fmt.Sprintf("no Firefox at %s (%v): install it with `apt-get install -y firefox-esr`, or set FIREFOX", p, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// FirefoxPrefs returns the preferences Firefox runs with (its user.js):
// fake media devices granted without a prompt, WebRTC over loopback,
// autoplay allowed, background pages neither throttled nor suspended, and
// nothing that reaches out to the network (updates, telemetry, safe
// browsing, captive-portal and connectivity checks), followed by
// opts.Prefs.
func FirefoxPrefs(opts Options) map[string]any {
	prefs := map[string]any{
		// Fake camera and microphone, granted without asking.
		"media.navigator.streams.fake":        true,
		"media.navigator.permission.disabled": true,
		"permissions.default.camera":          1,
		"permissions.default.microphone":      1,
		// WebRTC on this machine: loopback candidates, and plain addresses
		// rather than mDNS names nobody could resolve.
		"media.peerconnection.ice.loopback":                 true,
		"media.peerconnection.ice.obfuscate_host_addresses": false,
		// Play without a gesture, and keep doing so in pages not in front.
		"media.autoplay.default":                   0,
		"media.autoplay.blocking_policy":           0,
		"media.block-autoplay-until-in-foreground": false,
		"media.suspend-bkgnd-video.enabled":        false,
		"media.suspend-background-video.enabled":   false,
		// Timers of background pages run as often as in front.
		"dom.min_background_timeout_value":                           4,
		"dom.min_background_timeout_value_without_budget_throttling": 4,
		"dom.timeout.enable_budget_throttling":                       false,
		"dom.suspend_inactive.enabled":                               false,
		"dom.ipc.processPriorityManager.enabled":                     false,
		// A quiet start: no first-run pages, questions or session restore.
		"browser.shell.checkDefaultBrowser":          false,
		"browser.startup.homepage_override.mstone":   "ignore",
		"browser.startup.page":                       0,
		"browser.startup.homepage":                   "about:blank",
		"startup.homepage_welcome_url":               "about:blank",
		"startup.homepage_welcome_url.additional":    "",
		"browser.aboutwelcome.enabled":               false,
		"browser.newtabpage.enabled":                 false,
		"browser.sessionstore.resume_from_crash":     false,
		"browser.tabs.warnOnClose":                   false,
		"browser.warnOnQuit":                         false,
		"toolkit.startup.max_resumed_crashes":        -1,
		"datareporting.policy.dataSubmissionEnabled": false,
		"datareporting.healthreport.uploadEnabled":   false,
		"toolkit.telemetry.reportingpolicy.firstRun": false,
		"toolkit.telemetry.server":                   "",
		// Nothing outbound: the tests' machine may have no network, and
		// Firefox must not wait for one.
		"app.update.disabledForTesting":                   true,
		"app.normandy.enabled":                            false,
		"app.normandy.api_url":                            "",
		"network.captive-portal-service.enabled":          false,
		"network.connectivity-service.enabled":            false,
		"network.dns.disablePrefetch":                     true,
		"network.prefetch-next":                           false,
		"network.http.speculative-parallel-limit":         0,
		"network.trr.mode":                                5,
		"browser.safebrowsing.malware.enabled":            false,
		"browser.safebrowsing.phishing.enabled":           false,
		"browser.safebrowsing.downloads.enabled":          false,
		"browser.safebrowsing.blockedURIs.enabled":        false,
		"browser.safebrowsing.update.enabled":             false,
		"browser.search.update":                           false,
		"browser.region.network.url":                      "",
		"browser.topsites.contile.enabled":                false,
		"browser.translations.enable":                     false,
		"browser.ml.enable":                               false,
		"extensions.update.enabled":                       false,
		"extensions.systemAddon.update.enabled":           false,
		"extensions.getAddons.cache.enabled":              false,
		"media.gmp-manager.updateEnabled":                 false,
		"services.settings.server":                        "data:,#remote-settings-dummy/v1",
		"security.OCSP.enabled":                           0,
		"security.remote_settings.crlite_filters.enabled": false,
		"dom.push.connection.enabled":                     false,
		"geo.provider.network.url":                        "",
		"identity.fxaccounts.enabled":                     false,
		// WebDriver BiDi only (1), not the CDP (2) of older versions;
		// versions without CDP (153 among them) ignore the pref.
		"remote.active-protocols": 1,
	}
	for name, v := range opts.Prefs {
		prefs[name] = v
	}
	return prefs
}

// writeUserJS writes prefs into the profile as user_pref lines.
func writeUserJS(profile string, prefs map[string]any) error {
	var b bytes.Buffer
	for _, name := range slices.Sorted(maps.Keys(prefs)) {
		v, err := json.Marshal(prefs[name])
		if err != nil {
			return fmt.Errorf("pref %s: %w", name, err)
		}
		fmt.Fprintf(&b, "user_pref(%q, %s);\n", name, v)
	}
	return os.WriteFile(filepath.Join(profile, "user.js"), b.Bytes(), 0o644)
}

// firefox is one Firefox process and the WebDriver BiDi session the tabs
// share.
type firefox struct {
	opts   Options
	cmd    *exec.Cmd
	out    *procLog
	exited chan struct{} // closed once the process has exited
	conn   *bidiConn     // nil until connected

	mu   sync.Mutex
	tabs map[string]*Tab // by browsing context id, for their console errors; guarded by mu
}

// NewFirefox starts Firefox headless with a fresh profile (see
// [FirefoxPrefs]) and a WebDriver BiDi session; it is stopped when the test
// ends. Options.IgnoreCertErrors accepts any certificate; Width and Height
// size each tab's viewport; Flags are extra command-line flags (true gives
// --name alone); Prefs add to or override the preferences.
func NewFirefox(t testing.TB, opts Options) *Browser {
	t.Helper()
	path := RequireFirefox(t)
	profile := t.TempDir() // before the Cleanup that stops Firefox, so removed after it
	if err := writeUserJS(profile, FirefoxPrefs(opts)); err != nil {
		t.Fatalf("firefox profile: %v", err)
	}
	w, h := windowSize(opts)
	args := []string{"--headless", "--no-remote", "--profile", profile,
		// Port 0: Firefox picks a free one, and prints it.
		"--remote-debugging-port", "0",
		"--window-size", fmt.Sprintf("%d,%d", w, h)}
	for _, name := range slices.Sorted(maps.Keys(opts.Flags)) {
		switch v := opts.Flags[name]; v {
		case true:
			args = append(args, "--"+name)
		case false:
		default:
			args = append(args, "--"+name, fmt.Sprint(v))
		}
	}
	cmd := exec.Command(path, append(args, "about:blank")...)
	cmd.Env = append(os.Environ(), "MOZ_HEADLESS=1", "MOZ_CRASHREPORTER_DISABLE=1", "MOZ_DISABLE_AUTO_SAFE_MODE=1")
	f := &firefox{opts: opts, cmd: cmd, out: newProcLog(), exited: make(chan struct{}), tabs: map[string]*Tab{}}
	cmd.Stdout, cmd.Stderr = f.out, f.out
	cmd.WaitDelay = 5 * time.Second // child processes holding the output pipe do not hold up Wait
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	go func() {
		_ = cmd.Wait()
		close(f.exited)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	b := &Browser{t: t, engine: Firefox, ctx: ctx, cancel: cancel, ff: f}
	t.Cleanup(func() {
		cancel()
		f.stop()
	})

	start, cancelStart := context.WithTimeout(ctx, 30*time.Second)
	defer cancelStart()
	var addr string
	select {
	case addr = <-f.out.addr:
	case <-f.exited:
		t.Fatalf("%s exited before listening (%v):\n%s", path, cmd.ProcessState, f.out.tail())
	case <-start.Done():
		t.Fatalf("%s not listening for WebDriver BiDi after 30s:\n%s", path, f.out.tail())
	}
	conn, err := dialBiDi(start, addr+"/session", f.onEvent)
	if err != nil {
		t.Fatalf("firefox: %v\n%s", err, f.out.tail())
	}
	f.conn = conn
	caps := map[string]any{"alwaysMatch": map[string]any{"acceptInsecureCerts": opts.IgnoreCertErrors}}
	if err := conn.call(start, "session.new", map[string]any{"capabilities": caps}, nil); err != nil {
		t.Fatalf("firefox: %v", err)
	}
	if err := conn.call(start, "session.subscribe", map[string]any{"events": []string{"log.entryAdded"}}, nil); err != nil {
		t.Fatalf("firefox: %v", err)
	}
	return b
}

// stop asks Firefox to quit, and kills it if it did not agree to or has
// not quit within 10s; then it waits for the process and for the
// connection's reader.
func (f *firefox) stop() {
	grace := time.Duration(0)
	if f.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := f.conn.call(ctx, "browser.close", nil, nil)
		cancel()
		if err == nil || errors.Is(err, errBiDiClosed) { // quitting: it may drop the connection before answering
			grace = 10 * time.Second
		}
	}
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case <-f.exited:
	case <-timer.C:
		_ = f.cmd.Process.Kill()
		<-f.exited
	}
	if f.conn != nil {
		f.conn.close()
	}
}

// onEvent records log entries of level "error" (console.error and
// console.assert, uncaught exceptions) for the tab they come from. It runs
// on the connection's reader.
func (f *firefox) onEvent(method string, params json.RawMessage) {
	if method != "log.entryAdded" {
		return
	}
	var e struct {
		Type   string `json:"type"` // "console" or "javascript"
		Level  string `json:"level"`
		Method string `json:"method"`
		Text   string `json:"text"`
		Source struct {
			Context string `json:"context"`
		} `json:"source"`
		StackTrace struct {
			CallFrames []struct {
				URL        string `json:"url"`
				LineNumber int    `json:"lineNumber"`
			} `json:"callFrames"`
		} `json:"stackTrace"`
	}
	if json.Unmarshal(params, &e) != nil || e.Level != "error" {
		return
	}
	f.mu.Lock()
	tab := f.tabs[e.Source.Context]
	f.mu.Unlock()
	if tab == nil {
		return
	}
	var msg string
	switch e.Type {
	case "console":
		msg = fmt.Sprintf("console.%s: %s", e.Method, e.Text)
	case "javascript":
		msg = "uncaught: " + e.Text
		if fr := e.StackTrace.CallFrames; len(fr) > 0 {
			msg += fmt.Sprintf(" (%s:%d)", fr[0].URL, fr[0].LineNumber+1)
		}
	default:
		msg = fmt.Sprintf("%s error: %s", e.Type, e.Text)
	}
	tab.record(msg)
}

// procLog keeps the end of what Firefox prints, and sends on addr the
// WebSocket address of its BiDi server once it prints it.
type procLog struct {
	addr chan string // buffered: receives one address

	mu   sync.Mutex
	buf  []byte // the last 16 KiB, guarded by mu
	line []byte // the line being written, guarded by mu
	sent bool   // guarded by mu
}

func newProcLog() *procLog { return &procLog{addr: make(chan string, 1)} }

func (l *procLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf = append(l.buf, p...)
	if n := len(l.buf) - 16<<10; n > 0 {
		l.buf = slices.Clone(l.buf[n:])
	}
	if l.sent {
		return len(p), nil
	}
	l.line = append(l.line, p...)
	for {
		i := bytes.IndexByte(l.line, '\n')
		if i < 0 {
			break
		}
		line := strings.TrimSpace(string(l.line[:i]))
		l.line = l.line[i+1:]
		if a, ok := strings.CutPrefix(line, "WebDriver BiDi listening on "); ok {
			l.addr <- a
			l.sent, l.line = true, nil
			break
		}
	}
	return len(p), nil
}

// tail returns the end of what Firefox printed.
func (l *procLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return string(l.buf)
}
