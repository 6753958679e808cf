package main

import (
	"encoding/json"
	"maps"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tessera-rtc/tessera/cmd/sfu/inspect"
	"github.com/tessera-rtc/tessera/internal/webtest"
)

// networkCall opens one tab per name on the project's page (with the
// page's URL parameters of that name), waits until every tab decodes
// every other, and returns the path each tab's page shows and the path
// /debug gives for each.
func networkCall(t *testing.T, b *webtest.Browser, base, room string, names []string, params map[string]string) (page, debug, detail map[string]string) {
	t.Helper()
	tabs := map[string]*webtest.Tab{}
	for _, n := range names {
		tabs[n] = b.NewTab(n)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range names {
				t.Logf("%s's page:%s", n, tabs[n].Diagnose())
			}
			if resp, err := http.Get(base + "/debug/rooms"); err == nil {
				var snap inspect.Snapshot
				_ = json.NewDecoder(resp.Body).Decode(&snap)
				resp.Body.Close()
				for _, r := range snap.Rooms {
					for _, p := range r.Participants {
						subs, _ := json.Marshal(p.Subscriptions)
						t.Logf("/debug: %s (%s) path %s receives %s", p.Name, p.ID, p.Path, subs)
					}
				}
			}
		}
		for _, tab := range tabs {
			tab.Close()
		}
	})
	for _, n := range names {
		tabs[n].Navigate(t, webtest.PageURL(base, room, n)+params[n])
	}
	others := func(n string) []string {
		return slices.DeleteFunc(slices.Clone(names), func(s string) bool { return s == n })
	}
	for _, n := range names {
		tabs[n].WaitMediaFlowing(t, 30*time.Second, others(n)...)
	}
	for _, n := range names {
		tabs[n].WaitFor(t, "the path shown", 10*time.Second, `document.getElementById('path').dataset.path !== ''`)
		tabs[n].CheckConsole(t)
	}
	// ICE may still move to a better pair: both ends are read until they
	// agree on every participant's path, or for 10 s.
	deadline := time.Now().Add(10 * time.Second)
	for {
		page, detail = map[string]string{}, map[string]string{}
		for _, n := range names {
			page[n] = webtest.MustEval[string](t, tabs[n], `document.getElementById('path').dataset.path`)
			detail[n] = webtest.MustEval[string](t, tabs[n], `document.getElementById('path').title`)
		}
		debug = debugPaths(t, base, room)
		if maps.Equal(page, debug) || time.Now().After(deadline) {
			return page, debug, detail
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// debugPaths maps each participant of room, by name, to the path /debug
// gives.
func debugPaths(t *testing.T, base, room string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for name, p := range debugParticipants(t, base, room) {
		out[name] = p.Path
	}
	return out
}

// debugParticipants reads /debug/rooms: the room's participants by name.
func debugParticipants(t *testing.T, base, room string) map[string]inspect.ParticipantDetail {
	t.Helper()
	resp, err := http.Get(base + "/debug/rooms")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var snap inspect.Snapshot
	if err := json.NewDecoder(resp.Body).Decode(&snap); err != nil {
		t.Fatal(err)
	}
	out := map[string]inspect.ParticipantDetail{}
	for _, r := range snap.Rooms {
		if r.Name == room {
			for _, p := range r.Participants {
				out[p.Name] = p
			}
		}
	}
	return out
}

// TestBrowserWithoutUDP: three Chromium tabs started with the policy that
// many companies push to their browsers, which forbids UDP that does not
// go through a proxy, hold a call on the embedded default configuration:
// ICE over TCP on the HTTP port, or the embedded TURN server over TCP or
// TLS, with nothing configured.
func TestBrowserWithoutUDP(t *testing.T) {
	skipShort(t)
	webtest.RequireChromium(t)
	base := "http://" + startServer(t, loopbackConfig())
	b := webtest.NewBrowser(t, webtest.Options{Width: 640, Height: 480, Flags: map[string]any{
		"webrtc-ip-handling-policy": "disable_non_proxied_udp",
	}})
	names := []string{"Ada", "Grace", "Linus"}
	page, debug, detail := networkCall(t, b, base, "no-udp", names, nil)
	tcpOnly := []string{"tcp", "relay-tcp", "relay-tls"}
	for _, n := range names {
		if !slices.Contains(tcpOnly, page[n]) {
			t.Errorf("%s's page says the media took %q (%s): not a TCP path", n, page[n], detail[n])
		}
		if !slices.Contains(tcpOnly, debug[n]) {
			t.Errorf("/debug says the media to %s took %q: not a TCP path", n, debug[n])
		}
	}
	// Each end names the pair it sends on. They may differ: the server, as
	// the controlled ICE agent, moves to a later nomination only when its
	// pair has a higher priority.
	t.Logf("paths without UDP: page %v, /debug %v", page, debug)
}

// TestBrowserRelay: three Chromium tabs forced to relay-only ICE, each
// through the embedded TURN server over another transport (UDP, TCP, TLS
// with the server's self-signed certificate), hold a call on the embedded
// default configuration; the page and /debug both name the path.
func TestBrowserRelay(t *testing.T) {
	skipShort(t)
	webtest.RequireChromium(t)
	base := "http://" + startServer(t, loopbackConfig())
	b := webtest.NewBrowser(t, webtest.Options{Width: 640, Height: 480, IgnoreCertErrors: true})
	relayCall(t, b, base, "relay", []string{"Ada", "Grace", "Linus"}, []string{"udp", "tcp", "tls"})
}

// relayCall holds a call of one tab per name, each forced through the
// embedded TURN server over its transport, and checks that the page and
// /debug both name that path.
func relayCall(t *testing.T, b *webtest.Browser, base, room string, names, transports []string) {
	t.Helper()
	params := map[string]string{}
	for i, n := range names {
		params[n] = "&relay=" + transports[i]
	}
	page, debug, detail := networkCall(t, b, base, room, names, params)
	for i, n := range names {
		want := "relay-" + transports[i]
		if page[n] != want {
			t.Errorf("%s's page says %q (%s), want %q", n, page[n], detail[n], want)
		}
		if debug[n] != want {
			t.Errorf("/debug says %s took %q, want %q", n, debug[n], want)
		}
	}
}

// TestFirefoxRelay is TestBrowserRelay in Firefox, over UDP and TCP, with
// two tabs (a third tab of one Firefox here receives no audio, relay or
// not). Over TLS, Firefox's TURN client checks the certificate against its
// own roots (acceptInsecureCerts does not reach it), and the embedded
// default's is self-signed.
func TestFirefoxRelay(t *testing.T) {
	skipShort(t)
	webtest.RequireFirefox(t)
	base := "http://" + startServer(t, loopbackConfig())
	b := webtest.NewFirefox(t, webtest.Options{Width: 640, Height: 480})
	relayCall(t, b, base, "relay-firefox", []string{"Ada", "Grace"}, []string{"udp", "tcp"})
}
