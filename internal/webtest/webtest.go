// Package webtest drives real browsers for end-to-end tests of the web
// client: Chromium over the DevTools protocol (chromedp) and Firefox over
// WebDriver BiDi (bidi.go, a small client of its own). It launches them
// headless with fake camera and microphone, opens isolated tabs, records
// their console errors and uncaught exceptions, and waits on JavaScript
// conditions; a [Tab] works the same in both. page.go reads what the
// conference page shows (tiles, media, speakers); [Proxy] breaks a page's
// connections to the server the way a network failure does; tls.go serves
// the page over https as on a LAN.
//
// A test calls [RequireChromium] (directly or through [NewBrowser]) or
// [RequireFirefox] (through [NewFirefox]): without the browser the test is
// skipped, except under CI=true where it fails.
package webtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Options configure a browser.
type Options struct {
	// IgnoreCertErrors accepts any TLS certificate (self-signed ones).
	IgnoreCertErrors bool
	// Width and Height size each window (each tab's viewport in Firefox);
	// 1280x720 when zero.
	Width, Height int
	// Flags are extra command-line flags (name without dashes -> value).
	Flags map[string]any
	// Prefs are Firefox preferences (name -> bool, number or string) added
	// to or overriding [FirefoxPrefs]'s. Chromium has none.
	Prefs map[string]any
}

func windowSize(opts Options) (w, h int) {
	if opts.Width == 0 || opts.Height == 0 {
		return 1280, 720
	}
	return opts.Width, opts.Height
}

// Engine names a browser.
type Engine string

// The browsers a [Browser] can be.
const (
	Chromium Engine = "chromium"
	Firefox  Engine = "firefox"
)

// Browser is one browser process: Chromium ([NewBrowser]) or Firefox
// ([NewFirefox]).
type Browser struct {
	t      testing.TB
	engine Engine
	ctx    context.Context // Chromium: its first tab, parent of every Tab; Firefox: ends when it stops
	cancel context.CancelFunc
	ff     *firefox // Firefox's process and BiDi session; nil in Chromium
}

// Engine tells which browser b is.
func (b *Browser) Engine() Engine { return b.engine }

// Tab is one page in a browser context of its own (separate storage, as
// a different person's browser would be; a user context in Firefox). Its
// methods report failures to the test they are given, so that a subtest
// fails itself.
type Tab struct {
	Name   string
	engine Engine
	ctx    context.Context // ends when the tab closes; parent of every operation on it
	be     backend         // nil if the tab could not be opened

	mu       sync.Mutex
	problems []string // console errors and uncaught exceptions, guarded by mu
	closed   bool     // guarded by mu
}

// backend is what a browser does for a Tab. Every method gets a context
// derived from the tab's, with a timeout.
type backend interface {
	// eval evaluates a JavaScript expression, awaiting a promise, and
	// returns its value as JSON: nil when undefined, null when it has no
	// JSON form. An exception is an error.
	eval(ctx context.Context, expr string) ([]byte, error)
	// navigate and reload wait for the load event.
	navigate(ctx context.Context, url string) error
	reload(ctx context.Context) error
	// click clicks the first element matching a CSS selector once it is
	// visible.
	click(ctx context.Context, selector string) error
	// screenshot captures the viewport as PNG.
	screenshot(ctx context.Context) ([]byte, error)
	setViewport(ctx context.Context, width, height int64, mobile bool) error
	// close closes the tab and ends its context.
	close()
}

// NewTab opens an empty tab in a new window and browser context. Name
// labels its messages.
func (b *Browser) NewTab(name string) *Tab {
	b.t.Helper()
	tab := &Tab{Name: name, engine: b.engine, ctx: b.ctx}
	var err error
	if b.ff != nil {
		w, h := windowSize(b.ff.opts)
		err = b.ff.openTab(b.ctx, tab, w, h)
	} else {
		err = openChromiumTab(b.ctx, tab)
	}
	b.t.Cleanup(tab.Close)
	if err != nil {
		b.t.Fatalf("%s: open tab: %v", name, err)
	}
	return tab
}

// Engine tells which browser the tab is in.
func (tab *Tab) Engine() Engine { return tab.engine }

// record notes a console error or uncaught exception.
func (tab *Tab) record(msg string) {
	tab.mu.Lock()
	tab.problems = append(tab.problems, msg)
	tab.mu.Unlock()
}

// ConsoleErrors returns the console errors and uncaught exceptions so far
// ("console.error: ...", "uncaught: ..."). Chromium adds the errors of its
// log (a failed request, "network error: ..."); Firefox's WebDriver BiDi
// reports only the console and JavaScript errors.
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

// op runs f with a context that ends after timeout or when the tab closes.
func (tab *Tab) op(timeout time.Duration, f func(ctx context.Context) error) error {
	if tab.be == nil {
		return fmt.Errorf("tab %s never opened", tab.Name)
	}
	ctx, cancel := context.WithTimeout(tab.ctx, timeout)
	defer cancel()
	return f(ctx)
}

// Navigate loads url and waits for the load event.
func (tab *Tab) Navigate(t testing.TB, url string) {
	t.Helper()
	err := tab.op(30*time.Second, func(ctx context.Context) error { return tab.be.navigate(ctx, url) })
	if err != nil {
		t.Fatalf("%s: navigate to %s: %v", tab.Name, url, err)
	}
}

// Reload reloads the page and waits for the load event.
func (tab *Tab) Reload(t testing.TB) {
	t.Helper()
	if err := tab.op(30*time.Second, func(ctx context.Context) error { return tab.be.reload(ctx) }); err != nil {
		t.Fatalf("%s: reload: %v", tab.Name, err)
	}
}

// Click clicks the first element matching a CSS selector, waiting for it to
// be visible. In Firefox it is the element's click() run as a user gesture,
// not a mouse event at its position.
func (tab *Tab) Click(t testing.TB, selector string) {
	t.Helper()
	err := tab.op(10*time.Second, func(ctx context.Context) error { return tab.be.click(ctx, selector) })
	if err != nil {
		t.Fatalf("%s: click %s: %v", tab.Name, selector, err)
	}
}

// Eval evaluates a JavaScript expression (awaiting a promise) and decodes
// its JSON value into T. T []byte gets the JSON itself (nil for
// undefined). When the value is undefined or null and T cannot be nil, the
// error is chromedp.ErrJSUndefined or chromedp.ErrJSNull, in either
// browser; an exception thrown (or a promise rejected) is an error with its
// message. In Firefox the value is JSON.stringify's (toJSON applies), and
// expr must be an expression, not statements.
func Eval[T any](tab *Tab, expr string) (T, error) {
	var raw []byte
	err := tab.op(10*time.Second, func(ctx context.Context) error {
		var err error
		raw, err = tab.be.eval(ctx, expr)
		return err
	})
	if err != nil {
		var zero T
		return zero, err
	}
	return decodeJS[T](raw)
}

// decodeJS decodes a JSON value of eval into T, as chromedp.Evaluate does.
func decodeJS[T any](raw []byte) (T, error) {
	var res T
	switch p := any(&res).(type) {
	case *chromedp.Void:
		return res, nil
	case *[]byte:
		*p = raw
		return res, nil
	}
	if raw == nil || string(bytes.TrimSpace(raw)) == "null" {
		switch reflect.TypeFor[T]().Kind() {
		case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Chan, reflect.Func, reflect.Interface:
			return res, nil
		}
		if raw == nil {
			return res, chromedp.ErrJSUndefined
		}
		return res, chromedp.ErrJSNull
	}
	err := json.Unmarshal(raw, &res)
	return res, err
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
	var buf []byte
	err := tab.op(20*time.Second, func(ctx context.Context) error {
		var err error
		buf, err = tab.be.screenshot(ctx)
		return err
	})
	if err != nil {
		t.Fatalf("%s: screenshot: %v", tab.Name, err)
	}
	return buf
}

// SetViewport emulates a viewport size (e.g. a phone's width). Firefox
// sets the size but has no mobile emulation: mobile fails t there.
func (tab *Tab) SetViewport(t testing.TB, width, height int64, mobile bool) {
	t.Helper()
	err := tab.op(10*time.Second, func(ctx context.Context) error { return tab.be.setViewport(ctx, width, height, mobile) })
	if err != nil {
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
	if !closed && tab.be != nil {
		tab.be.close()
	}
}

// Closed reports whether Close was called.
func (tab *Tab) Closed() bool {
	tab.mu.Lock()
	defer tab.mu.Unlock()
	return tab.closed
}
