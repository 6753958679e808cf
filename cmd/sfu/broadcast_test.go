package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/configs"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/internal/webtest"
	"github.com/tessera-rtc/tessera/signaling/client"
)

// TestBrowserWHIP: an encoder publishing real video and Opus over WHIP,
// as OBS does, is seen in Chromium and Firefox as a person of the call: its
// tile decodes the video at its size and plays the audio, and says it comes
// from WHIP. When the encoder ends the session, the tile goes. Firefox here
// has no H264 (Debian's build fetches OpenH264 at run time): for the H264
// encoder its tile says why there is no video, and the audio plays.
func TestBrowserWHIP(t *testing.T) {
	skipShort(t)
	enc := testutil.EncodeMedia(t)
	base := "http://" + startServer(t, loopbackConfig())
	chromium := webtest.NewBrowser(t, webtest.Options{Width: 1024, Height: 640})
	firefox := webtest.NewFirefox(t, webtest.Options{Width: 1024, Height: 640})

	for _, tc := range []struct {
		codec          string
		file           string
		play           func(context.Context, *webrtc.TrackLocalStaticSample, string) error
		fmtp           string
		firefoxDecodes bool
	}{
		{webrtc.MimeTypeH264, enc.H264, testutil.PlayH264, "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", false},
		{webrtc.MimeTypeVP8, enc.VP8, testutil.PlayIVF, "", true},
	} {
		t.Run(strings.TrimPrefix(tc.codec, "video/"), func(t *testing.T) {
			ctx := testutil.Context(t)
			room := fmt.Sprintf("whip-%d", time.Now().UnixNano())
			bea, cat := chromium.NewTab("Bea"), firefox.NewTab("Cat")
			t.Cleanup(bea.Close)
			t.Cleanup(cat.Close)
			tabs := []*webtest.Tab{bea, cat}
			for _, tab := range tabs {
				tab.Navigate(t, webtest.PageURL(base, room, tab.Name))
				tab.WaitFor(t, tab.Name+"'s own tile", 20*time.Second, `!!document.querySelector('#grid .tile[data-local]')`)
			}

			video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: tc.codec, ClockRate: 90000, SDPFmtpLine: tc.fmtp}, "video", "obs")
			if err != nil {
				t.Fatal(err)
			}
			audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "obs")
			if err != nil {
				t.Fatal(err)
			}
			endpoint := base + "/whip/" + url.PathEscape(room) + "?name=OBS"
			w, err := client.PublishWHIP(ctx, endpoint, client.WHIPOptions{}, video, audio)
			if err != nil {
				t.Fatalf("WHIP: %v", err)
			}
			t.Cleanup(func() { _ = w.PC.Close() })
			go func() {
				if err := tc.play(ctx, video, tc.file); err != nil {
					t.Errorf("video: %v", err)
				}
			}()
			go func() {
				if err := testutil.PlayOgg(ctx, audio, enc.Ogg); err != nil {
					t.Errorf("audio: %v", err)
				}
			}()

			for _, tab := range tabs {
				if tab == cat && !tc.firefoxDecodes {
					tab.WaitFor(t, "Cat's tile for OBS saying why there is no video", 20*time.Second, unsupportedTileJS("OBS"))
				} else {
					frames := tab.WaitFramesRising(t, "OBS", 0, 30, 20*time.Second)
					tab.WaitFramesRising(t, "OBS", frames, 30, 10*time.Second)
					if v := tab.RemoteVideo(t, "OBS"); v.Width != 640 {
						t.Errorf("%s decodes OBS's video %d px wide, want 640", tab.Name, v.Width)
					}
				}
				waitAudio(t, tab, "OBS", 10*time.Second)
				if !webtest.MustEval[bool](t, tab, `(() => {
  const el = document.querySelector('#grid .tile[data-name="OBS"]');
  return !!el && el.dataset.via === 'whip' && !el.querySelector('.via').hidden;
})()`) {
					t.Errorf("%s: OBS's tile does not say it comes from WHIP", tab.Name)
				}
			}

			if err := w.Close(ctx); err != nil {
				t.Fatalf("DELETE: %v", err)
			}
			for _, tab := range tabs {
				tab.WaitFor(t, "OBS's tile gone", 10*time.Second, `!document.querySelector('#grid .tile[data-name="OBS"]')`)
				tab.CheckPage(t)
			}
		})
	}
}

// whipEncoder publishes a video file (H264, VP8, or AV1 when enc has it)
// and the Opus file over WHIP until ctx ends.
func whipEncoder(ctx context.Context, t *testing.T, endpoint, codec string, enc testutil.Encoded) *client.WHIP {
	t.Helper()
	fmtp, file, play := "", enc.VP8, testutil.PlayIVF
	switch codec {
	case webrtc.MimeTypeH264:
		fmtp, file, play = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", enc.H264, testutil.PlayH264
	case webrtc.MimeTypeAV1:
		fmtp, file = "level-idx=5;profile=0;tier=0", enc.AV1
	}
	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: codec, ClockRate: 90000, SDPFmtpLine: fmtp}, "video", "enc")
	if err != nil {
		t.Fatal(err)
	}
	audio, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio", "enc")
	if err != nil {
		t.Fatal(err)
	}
	w, err := client.PublishWHIP(ctx, endpoint, client.WHIPOptions{}, video, audio)
	if err != nil {
		t.Fatalf("WHIP: %v", err)
	}
	t.Cleanup(func() { _ = w.PC.Close() })
	go func() {
		if err := play(ctx, video, file); err != nil && ctx.Err() == nil {
			t.Errorf("video: %v", err)
		}
	}()
	go func() {
		if err := testutil.PlayOgg(ctx, audio, enc.Ogg); err != nil && ctx.Err() == nil {
			t.Errorf("audio: %v", err)
		}
	}()
	return w
}

// TestRecording: a 20-second call in a room configured to record gives a
// file per participant that ffprobe reads with the codecs sent (VP8 and
// Opus in WebM, AV1 and Opus in WebM, H264 and Opus in Matroska) and a
// duration of 20 s ± 1, and that ffmpeg decodes without an error.
// /admin/recordings lists them.
func TestRecording(t *testing.T) {
	skipShort(t)
	enc := testutil.EncodeMedia(t)
	ffprobe := testutil.RequireTool(t, "ffprobe", "ffmpeg")
	ffmpeg := testutil.RequireTool(t, "ffmpeg", "ffmpeg")
	enc.AV1 = testutil.EncodeAV1(t)
	ctx := testutil.Context(t)
	dir := t.TempDir()
	cfg := loopbackConfig()
	cfg.Recording = &configs.Recording{Dir: dir}
	cfg.Rooms.List = append(cfg.Rooms.List, configs.Room{Name: "recorded", Record: true})
	base := "http://" + startServer(t, cfg)

	const call = 20 * time.Second
	callCtx, hangUp := context.WithCancel(ctx)
	var encoders []*client.WHIP
	for _, codec := range []string{webrtc.MimeTypeVP8, webrtc.MimeTypeH264, webrtc.MimeTypeAV1} {
		encoders = append(encoders, whipEncoder(callCtx, t, base+"/whip/recorded?name="+strings.TrimPrefix(codec, "video/"), codec, enc))
	}
	time.Sleep(call)
	for _, w := range encoders {
		if err := w.Close(ctx); err != nil {
			t.Errorf("DELETE: %v", err)
		}
	}
	hangUp()

	var list struct {
		Recordings []struct {
			Path       string `json:"path"`
			Active     bool   `json:"active"`
			DurationMs int64  `json:"durationMs"`
			Dropped    int64  `json:"dropped"`
			Error      string `json:"error"`
		} `json:"recordings"`
	}
	testutil.Eventually(t, 10*time.Second, "three finished recordings", func() bool {
		resp, err := http.Get(base + "/admin/recordings")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || len(list.Recordings) != 3 {
			return false
		}
		for _, r := range list.Recordings {
			if r.Active {
				return false
			}
		}
		return true
	})

	// Each file, by its video codec: its container, and what it holds.
	want := map[string]struct {
		ext    string
		codecs []string
	}{"vp8": {".webm", []string{"opus", "vp8"}}, "h264": {".mkv", []string{"h264", "opus"}}, "av1": {".webm", []string{"av1", "opus"}}}
	seen := map[string]bool{}
	for _, r := range list.Recordings {
		if r.Error != "" || r.Dropped != 0 {
			t.Errorf("%s: error %q, %d packets dropped", r.Path, r.Error, r.Dropped)
		}
		out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=codec_name:format=duration", "-of", "json", r.Path).Output()
		if err != nil {
			t.Fatalf("ffprobe %s: %v", r.Path, err)
		}
		var probe struct {
			Streams []struct {
				Codec string `json:"codec_name"`
			} `json:"streams"`
			Format struct {
				Duration string `json:"duration"`
			} `json:"format"`
		}
		if err := json.Unmarshal(out, &probe); err != nil {
			t.Fatalf("ffprobe %s: %v\n%s", r.Path, err, out)
		}
		var codecs []string
		for _, s := range probe.Streams {
			codecs = append(codecs, s.Codec)
		}
		slices.Sort(codecs)
		video := ""
		for _, c := range codecs {
			if c != "opus" {
				video = c
			}
		}
		w, ok := want[video]
		seen[video] = true
		if !ok || !slices.Equal(codecs, w.codecs) || filepath.Ext(r.Path) != w.ext {
			t.Errorf("%s holds %v, want one of %v", r.Path, codecs, want)
		}
		d, err := strconv.ParseFloat(probe.Format.Duration, 64)
		t.Logf("%s: %v, %s s", filepath.Base(r.Path), codecs, probe.Format.Duration)
		if err != nil || math.Abs(d-call.Seconds()) > 1 {
			t.Errorf("%s lasts %q s, want %s ± 1 s", r.Path, probe.Format.Duration, call)
		}
		if out, err := exec.Command(ffmpeg, "-v", "error", "-i", r.Path, "-f", "null", "-").CombinedOutput(); err != nil || len(out) != 0 {
			t.Errorf("decoding %s: %v\n%s", r.Path, err, out)
		}
	}
	if len(seen) != len(want) {
		t.Errorf("recorded video codecs %v, want %v", seen, want)
	}
}

// TestBrowserRecordingShown: the page says when the room is recorded, from
// joining on, and follows the admin API turning it off and on.
func TestBrowserRecordingShown(t *testing.T) {
	skipShort(t)
	cfg := loopbackConfig()
	cfg.Recording = &configs.Recording{Dir: t.TempDir()}
	cfg.Rooms.List = append(cfg.Rooms.List, configs.Room{Name: "recorded", Record: true})
	base := "http://" + startServer(t, cfg)
	br := webtest.NewBrowser(t, webtest.Options{Width: 1024, Height: 640})
	tab := br.NewTab("Bea")
	t.Cleanup(tab.Close)
	tab.Navigate(t, webtest.PageURL(base, "recorded", "Bea"))
	tab.WaitFor(t, "the recording notice", 15*time.Second, `!document.getElementById('rec').hidden`)
	for _, step := range []struct {
		method string
		shown  bool
	}{{http.MethodDelete, false}, {http.MethodPut, true}} {
		if status := adminStatus(t, step.method, base+"/admin/rooms/recorded/recording"); status != http.StatusOK {
			t.Fatalf("%s recording: %d", step.method, status)
		}
		tab.WaitFor(t, fmt.Sprintf("the recording notice shown: %v", step.shown), 10*time.Second,
			fmt.Sprintf(`document.getElementById('rec').hidden === %v`, !step.shown))
	}
	tab.CheckPage(t)

	// A room that does not exist, and a server without a recording section.
	plain := "http://" + startServer(t, loopbackConfig())
	for _, tc := range []struct {
		url  string
		want int
	}{
		{base + "/admin/rooms/nosuch/recording", http.StatusNotFound},
		{plain + "/admin/rooms/lobby/recording", http.StatusConflict},
	} {
		if status := adminStatus(t, http.MethodPut, tc.url); status != tc.want {
			t.Errorf("PUT %s: %d, want %d", tc.url, status, tc.want)
		}
	}
}

// TestBrowserWHEP: the player page the server serves, /watch.html, plays a
// room over WHEP in Chromium and in Firefox: the room's speaker (Bea's
// camera or the encoder, whoever is louder) in Chromium, the encoder alone
// in Firefox. The video decodes at its size and keeps coming, the audio
// arrives. Bea's page counts the viewers instead of giving them tiles, and
// stops counting them when they leave.
func TestBrowserWHEP(t *testing.T) {
	skipShort(t)
	enc := testutil.EncodeMedia(t)
	base := "http://" + startServer(t, loopbackConfig())
	ctx := testutil.Context(t)
	room := fmt.Sprintf("whep-%d", time.Now().UnixNano())
	whipEncoder(ctx, t, base+"/whip/"+room+"?name=Stage", webrtc.MimeTypeVP8, enc)

	chromium := webtest.NewBrowser(t, webtest.Options{Width: 1024, Height: 640})
	firefox := webtest.NewFirefox(t, webtest.Options{Width: 1024, Height: 640})
	bea := chromium.NewTab("Bea")
	t.Cleanup(bea.Close)
	bea.Navigate(t, webtest.PageURL(base, room, "Bea"))
	bea.WaitTiles(t, 20*time.Second, "Stage")
	stage := webtest.MustEval[string](t, bea, `[...tessera.client.participants.values()].find((p) => p.name === 'Stage').id`)

	viewers := []*webtest.Tab{chromium.NewTab("speaker viewer"), firefox.NewTab("Stage viewer")}
	widths := []string{"[640, 960].includes(document.getElementById('video').videoWidth)", "document.getElementById('video').videoWidth === 640"}
	v0 := base + "/watch.html?room=" + url.QueryEscape(room)
	for i, u := range []string{v0, v0 + "&participant=" + url.QueryEscape(stage)} {
		t.Cleanup(viewers[i].Close)
		viewers[i].Navigate(t, u)
	}
	// inbound counts what the page received of kind: packets of audio,
	// decoded frames of video.
	inbound := func(kind, field string) string {
		return fmt.Sprintf(`(await (async () => {
  let n = 0;
  (await player.pc.getStats()).forEach((s) => { if (s.type === 'inbound-rtp' && s.kind === %q) n = s.%s; });
  return n;
})())`, kind, field)
	}
	frames, audioPackets := inbound("video", "framesDecoded"), inbound("audio", "packetsReceived")
	for i, v := range viewers {
		name := string(v.Engine())
		v.WaitFor(t, name+" playing the video at its size", 20*time.Second,
			widths[i]+` && document.getElementById('status').textContent === 'Playing.'`)
		n := webtest.MustEval[int](t, v, "(async () => "+frames+")()")
		v.WaitFor(t, name+" decoding frames", 10*time.Second, fmt.Sprintf(`%s > %d + 30`, frames, n))
		v.WaitFor(t, name+" receiving audio", 10*time.Second, audioPackets+` > 50`)
		v.CheckConsole(t)
	}

	bea.WaitFor(t, "Bea's page counting two viewers", 10*time.Second,
		`!document.getElementById('watching').hidden && document.getElementById('watching').textContent === '2 watching'`)
	if n := len(bea.RemoteTiles(t)); n != 1 {
		t.Errorf("Bea's page shows %d remote tiles, want 1 (the encoder): viewers get none", n)
	}
	for _, v := range viewers {
		v.Close()
	}
	bea.WaitFor(t, "Bea's page counting no viewer", 15*time.Second, `document.getElementById('watching').hidden`)
	bea.CheckPage(t)
}
