package webtest

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"testing"
	"time"
)

// Helpers for the conference page (web/static): they read its tiles (one
// figure.tile per person in #grid, data-name and data-participant on each),
// its connection indicator, and its debugging handle window.tessera
// ({client, state}).

// PageURL is the page at base joining room as name.
func PageURL(base, room, name string) string {
	return base + "/?" + url.Values{"room": {room}, "name": {name}}.Encode()
}

// TileMedia is what a tab shows of one remote tile.
type TileMedia struct {
	Key         string `json:"key"`
	Participant string `json:"participant"`
	Name        string `json:"name"`
	Screen      bool   `json:"screen"`
	VideoMuted  bool   `json:"videoMuted"`
	AudioMuted  bool   `json:"audioMuted"`
	Frames      int    `json:"frames"`  // framesDecoded of the tile's video
	Packets     int    `json:"packets"` // audio packetsReceived of the tile's audio
	Width       int    `json:"width"`   // the video element's videoWidth
}

// tileStatsJS lists the remote tiles with the inbound-rtp counters of the
// tracks they show.
const tileStatsJS = `(async () => {
  const c = window.tessera && window.tessera.client;
  const inbound = new Map();
  if (c && c.pc) (await c.pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp') inbound.set(s.trackIdentifier, s);
  });
  return [...document.querySelectorAll('#grid .tile:not([data-local])')].map((el) => {
    const v = el.querySelector('video');
    let frames = 0, packets = 0;
    for (const t of (v.srcObject ? v.srcObject.getTracks() : [])) {
      const s = inbound.get(t.id);
      if (!s) continue;
      if (t.kind === 'video') frames += s.framesDecoded || 0;
      else packets += s.packetsReceived || 0;
    }
    return {key: el.dataset.key, participant: el.dataset.participant, name: el.dataset.name,
      screen: el.hasAttribute('data-screen'), videoMuted: el.dataset.videoMuted === 'true',
      audioMuted: el.dataset.audioMuted === 'true', frames, packets, width: v.videoWidth};
  });
})()`

// RemoteTiles lists the remote tiles the tab shows.
func (tab *Tab) RemoteTiles(t testing.TB) []TileMedia {
	t.Helper()
	return MustEval[[]TileMedia](t, tab, tileStatsJS)
}

// ByName indexes the people's tiles (not screen shares) by name.
func ByName(tiles []TileMedia) map[string]TileMedia {
	m := make(map[string]TileMedia, len(tiles))
	for _, ti := range tiles {
		if !ti.Screen {
			m[ti.Name] = ti
		}
	}
	return m
}

// WaitTiles waits until the tab shows exactly the remote people named.
func (tab *Tab) WaitTiles(t testing.TB, timeout time.Duration, names ...string) {
	t.Helper()
	want := slices.Clone(names)
	slices.Sort(want)
	deadline := time.Now().Add(timeout)
	for {
		var got []string
		for name := range ByName(tab.RemoteTiles(t)) {
			got = append(got, name)
		}
		slices.Sort(got)
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: remote tiles %q, want %q after %s%s", tab.Name, got, want, timeout, tab.Diagnose())
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// WaitMediaFlowing waits until every named remote tile plays video (frames
// decoded, a picture size) and receives audio, then until both counters
// have risen again: media is flowing now, not just once.
func (tab *Tab) WaitMediaFlowing(t testing.TB, timeout time.Duration, names ...string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var first map[string]TileMedia
	for {
		tiles := ByName(tab.RemoteTiles(t))
		ok := true
		for _, n := range names {
			ti, found := tiles[n]
			if !found || ti.Frames == 0 || ti.Packets == 0 || ti.Width == 0 {
				ok = false
				break
			}
			if first != nil && (ti.Frames <= first[n].Frames || ti.Packets <= first[n].Packets) {
				ok = false
				break
			}
		}
		switch {
		case ok && first == nil:
			first = tiles
		case ok:
			return
		case time.Now().After(deadline):
			js, _ := json.Marshal(tiles)
			t.Fatalf("%s: media of %q not flowing after %s: %s%s", tab.Name, names, timeout, js, tab.Diagnose())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// WaitScreenFlowing waits until the tab shows the named screen-share tile
// with its video decoding, and the count rising.
func (tab *Tab) WaitScreenFlowing(t testing.TB, name string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	first := -1
	for {
		frames := -1
		for _, ti := range tab.RemoteTiles(t) {
			if ti.Screen && ti.Name == name && ti.Width > 0 {
				frames = ti.Frames
			}
		}
		switch {
		case frames > 0 && first < 0:
			first = frames
		case frames > first && first > 0:
			return
		case time.Now().After(deadline):
			t.Fatalf("%s: screen tile %q not playing after %s (frames %d)%s", tab.Name, name, timeout, frames, tab.Diagnose())
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// VideoIn is what a tab decodes of one remote video.
type VideoIn struct {
	Width  int `json:"width"`  // frameWidth of its inbound-rtp stats
	Frames int `json:"frames"` // framesDecoded
}

// VideoInJS is a JavaScript promise of the VideoIn of the remote tile named %q.
const VideoInJS = `(async () => {
  const c = tessera.client;
  const el = [...document.querySelectorAll('#grid .tile:not([data-local]):not([data-screen])')].find((e) => e.dataset.name === %q);
  const v = el && el.querySelector('video').srcObject && el.querySelector('video').srcObject.getVideoTracks()[0];
  let out = {width: 0, frames: 0};
  if (!v || !c || !c.pc) return out;
  (await c.pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.trackIdentifier === v.id) out = {width: s.frameWidth || 0, frames: s.framesDecoded || 0};
  });
  return out;
})()`

// RemoteVideo reads what the tab decodes of the named person's video
// (zero when it shows none).
func (tab *Tab) RemoteVideo(t testing.TB, name string) VideoIn {
	t.Helper()
	return MustEval[VideoIn](t, tab, fmt.Sprintf(VideoInJS, name))
}

// WaitFramesRising waits until the tab has decoded n more frames of the
// named person's video than from, and returns the count.
func (tab *Tab) WaitFramesRising(t testing.TB, name string, from, n int, timeout time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		v := tab.RemoteVideo(t, name)
		if v.Frames >= from+n {
			return v.Frames
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s's video at %d frames, want %d after %s%s", tab.Name, name, v.Frames, from+n, timeout, tab.Diagnose())
		}
		time.Sleep(150 * time.Millisecond)
	}
}

// SetLayer asks for a simulcast layer of a track through the page's client.
func (tab *Tab) SetLayer(t testing.TB, track, rid string) {
	t.Helper()
	if id := MustEval[string](t, tab, fmt.Sprintf(`tessera.client.setLayer(%q, %q) || ''`, track, rid)); id == "" {
		t.Fatalf("%s: layer %s of %s not sent", tab.Name, rid, track)
	}
}

// Diagnose describes what the page shows besides tiles: its connection
// state, its messages and its console errors.
func (tab *Tab) Diagnose() string {
	v, err := Eval[string](tab, `'connection: ' + document.getElementById('conn').dataset.state + '; messages: ' + JSON.stringify([...document.querySelectorAll('#toasts .toast')].map((el) => el.innerText))`)
	if err != nil {
		v = err.Error()
	}
	return fmt.Sprintf("\n\t%s\n\tconsole: %q", v, tab.ConsoleErrors())
}

// CheckPage fails t for every console error, uncaught exception or error
// message the page showed.
func (tab *Tab) CheckPage(t testing.TB) {
	t.Helper()
	tab.CheckConsole(t)
	msgs, err := Eval[[]string](tab, `tessera.state.messages.filter((m) => m.kind === 'error').map((m) => m.title + ': ' + m.message)`)
	if err != nil {
		t.Errorf("%s: reading its messages: %v", tab.Name, err)
	}
	for _, m := range msgs {
		t.Errorf("%s showed an error: %s", tab.Name, m)
	}
}

// TileAttr is a JavaScript condition: the remote person named name has a
// tile whose attribute attr is value.
func TileAttr(name, attr, value string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#grid .tile:not([data-local]):not([data-screen])')].some((el) => el.dataset.name === %q && el.getAttribute(%q) === %q)`, name, attr, value)
}

// Speaking is a JavaScript condition: the remote person named name is shown
// speaking.
func Speaking(name string) string {
	return fmt.Sprintf(`[...document.querySelectorAll('#grid .tile.speaking:not([data-local]):not([data-screen])')].some((el) => el.dataset.name === %q)`, name)
}

// CameraEncodingsJS describes the simulcast encodings of the page's camera as
// "q:true h:true f:true" (rid:active).
const CameraEncodingsJS = `tessera.client.publications.find((p) => p.source === 'camera').transceiver.sender.getParameters().encodings.map((e) => e.rid + ':' + e.active).join(' ')`

// OutboundVideoJS describes, as JSON, the video the page sends: each
// layer's rid, frame width, frame rate and quality limitation.
const OutboundVideoJS = `(async () => {
  const out = [];
  (await tessera.client.pc.getStats()).forEach((s) => {
    if (s.type === 'outbound-rtp' && s.kind === 'video') out.push({rid: s.rid, width: s.frameWidth, fps: s.framesPerSecond, limit: s.qualityLimitationReason, active: s.active});
  });
  return JSON.stringify(out);
})()`
