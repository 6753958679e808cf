package signaling_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/sfu/record"
	"github.com/tessera-rtc/tessera/signaling/client"
)

func recordingServer(t *testing.T, cfg record.Config) (*st.Server, *record.Recorder) {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	cfg.Logger = st.Logger()
	rec := record.New(cfg)
	t.Cleanup(rec.Close)
	srv := st.NewServer(t, st.Options{Rooms: rooms.Config{
		OnDemand: true, MaxParticipants: 10, Recorder: rec,
		Listed: []rooms.RoomConfig{{Name: "rec", Record: true}},
	}})
	return srv, rec
}

// recordingsOf lists the recordings of participant id.
func recordingsOf(rec *record.Recorder, id string) []record.Info {
	var out []record.Info
	for _, i := range rec.Recordings() {
		if i.Participant == id {
			out = append(out, i)
		}
	}
	return out
}

// TestRecordingFollowsTracks: in a recorded room, a participant's file
// holds what it publishes; publishing another track ends that file and
// starts one with both; leaving finishes it. Files sit in the room's
// directory, named after the participant.
func TestRecordingFollowsTracks(t *testing.T) {
	ctx := testutil.Context(t)
	dir := t.TempDir()
	srv, rec := recordingServer(t, record.Config{Dir: dir})
	c := srv.Join(ctx, "rec", client.Options{Name: "Ann/../x"})
	st.Publish(ctx, t, c, "audio")
	testutil.Eventually(t, 5*time.Second, "a file with the audio", func() bool {
		r := recordingsOf(rec, c.Self.ID)
		return len(r) == 1 && r[0].Active && r[0].Bytes > 1000
	})
	st.Publish(ctx, t, c, "video")
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("recordings: %+v", rec.Recordings())
		}
	})
	testutil.Eventually(t, 5*time.Second, "the first file finished, a second one written", func() bool {
		r := recordingsOf(rec, c.Self.ID)
		return len(r) == 2 && !r[0].Active && r[1].Active && r[1].Bytes > 1000
	})
	if err := c.Leave(); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, "both files finished", func() bool {
		r := recordingsOf(rec, c.Self.ID)
		return len(r) == 2 && !r[0].Active && !r[1].Active
	})
	for _, r := range recordingsOf(rec, c.Self.ID) {
		if r.Error != "" {
			t.Errorf("%s: %s", r.Path, r.Error)
		}
		if filepath.Dir(r.Path) != filepath.Join(dir, "rec") || !strings.Contains(filepath.Base(r.Path), "Ann____x-"+c.Self.ID) || !strings.HasSuffix(r.Path, ".webm") {
			t.Errorf("file %s: want it in %s, named after Ann____x and %s", r.Path, filepath.Join(dir, "rec"), c.Self.ID)
		}
		fi, err := os.Stat(r.Path)
		if err != nil || fi.Size() != r.Bytes {
			t.Errorf("%s: %v, %d bytes on disk, %d written", r.Path, err, fi.Size(), r.Bytes)
		}
	}
}

// TestRecordingStopsWithAReason: a file ends at its duration limit, and
// when the disk is full; each says why, is not started again for the same
// tracks, and the call goes on.
func TestRecordingStopsWithAReason(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  record.Config
		want string
	}{
		{"duration limit", record.Config{MaxDuration: time.Second}, "recording limit reached: 1s"},
		{"size limit", record.Config{MaxBytes: 20_000}, "recording limit reached: 20000 bytes"},
		{"disk full", record.Config{Create: func(string) (*os.File, error) { return os.OpenFile("/dev/full", os.O_RDWR, 0) }}, "disk full"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := os.Stat("/dev/full"); err != nil && tc.cfg.Create != nil {
				t.Skip("no /dev/full here")
			}
			ctx := testutil.Context(t)
			srv, rec := recordingServer(t, tc.cfg)
			a := srv.Join(ctx, "rec")
			b := srv.Join(ctx, "rec")
			st.Publish(ctx, t, a, "video")
			st.Publish(ctx, t, a, "audio")
			got := receiveTracks(t, b, 2)
			testutil.Eventually(t, 10*time.Second, "the file stopped", func() bool {
				r := recordingsOf(rec, a.Self.ID)
				return len(r) == 1 && !r[0].Active && r[0].Error != ""
			})
			r := recordingsOf(rec, a.Self.ID)[0]
			if !strings.Contains(r.Error, tc.want) {
				t.Errorf("error %q, want %q", r.Error, tc.want)
			}
			// Not started again, and the call is unaffected.
			counts := map[uint32]int64{}
			for _, g := range got {
				counts[g.Source] = g.Packets.Load()
			}
			time.Sleep(time.Second)
			if n := len(recordingsOf(rec, a.Self.ID)); n != 1 {
				t.Errorf("%d files after the stop, want 1", n)
			}
			for _, g := range got {
				if g.Packets.Load() < counts[g.Source]+20 || g.Corrupt.Load() != 0 {
					t.Errorf("media after the stop: %d packets (from %d), %d corrupt", g.Packets.Load(), counts[g.Source], g.Corrupt.Load())
				}
			}
		})
	}
}

// TestRecordingOnAndOff: recording a room that does not record starts
// files for everyone who publishes; stopping finishes them. A server
// without a recorder says so.
func TestRecordingOnAndOff(t *testing.T) {
	ctx := testutil.Context(t)
	srv, rec := recordingServer(t, record.Config{})
	a := srv.Join(ctx, "plain")
	st.Publish(ctx, t, a, "audio")
	time.Sleep(500 * time.Millisecond)
	if n := len(rec.Recordings()); n != 0 {
		t.Fatalf("%d recordings in a room that does not record", n)
	}
	mark := a.Mark()
	if err := srv.Registry.SetRecording(ctx, "plain", true); err != nil {
		t.Fatal(err)
	}
	// Everyone in the room is told, and a newcomer learns it on joining.
	waitEvent(t, ctx, a, mark, "recording on", func(e client.Event) bool { return e.Type == "recording" && e.Recording })
	late := srv.Join(ctx, "plain")
	if ev := late.Events()[0]; ev.Type != "joined" || !ev.Recording {
		t.Errorf("a newcomer's joined: %s, recording %v", ev.Type, ev.Recording)
	}
	testutil.Eventually(t, 5*time.Second, "a file", func() bool {
		r := recordingsOf(rec, a.Self.ID)
		return len(r) == 1 && r[0].Active && r[0].Bytes > 0
	})
	mark = a.Mark()
	if err := srv.Registry.SetRecording(ctx, "plain", false); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, ctx, a, mark, "recording off", func(e client.Event) bool { return e.Type == "recording" && !e.Recording })
	testutil.Eventually(t, 5*time.Second, "the file finished", func() bool {
		r := recordingsOf(rec, a.Self.ID)
		return len(r) == 1 && !r[0].Active && r[0].Error == ""
	})
	if err := srv.Registry.SetRecording(ctx, "nosuch", true); err == nil {
		t.Error("recording a room that does not exist: no error")
	}

	plain := st.NewServer(t, st.Options{})
	if err := plain.Registry.SetRecording(ctx, "any", true); err == nil || !strings.Contains(err.Error(), "recording.dir") {
		t.Errorf("a server without a recorder: %v", err)
	}
}
