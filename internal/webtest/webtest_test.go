package webtest

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// loopbackPage sends its camera and microphone from one RTCPeerConnection
// to another in the same page, and shows what the second receives.
const loopbackPage = `<!doctype html>
<meta charset="utf-8">
<title>loopback</title>
<video id="v" autoplay muted playsinline></video>
<button id="b" onclick="window.clicks = (window.clicks || 0) + 1">click</button>
<script>
window.ticks = 0;
setInterval(() => window.ticks++, 100);
window.pcs = null;
(async () => {
  const stream = await navigator.mediaDevices.getUserMedia({video: true, audio: true});
  const a = new RTCPeerConnection(), b = new RTCPeerConnection();
  a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
  b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
  b.ontrack = (e) => {
    const v = document.getElementById('v');
    if (v.srcObject !== e.streams[0]) v.srcObject = e.streams[0];
  };
  for (const t of stream.getTracks()) a.addTrack(t, stream);
  await a.setLocalDescription();
  await b.setRemoteDescription(a.localDescription);
  await b.setLocalDescription();
  await a.setRemoteDescription(b.localDescription);
  window.pcs = {a, b};
})().catch((e) => console.error('loopback: ' + e));
// inbound lists what the receiving side decodes.
window.inbound = async () => {
  const out = [];
  if (window.pcs) (await pcs.b.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp') out.push({kind: s.kind, frames: s.framesDecoded || 0,
      packets: s.packetsReceived || 0, width: s.frameWidth || 0, track: s.trackIdentifier || ''});
  });
  return out;
};
</script>
`

// inboundStat is an element of the page's inbound().
type inboundStat struct {
	Kind    string `json:"kind"`
	Frames  int    `json:"frames"`
	Packets int    `json:"packets"`
	Width   int    `json:"width"`
	Track   string `json:"track"`
}

// videoFrames is a JavaScript promise of the frames the page has decoded.
const videoFrames = `inbound().then((l) => l.filter((s) => s.kind === 'video').reduce((n, s) => n + s.frames, 0))`

// serveLoopback serves loopbackPage on loopback until the test ends.
func serveLoopback(t *testing.T) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(loopbackPage))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// openLoopback opens the page in a new tab and waits until it decodes the
// video it sends itself.
func openLoopback(t *testing.T, b *Browser, name, url string) *Tab {
	t.Helper()
	tab := b.NewTab(name)
	tab.Navigate(t, url)
	tab.WaitFor(t, "the remote video decoding", 15*time.Second,
		`(await `+videoFrames+`) > 0 && document.getElementById('v').videoWidth > 0`)
	return tab
}

// checkTab runs every Tab method but SetViewport against the loopback page.
func checkTab(t *testing.T, b *Browser) {
	url := serveLoopback(t)
	tab := openLoopback(t, b, "A", url)

	t.Run("typed values", func(t *testing.T) {
		if n := MustEval[int](t, tab, "1 + 2"); n != 3 {
			t.Errorf("1 + 2 = %d", n)
		}
		if f := MustEval[float64](t, tab, "Promise.resolve(0.5)"); f != 0.5 {
			t.Errorf("a promise of 0.5 gave %v", f)
		}
		if s := MustEval[string](t, tab, "document.title"); s != "loopback" {
			t.Errorf("title %q", s)
		}
		if s := MustEval[[]string](t, tab, "['a', 'b']"); !slices.Equal(s, []string{"a", "b"}) {
			t.Errorf("array %q", s)
		}
		if raw := MustEval[[]byte](t, tab, "({a: [1, true]})"); string(raw) != `{"a":[1,true]}` {
			t.Errorf("JSON %s", raw)
		}
		if p := MustEval[*int](t, tab, "null"); p != nil {
			t.Errorf("null gave %v", *p)
		}
		if _, err := Eval[int](tab, "null"); !errors.Is(err, chromedp.ErrJSNull) {
			t.Errorf("null for an int: %v", err)
		}
		if _, err := Eval[int](tab, "undefined"); !errors.Is(err, chromedp.ErrJSUndefined) {
			t.Errorf("undefined for an int: %v", err)
		}
		if raw := MustEval[[]byte](t, tab, "undefined"); raw != nil {
			t.Errorf("undefined gave %q", raw)
		}
		stats := MustEval[[]inboundStat](t, tab, "inbound()")
		kinds := map[string]inboundStat{}
		for _, s := range stats {
			kinds[s.Kind] = s
		}
		if v := kinds["video"]; v.Frames == 0 || v.Width == 0 {
			t.Errorf("inbound video %+v", v)
		}
		if a := kinds["audio"]; a.Packets == 0 {
			t.Errorf("inbound audio %+v", a)
		}
		t.Logf("%s inbound-rtp: %+v", b.Engine(), stats)
	})

	t.Run("exceptions", func(t *testing.T) {
		for expr, want := range map[string]string{
			`(() => { throw new Error('boom'); })()`: "boom",
			`Promise.reject(new Error('nope'))`:      "nope",
			`noSuchVariable + 1`:                     "noSuchVariable",
		} {
			_, err := Eval[int](tab, expr)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: error %v, want one with %q", expr, err, want)
			} else {
				t.Logf("%s: %v", expr, err)
			}
		}
	})

	t.Run("console errors", func(t *testing.T) {
		MustEval[bool](t, tab, `(console.error('seen by the test', 42), true)`)
		MustEval[bool](t, tab, `(setTimeout(() => { throw new Error('thrown later'); }), true)`)
		MustEval[bool](t, tab, `(console.log('not an error'), true)`)
		MustEval[bool](t, tab, `(Promise.reject(new Error('not handled')), true)`)
		waitConsole(t, tab, "seen by the test 42", "thrown later", "not handled")
		for _, p := range tab.ConsoleErrors() {
			switch {
			case strings.Contains(p, "not an error"):
				t.Errorf("console.log recorded: %q", p)
			case strings.Contains(p, "seen by the test") && p != "console.error: seen by the test 42":
				t.Errorf("console.error recorded as %q", p)
			case (strings.Contains(p, "thrown later") || strings.Contains(p, "not handled")) && !strings.HasPrefix(p, "uncaught: "):
				t.Errorf("exception recorded as %q", p)
			}
		}
		t.Logf("%s console errors: %q", b.Engine(), tab.ConsoleErrors())
	})

	t.Run("click, screenshot, reload", func(t *testing.T) {
		tab.Click(t, "#b")
		tab.Click(t, "#b")
		if n := MustEval[int](t, tab, "window.clicks"); n != 2 {
			t.Errorf("%d clicks", n)
		}
		shot := tab.Screenshot(t)
		img, err := png.DecodeConfig(bytes.NewReader(shot))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		t.Logf("%s screenshot %dx%d", b.Engine(), img.Width, img.Height)
		if img.Width != 1024 {
			t.Errorf("screenshot %dx%d, want 1024 wide", img.Width, img.Height)
		}
		tab.Reload(t)
		if n := MustEval[int](t, tab, "window.clicks || 0"); n != 0 {
			t.Errorf("%d clicks after reloading", n)
		}
	})
}

// waitConsole waits until the tab's console errors include each text.
func waitConsole(t *testing.T, tab *Tab, texts ...string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := tab.ConsoleErrors()
		missing := slices.DeleteFunc(slices.Clone(texts), func(text string) bool {
			return slices.ContainsFunc(got, func(e string) bool { return strings.Contains(e, text) })
		})
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("console errors %q lack %q", got, missing)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// checkBackground opens two tabs and checks that the first, now behind,
// still decodes video and runs its timers.
func checkBackground(t *testing.T, b *Browser) {
	url := serveLoopback(t)
	one := openLoopback(t, b, "one", url)
	two := openLoopback(t, b, "two", url)
	frames := MustEval[int](t, one, videoFrames)
	ticks := MustEval[int](t, one, "window.ticks")
	start := time.Now()
	one.WaitFor(t, "frames rising in the first tab", 5*time.Second, fmt.Sprintf(`(await %s) >= %d`, videoFrames, frames+30))
	one.WaitFor(t, "timers running in the first tab", 5*time.Second, fmt.Sprintf(`window.ticks >= %d`, ticks+10))
	t.Logf("%s: first tab %s, second %s; 30 frames and 10 ticks in %s",
		b.Engine(), MustEval[string](t, one, "document.visibilityState"), MustEval[string](t, two, "document.visibilityState"),
		time.Since(start).Round(time.Millisecond))
	two.WaitFor(t, "frames rising in the second tab", 5*time.Second, fmt.Sprintf(`(await %s) >= %d`, videoFrames, MustEval[int](t, two, videoFrames)+30))
	for _, tab := range []*Tab{one, two} {
		tab.CheckConsole(t)
	}
}

func TestChromium(t *testing.T) {
	b := NewBrowser(t, Options{Width: 1024, Height: 640})
	checkTab(t, b)
}

func TestChromiumBackground(t *testing.T) {
	b := NewBrowser(t, Options{Width: 1024, Height: 640})
	checkBackground(t, b)
}
