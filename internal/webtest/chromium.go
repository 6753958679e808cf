package webtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

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

// Flags returns the command-line flags the browser runs with: headless, no
// sandbox or GPU, fake media devices granted without a prompt, autoplay
// allowed, no background network or throttling.
func Flags(opts Options) []chromedp.ExecAllocatorOption {
	w, h := windowSize(opts)
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
// test ends. Options.Prefs do not apply to it.
func NewBrowser(t testing.TB, opts Options) *Browser {
	t.Helper()
	path := RequireChromium(t)
	allocOpts := append(Flags(opts),
		chromedp.ExecPath(path),
		chromedp.UserDataDir(t.TempDir()),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	b := &Browser{t: t, engine: Chromium, ctx: ctx, cancel: func() { cancel(); cancelAlloc() }}
	t.Cleanup(b.cancel)
	// The first Do starts the browser, for as long as ctx lives.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", path, err)
	}
	return b
}

// openChromiumTab opens tab in a new window and browser context.
func openChromiumTab(parent context.Context, tab *Tab) error {
	ctx, cancel := chromedp.NewContext(parent,
		chromedp.WithNewBrowserContext(),
		chromedp.WithListener(tab.onChromiumEvent),
	)
	tab.ctx, tab.be = ctx, chromiumTab{cancel: cancel}
	// The first Do opens the tab for as long as ctx lives: it must not get
	// a shorter-lived context.
	return chromedp.Do(ctx)
}

// chromiumTab is a Tab's backend in Chromium, over the DevTools protocol.
// Its methods get contexts derived from the tab's chromedp context.
type chromiumTab struct {
	cancel context.CancelFunc // closes the tab
}

// byValue asks for the result as JSON rather than a reference to it.
func byValue(p *runtime.EvaluateParams) { p.ReturnByValue = new(true) }

func (chromiumTab) eval(ctx context.Context, expr string) ([]byte, error) {
	v, err := chromedp.Run(ctx, chromedp.Evaluate[*runtime.RemoteObject](expr, chromedp.EvalAwaitPromise, byValue))
	switch {
	case err != nil:
		return nil, err
	case v.Type == runtime.RemoteObjectTypeUndefined:
		return nil, nil
	case len(v.Value) == 0: // a value without JSON (NaN, a BigInt): as chromedp, null
		return []byte("null"), nil
	}
	return v.Value, nil
}

func (chromiumTab) navigate(ctx context.Context, url string) error {
	return chromedp.Do(ctx, chromedp.Navigate(url))
}

func (chromiumTab) reload(ctx context.Context) error {
	return chromedp.Do(ctx, chromedp.Reload())
}

func (chromiumTab) click(ctx context.Context, selector string) error {
	return chromedp.Do(ctx, chromedp.Click(chromedp.CSS(selector), chromedp.NodeVisible))
}

func (chromiumTab) screenshot(ctx context.Context) ([]byte, error) {
	return chromedp.Run(ctx, chromedp.CaptureScreenshot())
}

func (chromiumTab) setViewport(ctx context.Context, width, height int64, mobile bool) error {
	var opts []chromedp.EmulateViewportOption
	if mobile {
		opts = append(opts, chromedp.EmulateMobile)
	}
	return chromedp.Do(ctx, chromedp.EmulateViewport(width, height, opts...))
}

func (c chromiumTab) close() { c.cancel() }

// onChromiumEvent records what a person would see as an error in the
// console. It runs on the tab's event loop: it must return quickly.
func (tab *Tab) onChromiumEvent(ev any) {
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
	tab.record(msg)
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
