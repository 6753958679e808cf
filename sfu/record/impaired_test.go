package record

import (
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/sfu"
)

// fakeSource is a published VP8 track whose packets the test hands to
// the recorder itself.
type fakeSource struct {
	rec       atomic.Pointer[sfu.Recorder]
	keyframes atomic.Int64
}

func (f *fakeSource) ID() string                { return "t-camera" }
func (f *fakeSource) Kind() webrtc.RTPCodecType { return webrtc.RTPCodecTypeVideo }
func (f *fakeSource) Codec() webrtc.RTPCodecParameters {
	return webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, PayloadType: 96}
}
func (f *fakeSource) Record(r sfu.Recorder) { f.rec.Store(&r) }
func (f *fakeSource) RequestKeyframe()      { f.keyframes.Add(1) }

// TestImpairedRecording: real VP8 (ffmpeg's libvpx, a keyframe every 15
// frames) reaches the recorder with every pair of packets swapped, one
// whole inter frame lost and one packet of another lost. The file holds
// every frame but those that could not decode (the damaged ones and those
// after them up to the next keyframe), the last ones included, a keyframe
// is asked for, and ffmpeg decodes the file without an error.
func TestImpairedRecording(t *testing.T) {
	enc := testutil.EncodeMedia(t)
	ffprobe := testutil.RequireTool(t, "ffprobe", "ffmpeg")
	ffmpeg := testutil.RequireTool(t, "ffmpeg", "ffmpeg")

	f, err := os.Open(enc.VP8)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ivf, _, err := ivfreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	const frames = 90 // 3 s at 30 fps
	const lostFrame, damagedFrame = 40, 70
	packetizer := rtp.NewPacketizer(400, 96, 0x1234, &codecs.VP8Payloader{EnablePictureID: true}, rtp.NewRandomSequencer(), 90000)
	var pkts []*rtp.Packet
	for i := range frames {
		frame, _, err := ivf.ParseNextFrame()
		if errors.Is(err, io.EOF) {
			t.Fatalf("the file has %d frames", i)
		}
		if err != nil {
			t.Fatal(err)
		}
		fp := packetizer.Packetize(frame, 3000)
		switch {
		case i == lostFrame:
			continue
		case i == damagedFrame:
			if len(fp) < 3 {
				t.Fatalf("frame %d is %d packets: too few to lose one of the middle", i, len(fp))
			}
			fp = append(fp[:1], fp[2:]...)
		}
		pkts = append(pkts, fp...)
	}
	// Every pair swapped, after the first two packets: pion's sample
	// builder cannot take a packet from before the first one it saw.
	for i := 2; i+1 < len(pkts); i += 2 {
		pkts[i], pkts[i+1] = pkts[i+1], pkts[i]
	}

	r := New(Config{Dir: t.TempDir()})
	defer r.Close()
	src := &fakeSource{}
	s, err := r.start("room", "p-1", "Ann", []Source{src})
	if err != nil {
		t.Fatal(err)
	}
	rec := *src.rec.Load()
	for i, p := range pkts {
		rec.RecordRTP(p)
		if i%100 == 99 {
			testutil.Eventually(t, 5*time.Second, "the recorder keeping up", func() bool { return len(s.in) < 100 })
		}
	}
	testutil.Eventually(t, 5*time.Second, "the recorder taking every packet", func() bool { return len(s.in) == 0 })
	s.Stop()
	s.Wait()
	info := s.Info()
	if info.Error != "" || info.Dropped != 0 {
		t.Fatalf("error %q, %d packets dropped", info.Error, info.Dropped)
	}
	if src.keyframes.Load() == 0 {
		t.Error("no keyframe asked for after the loss")
	}

	out, err := exec.Command(ffprobe, "-v", "error", "-count_frames", "-select_streams", "v",
		"-show_entries", "stream=nb_read_frames,width,height", "-of", "json", info.Path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var probe struct {
		Streams []struct {
			Frames        string `json:"nb_read_frames"`
			Width, Height int
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &probe); err != nil || len(probe.Streams) != 1 {
		t.Fatalf("ffprobe: %v\n%s", err, out)
	}
	got, _ := strconv.Atoi(probe.Streams[0].Frames)
	// Lost: frames 40-44 and 70-74 (keyframes at 45 and 75). The last
	// frames, which waited in the sample builder, are in the file too.
	want := frames - 10
	t.Logf("%d frames of %d recorded, %dx%d", got, frames, probe.Streams[0].Width, probe.Streams[0].Height)
	if got != want {
		t.Errorf("%d frames recorded, want %d", got, want)
	}
	if out, err := exec.Command(ffmpeg, "-v", "error", "-i", info.Path, "-f", "null", "-").CombinedOutput(); err != nil || len(out) != 0 {
		t.Errorf("decoding: %v\n%s", err, out)
	}
}
