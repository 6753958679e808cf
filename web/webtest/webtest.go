// Package webtest drives a real Chromium for end-to-end tests of the web
// client: it launches the browser headless with fake camera and microphone,
// opens isolated tabs, records their console errors and uncaught
// exceptions, and waits on JavaScript conditions. page.go reads what the
// conference page shows (tiles, media, speakers); [Proxy] breaks a page's
// connections to the server the way a network failure does; tls.go serves
// the page over https as on a LAN.
//
// A test calls [RequireChromium] (directly or through [NewBrowser]): without
// a browser the test is skipped, except under CI=true where it fails.
package webtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// DefaultChromium is where Debian's chromium package installs the browser.
const DefaultChromium = "/usr/bin/chromium"

// ChromiumPath returns the browser to run: $CHROMIUM when set, else
// [DefaultChromium].
func ChromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return DefaultChromium
}

// RequireChromium returns the browser's path. When there is none it skips
// the test, or fails it when the environment variable CI is "true": CI must
// not pass by running no browser test.
func RequireChromium(t testing.TB) string {
	t.Helper()
	p := ChromiumPath()
	if _, err := exec.LookPath(p); err != nil {
		msg := fmt.Sprintf("no Chromium at %s (%v): install it with `apt-get install -y chromium`, or set CHROMIUM", p, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// Options configure a browser.
type Options struct {
	// IgnoreCertErrors accepts any TLS certificate (self-signed ones).
	IgnoreCertErrors bool
	// Width and Height size each window; 1280x720 when zero.
	Width, Height int
	// Flags are extra command-line flags (name without dashes -> value).
	Flags map[string]any
}

// Browser is one Chromium process.
type Browser struct {
	t      testing.TB
	ctx    context.Context // the browser's first tab; parent of every Tab
	cancel context.CancelFunc
}

// Flags returns the command-line flags the browser runs with: headless, no
// sandbox or GPU, fake media devices granted without a prompt, autoplay
// allowed, no background network or throttling.
func Flags(opts Options) []chromedp.ExecAllocatorOption {
	w, h := opts.Width, opts.Height
	if w == 0 || h == 0 {
		w, h = 1280, 720
	}
	flags := []chromedp.ExecAllocatorOption{
		chromedp.Flag("headless", "new"),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("mute-audio", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.WindowSize(w, h),
	}
	if opts.IgnoreCertErrors {
		flags = append(flags, chromedp.IgnoreCertErrors)
	}
	for name, v := range opts.Flags {
		flags = append(flags, chromedp.Flag(name, v))
	}
	return flags
}

// NewBrowser starts Chromium with a fresh profile; it is stopped when the
// test ends.
func NewBrowser(t testing.TB, opts Options) *Browser {
	t.Helper()
	path := RequireChromium(t)
	allocOpts := append(Flags(opts),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &Browser{t: t, ctx: ctx, cancel: func() { cancel(); cancelAlloc() }}
	t.Cleanup(b.cancel)
	// The first Do starts the browser, for as long as ctx lives.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return b
}

// Tab is one page in a browser context of its own (separate storage, as
// a different person's browser would be). Its methods report failures to
// the test they are given, so that a subtest fails itself.
type Tab struct {
	Name   string
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	problems []string // console errors and uncaught exceptions, guarded by mu
	closed   bool     // guarded by mu
}

// NewTab opens an empty tab in a new window and browser context. Name
// labels its messages.
func (b *Browser) NewTab(name string) *Tab {
	b.t.Helper()
	tab := &Tab{Name: name}
	ctx, cancel := chromedp.NewContext(b.ctx,
		chromedp.WithNewBrowserContext(),
		chromedp.WithListener(tab.onEvent),
	)
	tab.ctx, tab.cancel = ctx, cancel
	b.t.Cleanup(tab.Close)
	// The first Do opens the tab for as long as ctx lives: it must not get
	// a shorter-lived context.
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatalf("%s: open tab: %v", name, err)
	}
	return tab
}

// onEvent records what a person would see as an error in the console. It
// runs on the tab's event loop: it must return quickly.
func (tab *Tab) onEvent(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type != runtime.ConsoleAPICalledTypeError && ev.Type != runtime.ConsoleAPICalledTypeAssert {
			return
		}
		parts := make([]string, 0, len(ev.Args))
		for _, a := range ev.Args {
			parts = append(parts, remoteText(a))
		}
		msg = fmt.Sprintf("console.%s: %s", ev.Type, strings.Join(parts, " "))
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		text := d.Text
		if d.Exception != nil {
			text += " " + remoteText(d.Exception)
		}
		msg = fmt.Sprintf("uncaught: %s (%s:%d)", text, d.URL, d.LineNumber+1)
	case *log.EventEntryAdded:
		if ev.Entry.Level != log.EntryLevelError {
			return
		}
		msg = fmt.Sprintf("%s error: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
	default:
		return
	}
	tab.mu.Lock()
	tab.problems = append(tab.problems, msg)
	tab.mu.Unlock()
}

func remoteText(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	if o.Description != "" {
		return o.Description
	}
	if len(o.Value) > 0 {
		return strings.Trim(string(o.Value), `"`)
	}
	return string(o.Type)
}

// ConsoleErrors returns the console errors and uncaught exceptions so far.
func (tab *Tab) ConsoleErrors() []string {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return append([]string(nil), tab.problems...)
}

// CheckConsole fails t for every console error or uncaught exception the
// tab has seen.
func (tab *Tab) CheckConsole(t testing.TB) {
	t.Helper()
	for _, p := range tab.ConsoleErrors() {
		t.Errorf("%s: %s", tab.Name, p)
	}
}

func (tab *Tab) do(timeout time.Duration, actions ...chromedp.Action[chromedp.Void]) error {
	ctx, cancel := context.WithTimeout(tab.ctx, timeout)
	defer cancel()
	return chromedp.Do(ctx, actions...)
}

// Navigate loads url and waits for the load event.
func (tab *Tab) Navigate(t testing.TB, url string) {
	t.Helper()
	if err := tab.do(30*time.Second, chromedp.Navigate(url)); err != nil {
		t.Fatalf("%s: navigate to %s: %v", tab.Name, url, err)
	}
}

// Reload reloads the page and waits for the load event.
func (tab *Tab) Reload(t testing.TB) {
	t.Helper()
	if err := tab.do(30*time.Second, chromedp.Reload()); err != nil {
		t.Fatalf("%s: reload: %v", tab.Name, err)
	}
}

// Click clicks the first element matching a CSS selector.
func (tab *Tab) Click(t testing.TB, selector string) {
	t.Helper()
	if err := tab.do(10*time.Second, chromedp.Click(chromedp.CSS(selector), chromedp.NodeVisible)); err != nil {
		t.Fatalf("%s: click %s: %v", tab.Name, selector, err)
	}
}

// Eval evaluates a JavaScript expression (awaiting a promise) and decodes
// its JSON value into T.
func Eval[T any](tab *Tab, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(tab.ctx, 10*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// MustEval is Eval failing t on error.
func MustEval[T any](t testing.TB, tab *Tab, expr string) T {
	t.Helper()
	v, err := Eval[T](tab, expr)
	if err != nil {
		t.Fatalf("%s: eval %s: %v", tab.Name, expr, err)
	}
	return v
}

// WaitFor polls a JavaScript expression until it is true, failing t (with
// what and the expression's last value) after timeout.
func (tab *Tab) WaitFor(t testing.TB, what string, timeout time.Duration, expr string) {
	t.Helper()
	if err := tab.Poll(timeout, expr); err != nil {
		t.Fatalf("%s: waiting for %s: %v", tab.Name, what, err)
	}
}

// Poll is WaitFor returning the error instead.
func (tab *Tab) Poll(timeout time.Duration, expr string) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(150 * time.Millisecond)
	defer tick.Stop()
	var last string
	for {
		v, err := Eval[[]byte](tab, "(async () => ("+expr+"))()")
		switch {
		case err != nil:
			last = err.Error()
		case string(v) == "true":
			return nil
		default:
			last = string(v)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("still not true after %s (last value: %s): %s", timeout, last, expr)
		}
		select {
		case <-tick.C:
		case <-tab.ctx.Done():
			return tab.ctx.Err()
		}
	}
}

// Screenshot captures the tab's viewport as PNG.
func (tab *Tab) Screenshot(t testing.TB) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab.ctx, 20*time.Second)
	defer cancel()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("%s: screenshot: %v", tab.Name, err)
	}
	return buf
}

// SetViewport emulates a viewport size (e.g. a phone's width).
func (tab *Tab) SetViewport(t testing.TB, width, height int64, mobile bool) {
	t.Helper()
	var opts []chromedp.EmulateViewportOption
	if mobile {
		opts = append(opts, chromedp.EmulateMobile)
	}
	if err := tab.do(10*time.Second, chromedp.EmulateViewport(width, height, opts...)); err != nil {
		t.Fatalf("%s: viewport: %v", tab.Name, err)
	}
}

// Close closes the tab (as a person closing it would: the page gets no
// chance to say goodbye beyond the browser's own unload). Safe to call twice.
func (tab *Tab) Close() {
	tab.mu.Lock()
	closed := tab.closed
	tab.closed = true
	tab.mu.Unlock()
	if !closed {
		tab.cancel()
	}
}

// Closed reports whether Close was called.
func (tab *Tab) Closed() bool {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return tab.closed
}
