package main

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tessera-rtc/tessera/internal/webtest"
)

// person is one participant of a mixed-browser room: the browser that
// runs their page and how the page is opened.
type person struct {
	name    string
	engine  webtest.Engine
	params  url.Values // extra page parameters (simulcast=0, ...)
	joinLag bool       // joins after everyone without it is in the call
	// slowOffer makes the browser take 2.5 s over its first offer, as on a
	// loaded machine: the server's offer to a participant that negotiated
	// nothing comes first, and the page publishes over it.
	slowOffer bool
	shares    bool // shares a screen once everyone is in the call
	// cannot names the people whose video this one cannot decode: their
	// tile says why, and their audio plays.
	cannot []string
	// receives, when set, is the only video codec this one may be sent.
	receives string
}

// browsers starts each browser the people need, once for a whole test:
// each room opens tabs of its own (a browser context each) and closes them
// when it ends.
type browsers struct {
	t  *testing.T // the test that owns the browsers
	by map[webtest.Engine]*webtest.Browser
}

func newBrowsers(t *testing.T) *browsers {
	return &browsers{t: t, by: map[webtest.Engine]*webtest.Browser{}}
}

// tab opens p's tab, closed when the room's test t ends.
func (b *browsers) tab(t *testing.T, p person) *webtest.Tab {
	br := b.by[p.engine]
	if br == nil {
		switch p.engine {
		case webtest.Firefox:
			br = webtest.NewFirefox(b.t, webtest.Options{Width: 1024, Height: 640})
		default:
			br = webtest.NewBrowser(b.t, webtest.Options{Width: 1024, Height: 640})
		}
		b.by[p.engine] = br
	}
	tab := br.NewTab(p.name)
	t.Cleanup(tab.Close)
	return tab
}

// runRoom opens the page for every person (the late ones once the others
// see each other) and checks that each tab decodes every other person's
// video at a real size and receives their audio, with no page error.
func runRoom(t *testing.T, b *browsers, people []person) {
	t.Helper()
	runRoomOn(t, b, people, "http://"+startServer(t, loopbackConfig()))
}

// runRoomOn is runRoom on servers of one's own: person i opens the page
// of bases[i % len(bases)] (in a cluster, each a node).
func runRoomOn(t *testing.T, b *browsers, people []person, bases ...string) {
	t.Helper()
	room := fmt.Sprintf("mixed-%d", time.Now().UnixNano())
	tabs := make([]*webtest.Tab, len(people))
	for i, p := range people {
		tabs[i] = b.tab(t, p)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, tab := range tabs {
				media, _ := webtest.Eval[string](tab, pageMediaJS)
				t.Logf("%s's media: %s", people[i].name, media)
				t.Logf("%s (%s):%s", people[i].name, people[i].engine, tab.Diagnose())
			}
		}
	})
	open := func(i int) {
		base := bases[i%len(bases)]
		u := webtest.PageURL(base, room, people[i].name)
		if q := people[i].params.Encode(); q != "" {
			u += "&" + q
		}
		if !people[i].slowOffer {
			tabs[i].Navigate(t, u)
			return
		}
		// Without a room in its address the page waits on its join form,
		// which the script fills in once the first offer is slowed.
		tabs[i].Navigate(t, base+"/?"+people[i].params.Encode())
		webtest.MustEval[bool](t, tabs[i], fmt.Sprintf(slowOfferJS, room, people[i].name))
	}
	others := func(i int, lateToo bool) (see, cannot []string) {
		for j, p := range people {
			if j == i || (!lateToo && p.joinLag) {
				continue
			}
			if slices.Contains(people[i].cannot, p.name) {
				cannot = append(cannot, p.name)
			} else {
				see = append(see, p.name)
			}
		}
		return see, cannot
	}
	wait := func(lateToo bool) {
		for i, p := range people {
			if p.joinLag && !lateToo {
				continue
			}
			see, cannot := others(i, lateToo)
			tabs[i].WaitTiles(t, 20*time.Second, append(see, cannot...)...)
		}
		for i, p := range people {
			if p.joinLag && !lateToo {
				continue
			}
			see, cannot := others(i, lateToo)
			tabs[i].WaitMediaFlowing(t, 30*time.Second, see...)
			for _, name := range see {
				if v := tabs[i].RemoteVideo(t, name); v.Width < 160 {
					t.Errorf("%s decodes %s's video at %d pixels wide", p.name, name, v.Width)
				}
			}
			for _, name := range cannot {
				tabs[i].WaitFor(t, name+"'s tile saying why it has no video", 15*time.Second,
					webtest.TileAttr(name, "data-video-muted", "false")+" && "+unsupportedTileJS(name))
				waitAudio(t, tabs[i], name, 15*time.Second)
			}
			if p.receives != "" {
				got := webtest.MustEval[[]string](t, tabs[i], inboundVideoCodecsJS)
				for _, c := range got {
					if !strings.EqualFold(c, p.receives) {
						t.Errorf("%s receives video as %s, want only %s (all: %v)", p.name, c, p.receives, got)
					}
				}
				if len(got) == 0 && len(see) > 0 {
					t.Errorf("%s receives no video codec at all", p.name)
				}
			}
		}
	}
	for i, p := range people {
		if !p.joinLag {
			open(i)
		}
	}
	wait(false)
	if slices.ContainsFunc(people, func(p person) bool { return p.joinLag }) {
		for i, p := range people {
			if p.joinLag {
				open(i)
			}
		}
		wait(true)
	}
	for i, p := range people {
		if !p.shares {
			continue
		}
		if p.engine == webtest.Firefox {
			// Headless Firefox has no screen to capture: the page shares a
			// canvas instead, through the same button and code.
			webtest.MustEval[bool](t, tabs[i], canvasDisplayJS)
		}
		tabs[i].Click(t, "#screen")
		tabs[i].WaitFor(t, "the local screen tile", 5*time.Second, `!!document.querySelector('#grid .tile[data-local][data-screen]')`)
		for j := range people {
			if j != i {
				tabs[j].WaitScreenFlowing(t, p.name+" (screen)", 15*time.Second)
			}
		}
	}
	for _, tab := range tabs {
		tab.CheckPage(t)
	}
}

// pageMediaJS describes, for a failure, what a page receives: each
// inbound-rtp (kind, mid, track, frames, width, packets, codec), each
// transceiver (mid, directions, receiver track) and each tile's tracks.
const pageMediaJS = `(async () => {
  const pc = tessera.client.pc;
  const st = await pc.getStats();
  const inbound = [];
  st.forEach((s) => {
    if (s.type === 'inbound-rtp') inbound.push([s.kind, s.mid, s.trackIdentifier, s.framesDecoded, s.frameWidth, s.packetsReceived, s.codecId && st.get(s.codecId).mimeType].join(' '));
  });
  const transceivers = pc.getTransceivers().map((t) => [t.mid, t.direction, t.currentDirection, t.receiver.track.id, t.receiver.track.readyState].join(' '));
  const tiles = [...document.querySelectorAll('#grid .tile')].map((el) => el.dataset.name + ': ' +
    el.querySelector('video').srcObject.getTracks().map((t) => t.kind + ' ' + t.id + ' ' + t.readyState).join(', ') + ' width ' + el.querySelector('video').videoWidth);
  return JSON.stringify({inbound, transceivers, tiles});
})()`

// waitAudio waits until the tab receives the named person's audio.
func waitAudio(t *testing.T, tab *webtest.Tab, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if ti, ok := webtest.ByName(tab.RemoteTiles(t))[name]; ok && ti.Packets > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no audio from %s after %s%s", tab.Name, name, timeout, tab.Diagnose())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// unsupportedTileJS is a JavaScript condition: the remote person named
// name has a tile that says its video is in a codec this browser cannot
// play.
func unsupportedTileJS(name string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#grid .tile:not([data-local]):not([data-screen])')].some((el) => el.dataset.name === %q && el.dataset.unsupported && !el.querySelector('.why').hidden)`, name)
}

// inboundVideoCodecsJS lists the MIME types of the video the page receives.
const inboundVideoCodecsJS = `(async () => {
  const stats = await tessera.client.pc.getStats();
  const out = new Set();
  stats.forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video' && s.codecId && (s.packetsReceived || 0) > 0) out.add(stats.get(s.codecId).mimeType);
  });
  return [...out];
})()`

// canvasDisplayJS makes getDisplayMedia return a 1280x720 canvas that
// changes colour at 15 frames a second.
const canvasDisplayJS = `(navigator.mediaDevices.getDisplayMedia = async () => {
  const c = Object.assign(document.createElement('canvas'), {width: 1280, height: 720});
  const g = c.getContext('2d');
  let n = 0;
  setInterval(() => { g.fillStyle = 'hsl(' + (n++ * 7 % 360) + ', 60%, 50%)'; g.fillRect(0, 0, c.width, c.height); }, 66);
  return c.captureStream(15);
}, true)`

// TestBrowsersMixed runs rooms of Firefox and Chromium on the project's
// page: each person must see and hear everyone else.
func TestBrowsersMixed(t *testing.T) {
	skipShort(t)
	webtest.RequireChromium(t)
	webtest.RequireFirefox(t)
	b := newBrowsers(t)
	ff, cr := webtest.Firefox, webtest.Chromium
	noSimulcast := url.Values{"simulcast": {"0"}}
	tests := []struct {
		name   string
		people []person
	}{
		{"1 Firefox and 1 Chromium, both sharing a screen", []person{{name: "Fox", engine: ff, shares: true}, {name: "Crow", engine: cr, shares: true}}},
		{"2 Firefox", []person{{name: "Fox", engine: ff}, {name: "Fennec", engine: ff}}},
		{"2 Firefox without simulcast", []person{{name: "Fox", engine: ff, params: noSimulcast}, {name: "Fennec", engine: ff, params: noSimulcast}}},
		{"1 Firefox and 2 Chromium together", []person{{name: "Fox", engine: ff}, {name: "Crow", engine: cr}, {name: "Raven", engine: cr}}},
		{"1 Firefox publishing late, then 2 Chromium", []person{{name: "Fox", engine: ff, slowOffer: true}, {name: "Crow", engine: cr}, {name: "Raven", engine: cr}}},
		// Firefox is offered the first's audio as Opus 111, publishes its
		// own as 109, then is offered the late one's as 109.
		{"1 Chromium, 1 Firefox, then 1 Chromium late", []person{{name: "Crow", engine: cr}, {name: "Fox", engine: ff}, {name: "Raven", engine: cr, joinLag: true}}},
		{"1 Firefox after 2 Chromium", []person{{name: "Crow", engine: cr}, {name: "Raven", engine: cr}, {name: "Fox", engine: ff, joinLag: true}}},
		{"1 Firefox after 2 Chromium, no simulcast", []person{
			{name: "Crow", engine: cr, params: noSimulcast}, {name: "Raven", engine: cr, params: noSimulcast},
			{name: "Fox", engine: ff, params: noSimulcast, joinLag: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runRoom(t, b, tt.people) })
	}
}

// TestBrowsersMixedCodecs runs rooms whose people decode different video
// codecs (?codec=h264 makes a page send and say it decodes H264 alone):
// publishers send what everyone decodes where they can, switch when a
// newcomer needs another codec, and a tile says why it has no video where
// no codec reaches a person.
func TestBrowsersMixedCodecs(t *testing.T) {
	skipShort(t)
	webtest.RequireChromium(t)
	webtest.RequireFirefox(t)
	b := newBrowsers(t)
	ff, cr := webtest.Firefox, webtest.Chromium
	h264 := url.Values{"codec": {"h264"}}
	vp8 := url.Values{"codec": {"vp8"}}
	tests := []struct {
		name   string
		people []person
	}{
		{"an H264-only page is sent H264", []person{
			{name: "Crow", engine: cr}, {name: "Hawk", engine: cr, params: h264, receives: "video/H264"}}},
		{"publishers switch to H264 for a late H264-only page", []person{
			{name: "Crow", engine: cr}, {name: "Raven", engine: cr},
			{name: "Hawk", engine: cr, params: h264, receives: "video/H264", joinLag: true}}},
		{"H264-only, VP8-only and Firefox", []person{
			{name: "Hawk", engine: cr, params: h264, receives: "video/H264", cannot: []string{"Kite", "Fox"}},
			{name: "Kite", engine: cr, params: vp8, receives: "video/VP8", cannot: []string{"Hawk"}},
			{name: "Fox", engine: ff, cannot: []string{"Hawk"}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runRoom(t, b, tt.people) })
	}
}

// slowOfferJS delays the page's first offer by 2.5 s, then joins room %q
// as %q from the join form.
const slowOfferJS = `(() => {
  const create = RTCPeerConnection.prototype.createOffer;
  let first = true;
  RTCPeerConnection.prototype.createOffer = async function (...args) {
    if (first) {
      first = false;
      await new Promise((resolve) => setTimeout(resolve, 2500));
    }
    return create.apply(this, args);
  };
  document.getElementById('room').value = %q;
  document.getElementById('name').value = %q;
  document.getElementById('join-form').requestSubmit();
  return true;
})()`
