package webtest

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestFirefox(t *testing.T) {
	RequireFirefox(t)
	t.Run("browser", func(t *testing.T) {
		b := NewFirefox(t, Options{Width: 1024, Height: 640})
		checkTab(t, b)
		t.Run("no mobile viewport", func(t *testing.T) {
			tab := b.NewTab("B")
			tab.SetViewport(t, 390, 844, false)
			if w := MustEval[int](t, tab, "window.innerWidth"); w != 390 {
				t.Errorf("innerWidth %d after SetViewport(390, 844)", w)
			}
			if err := tab.be.setViewport(t.Context(), 390, 844, true); err == nil {
				t.Error("mobile emulation in Firefox did not fail")
			}
			tab.Navigate(t, "data:text/html,<p id=shown>shown</p><p id=hidden hidden>hidden</p>")
			for sel, want := range map[string]string{"#absent": "no element matches #absent", "#hidden": "#hidden is not visible"} {
				err := tab.op(time.Second, func(ctx context.Context) error { return tab.be.click(ctx, sel) })
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("click %s: %v, want an error with %q", sel, err, want)
				}
			}
			tab.Click(t, "#shown")
			tab.Close()
			if _, err := Eval[int](tab, "1"); err == nil {
				t.Error("Eval after Close did not fail")
			}
		})
	})
	checkStopped(t)
}

func TestFirefoxBackground(t *testing.T) {
	b := NewFirefox(t, Options{Width: 1024, Height: 640})
	checkBackground(t, b)
}

// TestFirefoxHiddenTab checks that a page hidden behind another tab of its
// window (document.visibilityState "hidden", unlike NewTab's pages) still
// decodes video and runs its timers at full rate.
func TestFirefoxHiddenTab(t *testing.T) {
	b := NewFirefox(t, Options{Width: 1024, Height: 640})
	one := openLoopback(t, b, "one", serveLoopback(t))
	ft := one.be.(*firefoxTab)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	err := b.ff.conn.call(ctx, "browsingContext.create", map[string]any{
		"type": "tab", "referenceContext": ft.context, "userContext": ft.userContext}, nil)
	if err != nil {
		t.Fatal(err)
	}
	one.WaitFor(t, "the page hidden", 5*time.Second, `document.visibilityState === 'hidden'`)
	frames := MustEval[int](t, one, videoFrames)
	ticks := MustEval[int](t, one, "window.ticks")
	start := time.Now()
	one.WaitFor(t, "frames rising in the hidden page", 5*time.Second, fmt.Sprintf(`(await %s) >= %d`, videoFrames, frames+30))
	// 100ms ticks: 20 within 5s even if the page starts late; 1s ticks
	// (Firefox's default for background pages) would be 5.
	one.WaitFor(t, "timers running in the hidden page", 5*time.Second, fmt.Sprintf(`window.ticks >= %d`, ticks+20))
	t.Logf("hidden page: 30 frames and 20 ticks in %s", time.Since(start).Round(time.Millisecond))
	one.CheckConsole(t)
}

// checkStopped fails t if a goroutine of a Firefox browser is left: its
// process waiter or its connection's reader.
func checkStopped(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		var left []string
		for _, g := range strings.Split(string(buf), "\n\n") {
			if strings.Contains(g, "webtest.(*bidiConn)") || strings.Contains(g, "webtest.NewFirefox") || strings.Contains(g, "os/exec.") {
				left = append(left, g)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("goroutines left after the browser stopped:\n%s", strings.Join(left, "\n\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
