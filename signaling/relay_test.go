package signaling_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/signaling"
	"github.com/tessera-rtc/tessera/signaling/client"
)

// fakeRouter sends every join to one node, and records the nodes reported
// unreachable.
type fakeRouter struct {
	url string

	mu          sync.Mutex
	unreachable []string
	routed      int
}

func (r *fakeRouter) RouteJoin(context.Context, string) (signaling.Route, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.routed++
	return signaling.Route{Node: "other", URL: r.url}, nil
}

func (r *fakeRouter) RouteResume(context.Context, string) (signaling.Route, error) {
	return signaling.Route{}, nil
}
func (r *fakeRouter) Relayed(*http.Request) bool { return false }
func (r *fakeRouter) Unreachable(rt signaling.Route) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.unreachable = append(r.unreachable, rt.Node)
}

// TestRelayRefusedIsNotUnreachable: a room's node that answers the relayed
// socket with an HTTP error (over its per-address limit, shutting down)
// lives: it is not reported unreachable, which would place its rooms
// again and have it evict their participants, and the client is told
// unavailable. A node that does not answer at all is reported.
func TestRelayRefusedIsNotUnreachable(t *testing.T) {
	ctx := testutil.Context(t)
	busy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "too many connections from your address", http.StatusTooManyRequests)
	}))
	defer busy.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gone := "ws://" + l.Addr().String() + "/ws"
	_ = l.Close() // nothing listens there any more

	for _, tc := range []struct {
		name, url       string
		wantUnreachable int
	}{
		{"a node answering 429", "ws" + busy.URL[len("http"):] + "/ws", 0},
		{"a node that is gone", gone, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			router := &fakeRouter{url: tc.url}
			srv := st.NewServer(t, st.Options{Signaling: signaling.Config{Router: router}})
			cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			_, err := client.Dial(cctx, srv.URL, client.Options{Room: "r", Name: "n"})
			var ce *client.Error
			if !errors.As(err, &ce) || ce.Code != "unavailable" {
				t.Errorf("join: %v, want unavailable", err)
			}
			router.mu.Lock()
			defer router.mu.Unlock()
			if len(router.unreachable) != tc.wantUnreachable {
				t.Errorf("reported unreachable %d times (%v), want %d", len(router.unreachable), router.unreachable, tc.wantUnreachable)
			}
		})
	}
}

// TestRelayChecksTheRoomName: a join is not routed, and the cluster's
// directory never sees the name, unless the room name is valid.
func TestRelayChecksTheRoomName(t *testing.T) {
	ctx := testutil.Context(t)
	router := &fakeRouter{url: "ws://127.0.0.1:1/ws"}
	srv := st.NewServer(t, st.Options{Signaling: signaling.Config{Router: router}})
	_, err := client.Dial(ctx, srv.URL, client.Options{Room: "no spaces/allowed", Name: "n"})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != "bad-request" {
		t.Errorf("join with a bad room name: %v, want bad-request", err)
	}
	router.mu.Lock()
	defer router.mu.Unlock()
	if router.routed != 0 {
		t.Errorf("a bad room name was routed %d times", router.routed)
	}
}
