package webtest

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// firefoxTab is a Tab's backend in Firefox: one top-level browsing context
// (a window of its own, so that it is never a hidden background tab) in a
// user context of its own, driven over the browser's BiDi session.
type firefoxTab struct {
	f           *firefox
	context     string             // the browsing context's id
	userContext string             // its user context's id
	cancel      context.CancelFunc // ends the tab's context
}

// newTabType is the kind of browsing context a tab opens: "window" keeps
// each page visible in front of its own window, where a second "tab" would
// hide the first (document.visibilityState "hidden").
const newTabType = "window"

// openTab opens tab in a new window of a new user context (storage,
// cookies and permissions apart), its viewport w by h. On error, tab may
// be half open: its Close cleans up.
func (f *firefox) openTab(parent context.Context, tab *Tab, w, h int) error {
	ctx, cancel := context.WithCancel(parent)
	ft := &firefoxTab{f: f, cancel: cancel}
	tab.ctx, tab.be = ctx, ft
	op, cancelOp := context.WithTimeout(ctx, 20*time.Second)
	defer cancelOp()
	var uc struct {
		UserContext string `json:"userContext"`
	}
	if err := f.conn.call(op, "browser.createUserContext", nil, &uc); err != nil {
		return err
	}
	ft.userContext = uc.UserContext
	var bc struct {
		Context string `json:"context"`
	}
	err := f.conn.call(op, "browsingContext.create", map[string]any{"type": newTabType, "userContext": uc.UserContext}, &bc)
	if err != nil {
		return err
	}
	ft.context = bc.Context
	f.mu.Lock()
	f.tabs[bc.Context] = tab
	f.mu.Unlock()
	return ft.setViewport(op, int64(w), int64(h), false)
}

// evalJS runs an expression in the page and gives back undefined, or the
// string of JSON of its value.
const evalJS = "(async () => { const v = await (\n%s\n); return v === undefined ? undefined : JSON.stringify(v); })()"

func (ft *firefoxTab) eval(ctx context.Context, expr string) ([]byte, error) {
	return ft.evaluate(ctx, fmt.Sprintf(evalJS, expr), false)
}

// evaluate runs script (awaiting a promise) as a user gesture or not,
// and returns its value if a string, nil if undefined.
func (ft *firefoxTab) evaluate(ctx context.Context, script string, gesture bool) ([]byte, error) {
	var r struct {
		Type   string `json:"type"` // "success" or "exception"
		Result struct {
			Type  string          `json:"type"`
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails struct {
			Text string `json:"text"`
		} `json:"exceptionDetails"`
	}
	err := ft.f.conn.call(ctx, "script.evaluate", map[string]any{
		"expression":      script,
		"target":          map[string]any{"context": ft.context},
		"awaitPromise":    true,
		"resultOwnership": "none",
		"userActivation":  gesture,
	}, &r)
	if err != nil {
		return nil, err
	}
	if r.Type == "exception" {
		// Its location would be in the wrapper of evalJS, given as the
		// page's URL: the text alone says more.
		return nil, &jsException{Text: r.ExceptionDetails.Text}
	}
	switch r.Result.Type {
	case "undefined":
		return nil, nil
	case "string":
		var s string
		if err := json.Unmarshal(r.Result.Value, &s); err != nil {
			return nil, fmt.Errorf("script.evaluate: %w", err)
		}
		return []byte(s), nil
	}
	return nil, fmt.Errorf("script.evaluate: a %s, not a string of JSON", r.Result.Type)
}

// jsException is a JavaScript exception thrown (or a promise rejected) by
// an expression evaluated in Firefox.
type jsException struct {
	Text string // e.g. "Error: boom"
}

func (e *jsException) Error() string { return "exception: " + e.Text }

func (ft *firefoxTab) navigate(ctx context.Context, url string) error {
	return ft.f.conn.call(ctx, "browsingContext.navigate",
		map[string]any{"context": ft.context, "url": url, "wait": "complete"}, nil)
}

func (ft *firefoxTab) reload(ctx context.Context) error {
	return ft.f.conn.call(ctx, "browsingContext.reload",
		map[string]any{"context": ft.context, "wait": "complete"}, nil)
}

// clickJS waits until an element matches the selector %s and is visible,
// up to %d ms, then clicks it.
const clickJS = `(async (sel, ms) => {
  const until = performance.now() + ms;
  for (;;) {
    const el = document.querySelector(sel);
    if (el && el.checkVisibility({visibilityProperty: true})) { el.click(); return; }
    if (performance.now() > until) throw new Error(el ? sel + ' is not visible' : 'no element matches ' + sel);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
})(%s, %d)`

func (ft *firefoxTab) click(ctx context.Context, selector string) error {
	ms := int64(9000)
	if d, ok := ctx.Deadline(); ok {
		ms = max(time.Until(d).Milliseconds()-500, 0)
	}
	sel, err := json.Marshal(selector)
	if err != nil {
		return err
	}
	_, err = ft.evaluate(ctx, fmt.Sprintf(clickJS, sel, ms), true)
	return err
}

func (ft *firefoxTab) screenshot(ctx context.Context) ([]byte, error) {
	var r struct {
		Data string `json:"data"`
	}
	if err := ft.f.conn.call(ctx, "browsingContext.captureScreenshot", map[string]any{"context": ft.context}, &r); err != nil {
		return nil, err
	}
	png, err := base64.StdEncoding.DecodeString(r.Data)
	if err != nil {
		return nil, fmt.Errorf("browsingContext.captureScreenshot: %w", err)
	}
	return png, nil
}

// errNoMobile is SetViewport's error when asked for a phone in Firefox.
var errNoMobile = errors.New("mobile emulation is Chromium-only: Firefox's WebDriver BiDi sets only the viewport's size")

func (ft *firefoxTab) setViewport(ctx context.Context, width, height int64, mobile bool) error {
	if mobile {
		return errNoMobile
	}
	return ft.f.conn.call(ctx, "browsingContext.setViewport", map[string]any{
		"context":  ft.context,
		"viewport": map[string]any{"width": width, "height": height},
	}, nil)
}

// close closes the page and removes its user context, then ends the tab's
// context. The browser may be gone already: errors do not matter.
func (ft *firefoxTab) close() {
	defer ft.cancel()
	f := ft.f
	f.mu.Lock()
	delete(f.tabs, ft.context)
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ft.context != "" {
		_ = f.conn.call(ctx, "browsingContext.close", map[string]any{"context": ft.context}, nil)
	}
	if ft.userContext != "" {
		_ = f.conn.call(ctx, "browser.removeUserContext", map[string]any{"userContext": ft.userContext}, nil)
	}
}
