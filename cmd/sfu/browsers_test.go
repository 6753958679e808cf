package main

import (
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/tessera-rtc/tessera/web/webtest"
)

// person is one participant of a mixed-browser room: the browser that
// runs their page and how the page is opened.
type person struct {
	name    string
	engine  webtest.Engine
	params  url.Values // extra page parameters (simulcast=0, ...)
	joinLag bool       // joins after everyone without it is in the call
	shares  bool       // shares a screen once everyone is in the call
}

// browsers starts each browser the people need, once.
type browsers struct {
	t  *testing.T
	by map[webtest.Engine]*webtest.Browser
}

func (b *browsers) tab(p person) *webtest.Tab {
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
	return br.NewTab(p.name)
}

// runRoom opens the page for every person (the late ones once the others
// see each other) and checks that each tab decodes every other person's
// video at a real size and receives their audio, with no page error.
func runRoom(t *testing.T, people []person) {
	t.Helper()
	base := "http://" + startServer(t, loopbackConfig())
	b := &browsers{t: t, by: map[webtest.Engine]*webtest.Browser{}}
	room := fmt.Sprintf("mixed-%d", time.Now().UnixNano())
	tabs := make([]*webtest.Tab, len(people))
	for i, p := range people {
		tabs[i] = b.tab(p)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, tab := range tabs {
				t.Logf("%s (%s):%s", people[i].name, people[i].engine, tab.Diagnose())
			}
		}
	})
	open := func(i int) {
		u := webtest.PageURL(base, room, people[i].name)
		if q := people[i].params.Encode(); q != "" {
			u += "&" + q
		}
		tabs[i].Navigate(t, u)
	}
	others := func(i int, lateToo bool) []string {
		var out []string
		for j, p := range people {
			if j != i && (lateToo || !p.joinLag) {
				out = append(out, p.name)
			}
		}
		return out
	}
	wait := func(lateToo bool) {
		for i, p := range people {
			if p.joinLag && !lateToo {
				continue
			}
			tabs[i].WaitTiles(t, 20*time.Second, others(i, lateToo)...)
		}
		for i, p := range people {
			if p.joinLag && !lateToo {
				continue
			}
			tabs[i].WaitMediaFlowing(t, 30*time.Second, others(i, lateToo)...)
			for _, name := range others(i, lateToo) {
				if v := tabs[i].RemoteVideo(t, name); v.Width < 160 {
					t.Errorf("%s decodes %s's video at %d pixels wide", p.name, name, v.Width)
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
		{"1 Firefox after 2 Chromium", []person{{name: "Crow", engine: cr}, {name: "Raven", engine: cr}, {name: "Fox", engine: ff, joinLag: true}}},
		{"1 Firefox after 2 Chromium, no simulcast", []person{
			{name: "Crow", engine: cr, params: noSimulcast}, {name: "Raven", engine: cr, params: noSimulcast},
			{name: "Fox", engine: ff, params: noSimulcast, joinLag: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { runRoom(t, tt.people) })
	}
}
