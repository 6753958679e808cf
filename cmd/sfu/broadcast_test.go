package main

import (
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/internal/webtest"
	"github.com/tessera-rtc/tessera/signaling/client"
)

// TestBrowserWHIP: an encoder publishing real H264 and Opus over WHIP, as
// OBS does, is seen in Chromium as a person of the call: its tile decodes
// the video at its size and plays the audio, and says it comes from WHIP.
// When the encoder ends the session, the tile goes.
func TestBrowserWHIP(t *testing.T) {
	skipShort(t)
	enc := testutil.EncodeMedia(t)
	ctx := testutil.Context(t)
	base := "http://" + startServer(t, loopbackConfig())
	room := fmt.Sprintf("whip-%d", time.Now().UnixNano())

	br := webtest.NewBrowser(t, webtest.Options{Width: 1024, Height: 640})
	tab := br.NewTab("Bea")
	t.Cleanup(tab.Close)
	tab.Navigate(t, webtest.PageURL(base, room, "Bea"))
	tab.WaitFor(t, "Bea's own tile", 15*time.Second, `!!document.querySelector('#grid .tile[data-local]')`)

	video, err := webrtc.NewTrackLocalStaticSample(webrtc.RTPCodecCapability{
		MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f",
	}, "video", "obs")
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
		if err := testutil.PlayH264(ctx, video, enc.H264); err != nil {
			t.Errorf("video: %v", err)
		}
	}()
	go func() {
		if err := testutil.PlayOgg(ctx, audio, enc.Ogg); err != nil {
			t.Errorf("audio: %v", err)
		}
	}()

	frames := tab.WaitFramesRising(t, "OBS", 0, 30, 20*time.Second)
	tab.WaitFramesRising(t, "OBS", frames, 30, 10*time.Second)
	if v := tab.RemoteVideo(t, "OBS"); v.Width != 640 {
		t.Errorf("Bea decodes OBS's video %d px wide, want 640", v.Width)
	}
	waitAudio(t, tab, "OBS", 10*time.Second)
	if !webtest.MustEval[bool](t, tab, `(() => {
  const el = document.querySelector('#grid .tile[data-name="OBS"]');
  return !!el && el.dataset.via === 'whip' && !el.querySelector('.via').hidden;
})()`) {
		t.Error("OBS's tile does not say it comes from WHIP")
	}

	if err := w.Close(ctx); err != nil {
		t.Fatalf("DELETE: %v", err)
	}
	tab.WaitFor(t, "OBS's tile gone", 10*time.Second, `!document.querySelector('#grid .tile[data-name="OBS"]')`)
	tab.CheckPage(t)
}
