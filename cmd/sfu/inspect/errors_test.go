package inspect_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/tessera-rtc/tessera/cmd/sfu/inspect"
	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/signaling"
)

// fakeRegistry fails every operation with err; listed are its rooms.
type fakeRegistry struct {
	listed []string
	err    error
}

func (f fakeRegistry) Rooms(context.Context) []rooms.RoomInfo {
	out := make([]rooms.RoomInfo, len(f.listed))
	for i, n := range f.listed {
		out[i] = rooms.RoomInfo{Name: n}
	}
	return out
}

func (f fakeRegistry) Participants(context.Context, string) ([]*rooms.Participant, error) {
	return nil, f.err
}

func (f fakeRegistry) Participant(context.Context, string, string) (*rooms.Participant, error) {
	return nil, f.err
}
func (f fakeRegistry) Remove(context.Context, string, string) error   { return f.err }
func (f fakeRegistry) CloseRoom(context.Context, string) (int, error) { return 0, f.err }

type fakeEngine struct{}

func (fakeEngine) Totals() sfu.Totals { return sfu.Totals{} }

type fakeSignaling struct{}

func (fakeSignaling) ErrorCounts() map[signaling.Code]uint64 { return nil }
func (fakeSignaling) Sessions() int                          { return 0 }

// TestRegistryErrors maps the registry's errors to statuses: its sentinel
// errors, and an error without one for a room that is gone (404) or still
// there (500).
func TestRegistryErrors(t *testing.T) {
	opaque := errors.New("room closed")
	for _, tc := range []struct {
		reg    fakeRegistry
		status int
		code   string
	}{
		{fakeRegistry{err: fmt.Errorf("%w: %q", rooms.ErrRoomNotFound, "r")}, 404, "not-found"},
		{fakeRegistry{listed: []string{"r"}, err: fmt.Errorf("%w: participant", rooms.ErrNotFound)}, 404, "not-found"},
		{fakeRegistry{listed: []string{"r"}, err: rooms.ErrShutdown}, 503, "unavailable"},
		{fakeRegistry{err: opaque}, 404, "not-found"},
		{fakeRegistry{listed: []string{"r"}, err: opaque}, 500, "internal"},
	} {
		ins, err := inspect.New(inspect.Config{Rooms: tc.reg, Engine: fakeEngine{}, Signaling: fakeSignaling{}, Open: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		for _, req := range []struct{ method, path string }{
			{"DELETE", "/admin/rooms/r"},
			{"DELETE", "/admin/rooms/r/participants/p-1"},
			{"GET", "/debug/participants/r/p-1/stats"},
		} {
			rec := httptest.NewRecorder()
			ins.ServeHTTP(rec, httptest.NewRequest(req.method, req.path, nil))
			if rec.Code != tc.status || errorCode(t, rec.Body.Bytes()) != tc.code {
				t.Errorf("%v: %s %s = %d %s, want %d %s", tc.reg.err, req.method, req.path, rec.Code, rec.Body, tc.status, tc.code)
			}
		}
	}
}
