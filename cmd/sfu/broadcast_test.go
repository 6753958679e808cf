package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
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
