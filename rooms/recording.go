package rooms

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tessera-rtc/tessera/sfu"
)

// Recording: while a room records, each participant who publishes has a
// file (sfu/record) with the tracks it publishes; when they change, that
// file ends and a new one starts. Changes that come together (a camera and
// a microphone published in one offer) make one new file: the room waits
// recordSettle before it brings the files in line.

// recordSettle is how long the room waits after a change of tracks before
// it starts or replaces files.
const recordSettle = 100 * time.Millisecond

// ErrNoRecorder: recording was asked of a server that has no recording
// directory configured.
var ErrNoRecorder = fmt.Errorf("%w: recording is not configured on this server (recording.dir)", ErrInvalid)

// SetRecording starts (on) or stops recording room. Stopping ends every
// file of the room; they are finished in the background.
func (l *Local) SetRecording(ctx context.Context, name string, on bool) error {
	if l.rec == nil {
		return ErrNoRecorder
	}
	l.mu.Lock()
	r := l.rooms[name]
	l.mu.Unlock()
	if r == nil {
		return fmt.Errorf("%w: %q", ErrRoomNotFound, name)
	}
	err := r.do(ctx, func() {
		if r.recording == on {
			return
		}
		r.recording = on
		r.reg.log.Info("room recording", "room", r.name, "on", on)
		r.broadcast(Recording{On: on}, nil)
		if on {
			r.syncRecordings()
		} else {
			r.stopRecordings()
		}
	})
	if errors.Is(err, errRoomClosed) {
		return fmt.Errorf("%w: %q", ErrRoomNotFound, name)
	}
	return err
}

// scheduleRecordings brings the files in line after recordSettle.
func (r *room) scheduleRecordings() {
	if (!r.recording && len(r.recs) == 0) || r.recPending {
		return
	}
	r.recPending = true
	time.AfterFunc(recordSettle, func() { r.post(r.syncRecordings) })
}

// syncRecordings gives every participant who publishes a file with its
// current tracks. A file that ended by itself (its limit, a full disk) is
// not started again until the participant's tracks change.
func (r *room) syncRecordings() {
	r.recPending = false
	for p, s := range r.recs {
		if !r.recording || p.left || !slices.Equal(s.Tracks(), trackIDs(p.published)) {
			s.Stop()
			delete(r.recs, p)
		}
	}
	if !r.recording {
		return
	}
	for _, p := range r.parts {
		if r.recs[p] != nil || len(p.published) == 0 {
			continue
		}
		s, err := r.reg.rec.Start(r.name, p.id, p.name, slices.Clone(p.published))
		if err != nil {
			p.log.Warn("not recorded", "err", err)
			continue
		}
		r.recs[p] = s
	}
}

// stopRecordings ends every file of the room.
func (r *room) stopRecordings() {
	for p, s := range r.recs {
		s.Stop()
		delete(r.recs, p)
	}
}

func trackIDs(ups []*sfu.UpTrack) []string {
	out := make([]string, len(ups))
	for i, u := range ups {
		out[i] = u.ID()
	}
	return out
}
