package testutil

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/ivfreader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// Encoded is real media a browser can decode, made by ffmpeg: H264
// (constrained baseline, Annex B, 30 frames/s, a keyframe every half second, as
// OBS sends), the same in VP8 (IVF), and Opus in Ogg, ten seconds each.
type Encoded struct {
	H264, VP8, Ogg string // file paths
	AV1            string // made by EncodeAV1
}

// EncodeMedia makes the files in a temporary directory; without ffmpeg the
// test is skipped (fails under CI).
func EncodeMedia(t testing.TB) Encoded {
	t.Helper()
	ffmpeg := RequireTool(t, "ffmpeg", "ffmpeg")
	dir := t.TempDir()
	e := Encoded{H264: filepath.Join(dir, "video.h264"), VP8: filepath.Join(dir, "video.ivf"), Ogg: filepath.Join(dir, "audio.ogg")}
	for _, args := range [][]string{
		{"-f", "lavfi", "-i", "testsrc=size=640x360:rate=30", "-t", "10", "-c:v", "libx264",
			"-profile:v", "baseline", "-level", "3.1", "-pix_fmt", "yuv420p", "-bf", "0", "-g", "15",
			"-x264-params", "keyint=15:min-keyint=15:scenecut=0:repeat-headers=1", "-f", "h264", e.H264},
		{"-f", "lavfi", "-i", "testsrc=size=640x360:rate=30", "-t", "10", "-c:v", "libvpx",
			"-deadline", "realtime", "-cpu-used", "8", "-b:v", "1M", "-g", "15", "-keyint_min", "15", "-f", "ivf", e.VP8},
		{"-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", "10", "-c:a", "libopus",
			"-b:a", "48k", "-page_duration", "20000", "-f", "ogg", e.Ogg},
	} {
		cmd := exec.Command(ffmpeg, append([]string{"-v", "error", "-y"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
		}
	}
	return e
}

// EncodeAV1 makes 10 s of the test pattern in AV1 (libaom, 4:2:0, a
// keyframe every half second, each with its sequence header) in an IVF
// file, and returns its path; without ffmpeg the test is skipped (fails
// under CI).
func EncodeAV1(t testing.TB) string {
	t.Helper()
	ffmpeg := RequireTool(t, "ffmpeg", "ffmpeg")
	path := filepath.Join(t.TempDir(), "video-av1.ivf")
	cmd := exec.Command(ffmpeg, "-v", "error", "-y", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=30", "-t", "10",
		"-pix_fmt", "yuv420p", "-c:v", "libaom-av1", "-usage", "realtime", "-cpu-used", "8", "-b:v", "1M",
		"-g", "15", "-keyint_min", "15", "-f", "ivf", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg (AV1): %v\n%s", err, out)
	}
	return path
}

// play sends the samples of a file on track, one per tick, from the start
// again at its end, until ctx ends. open reads the file anew; its next
// returns the following sample, or io.EOF at the end.
func play(ctx context.Context, track *webrtc.TrackLocalStaticSample, path string, tick time.Duration,
	open func(r io.Reader) (next func() (media.Sample, error), err error)) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		next, err := open(bytes.NewReader(data))
		if err != nil {
			return err
		}
		for {
			sample, err := next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return err
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			if err := track.WriteSample(sample); err != nil {
				return err
			}
		}
	}
}

const frameDuration = time.Second / 30

// PlayH264 sends the file's frames on track at 30 frames/s, from the start
// again at its end, until ctx ends.
func PlayH264(ctx context.Context, track *webrtc.TrackLocalStaticSample, path string) error {
	return play(ctx, track, path, frameDuration, func(in io.Reader) (func() (media.Sample, error), error) {
		r, err := h264reader.NewReader(in)
		if err != nil {
			return nil, err
		}
		return func() (media.Sample, error) {
			var frame []byte // the NAL units of one frame, Annex B
			for {
				nal, err := r.NextNAL()
				if err != nil {
					return media.Sample{}, err
				}
				frame = append(frame, 0, 0, 0, 1)
				frame = append(frame, nal.Data...)
				// Parameter sets and the like go with the next slice.
				if nal.UnitType == h264reader.NalUnitTypeCodedSliceIdr || nal.UnitType == h264reader.NalUnitTypeCodedSliceNonIdr {
					return media.Sample{Data: frame, Duration: frameDuration}, nil
				}
			}
		}, nil
	})
}

// PlayIVF sends the file's VP8 frames on track at 30 frames/s, from the
// start again at its end, until ctx ends.
func PlayIVF(ctx context.Context, track *webrtc.TrackLocalStaticSample, path string) error {
	return play(ctx, track, path, frameDuration, func(in io.Reader) (func() (media.Sample, error), error) {
		r, _, err := ivfreader.NewWith(in)
		if err != nil {
			return nil, err
		}
		return func() (media.Sample, error) {
			frame, _, err := r.ParseNextFrame()
			return media.Sample{Data: frame, Duration: frameDuration}, err
		}, nil
	})
}

// PlayOgg sends the file's Opus pages (20 ms each) on track in real time,
// from the start again at its end, until ctx ends.
func PlayOgg(ctx context.Context, track *webrtc.TrackLocalStaticSample, path string) error {
	return play(ctx, track, path, 20*time.Millisecond, func(in io.Reader) (func() (media.Sample, error), error) {
		r, _, err := oggreader.NewWith(in)
		if err != nil {
			return nil, err
		}
		var last uint64
		return func() (media.Sample, error) {
			for {
				page, hdr, err := r.ParseNextPage()
				if err != nil {
					return media.Sample{}, err
				}
				samples := hdr.GranulePosition - last
				last = hdr.GranulePosition
				if samples > 0 && samples <= 48000 { // not a header page
					return media.Sample{Data: page, Duration: time.Duration(samples) * time.Second / 48000}, nil
				}
			}
		}, nil
	})
}
