package inspect_test

import (
	"bytes"
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/cmd/sfu/inspect"
	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/internal/webtest"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/signaling/client"
)

// publishSimulcast publishes a synthetic video track in three layers
// (q, h and f, about 100, 300 and 900 kbit/s).
func publishSimulcast(ctx context.Context, t *testing.T, c *client.Client, base uint32) string {
	t.Helper()
	specs := []struct {
		rid      string
		size     int
		interval time.Duration
	}{{"q", 250, 20 * time.Millisecond}, {"h", 750, 20 * time.Millisecond}, {"f", 1100, 10 * time.Millisecond}}
	synths := make([]*client.Synth, len(specs))
	locals := make([]webrtc.TrackLocal, len(specs))
	for i, s := range specs {
		synth, err := client.NewSynth("video", "cam", c.Self.ID, base+uint32(i), s.size, s.rid)
		if err != nil {
			t.Fatal(err)
		}
		synth.KeyframeEvery = int(time.Second / s.interval)
		synths[i], locals[i] = synth, synth.Track
	}
	id, tr, err := c.PublishSimulcast(ctx, locals...)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range specs {
		synths[i].UseTransceiver(tr)
		go synths[i].Run(ctx, s.interval)
	}
	return id
}

// receiveAll reads every track c is sent, until ctx ends.
func receiveAll(ctx context.Context, c *client.Client) {
	go func() {
		for {
			select {
			case tr := <-c.Tracks():
				st.Receive(tr)
			case <-ctx.Done():
				return
			}
		}
	}()
}

// TestDebugPageInChromium opens /debug in headless Chromium during a call
// on a virtual network (one participant publishing simulcast video and
// audio, the other, on a link losing 2% of packets, video and audio): the
// page shows both participants with their tracks and subscriptions, draws
// their graphs, links raw stats that load, follows a departure, and logs
// no console error. With UPDATE_SCREENSHOT=1 it saves docs/debug.png.
func TestDebugPageInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("browser tests are slow: skipped with -short")
	}
	webtest.RequireChromium(t)
	ctx := testutil.Context(t)
	vn := st.NewVNet(t)
	e := newEnv(t, inspect.Config{Open: true}, st.Options{SFU: sfu.Config{Net: vn.Host("10.0.0.1")}})
	vn.SetLoss("10.0.0.3", 0.02)

	ada := e.srv.Join(ctx, "standup", client.Options{Name: "Ada", API: vn.API(vn.Host("10.0.0.2"))})
	receiveAll(ctx, ada)
	st.Publish(ctx, t, ada, "audio")
	publishSimulcast(ctx, t, ada, 900)
	grace := e.srv.Join(ctx, "standup", client.Options{Name: "Grace", API: vn.API(vn.Host("10.0.0.3"))})
	receiveAll(ctx, grace)
	st.Publish(ctx, t, grace, "audio")
	st.Publish(ctx, t, grace, "video")

	shot := os.Getenv("UPDATE_SCREENSHOT") == "1"
	b := webtest.NewBrowser(t, webtest.Options{Width: 1440, Height: 1000})
	tab := b.NewTab("debug")
	tab.Navigate(t, e.base+"/debug")

	tab.WaitFor(t, "both participants", 10*time.Second, fmt.Sprintf(
		`[...document.querySelectorAll('article.participant')].map((a) => a.dataset.participant).sort().join() === %q`,
		sortedJoin(ada.Self.ID, grace.Self.ID)))
	tab.WaitFor(t, "names shown", time.Second, `[...document.querySelectorAll('article.participant h3')].map((h) => h.firstChild.textContent).sort().join() === 'Ada,Grace'`)
	// Each publishes two tracks and receives the other's two.
	tab.WaitFor(t, "every track and subscription", 10*time.Second,
		`[...document.querySelectorAll('article.participant')].every((a) => a.querySelectorAll('.card').length === 4)`)
	tab.WaitFor(t, "Ada's simulcast layers", 10*time.Second,
		`document.querySelectorAll('article.participant .layers .layer[data-active="true"]').length === 3`)
	tab.WaitFor(t, "graphs drawn", 15*time.Second,
		`[...document.querySelectorAll('svg.graph')].length === 8 && [...document.querySelectorAll('svg.graph')].every((g) => Number(g.dataset.points) >= 3 && g.querySelector('polyline.rate'))`)
	tab.WaitFor(t, "connected states", time.Second,
		`[...document.querySelectorAll('article.participant')].every((a) => a.querySelector('.badge[data-state="connected"]'))`)
	tab.WaitFor(t, "the refresh status", time.Second, `document.getElementById('status').dataset.state === 'ok'`)

	// The raw stats link loads pion's GetStats.
	types := webtest.MustEval[[]string](t, tab, `(async () => {
		const link = document.querySelector('article.participant a.raw');
		const stats = await (await fetch(link.href)).json();
		return [...new Set(Object.values(stats).map((s) => s.type))].sort();
	})()`)
	if !slices.Contains(types, "candidate-pair") || !slices.Contains(types, "peer-connection") {
		t.Errorf("raw stats types %q", types)
	}

	if shot {
		time.Sleep(30 * time.Second) // graphs with some history
	}
	img := tab.Screenshot(t)
	if p, err := png.Decode(bytes.NewReader(img)); err != nil || p.Bounds().Dx() < 1000 {
		t.Fatalf("screenshot: %v", err)
	}
	if shot {
		path := filepath.Join("..", "..", "..", "docs", "debug.png")
		if err := os.WriteFile(path, img, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
	}

	// A departure shows at the next refresh.
	if err := grace.Leave(); err != nil {
		t.Fatal(err)
	}
	tab.WaitFor(t, "Grace gone", 5*time.Second, fmt.Sprintf(
		`[...document.querySelectorAll('article.participant')].map((a) => a.dataset.participant).join() === %q`, ada.Self.ID))
	tab.CheckConsole(t)
}

func sortedJoin(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + "," + b
}
