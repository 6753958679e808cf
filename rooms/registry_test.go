package rooms

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/tessera-rtc/tessera/sfu"
)

// recorder is a Conn that keeps what it is sent.
type recorder struct {
	mu     sync.Mutex
	events []Event
	closed error
}

func (r *recorder) Send(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) Close(reason error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = reason
}

func (r *recorder) all() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Event(nil), r.events...)
}

func newRegistry(t *testing.T, cfg Config) *Local {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := sfu.NewEngine(sfu.Config{Loopback: true, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := NewLocal(cfg, e, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = reg.Shutdown(context.Background())
		_ = e.Close()
	})
	return reg
}

func join(t *testing.T, reg *Local, room, name string) (*Participant, *recorder) {
	t.Helper()
	rec := &recorder{}
	p, err := reg.Join(context.Background(), JoinRequest{Room: room, Name: name, AutoSubscribe: true, Conn: rec})
	if err != nil {
		t.Fatalf("join %s/%s: %v", room, name, err)
	}
	return p, rec
}

func TestJoinPolicy(t *testing.T) {
	reg := newRegistry(t, Config{
		OnDemand: false, MaxParticipants: 2,
		Listed: []RoomConfig{{Name: "one", MaxParticipants: 1}, {Name: "two"}},
	})
	tests := []struct {
		room, name string
		want       error
	}{
		{"one", "a", nil},
		{"one", "b", ErrRoomFull},
		{"two", "a", nil},
		{"two", "b", nil},
		{"two", "c", ErrRoomFull},
		{"three", "a", ErrRoomNotFound},
		{"bad name", "a", ErrInvalid},
		{"", "a", ErrInvalid},
		{"two", "", ErrInvalid},
		{"two", "tab\there", ErrInvalid},
	}
	for _, tc := range tests {
		_, err := reg.Join(context.Background(), JoinRequest{Room: tc.room, Name: tc.name, Conn: &recorder{}})
		if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
			t.Errorf("join %q as %q: %v, want %v", tc.room, tc.name, err, tc.want)
		}
	}
}

// TestListedRoomsValidated: a bad list of rooms is refused, and leaves no
// room's goroutine running (the good rooms before the bad one included).
func TestListedRoomsValidated(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, cfg := range []Config{
		{MaxParticipants: 1, Listed: []RoomConfig{{Name: "a b"}}},
		{MaxParticipants: 1, Listed: []RoomConfig{{Name: "a"}, {Name: "b"}, {Name: "a"}}},
		{MaxParticipants: 1, Listed: []RoomConfig{{Name: "a"}, {Name: "b"}, {Name: "c/d"}}},
		{MaxParticipants: 0},
	} {
		if _, err := NewLocal(cfg, nil, nil); err == nil {
			t.Errorf("NewLocal(%+v) accepted", cfg)
		}
	}
	if after := runtime.NumGoroutine(); after > before {
		t.Errorf("refused configurations left %d goroutines running", after-before)
	}
}

func TestMembershipEvents(t *testing.T) {
	reg := newRegistry(t, Config{OnDemand: true, MaxParticipants: 10})
	a, recA := join(t, reg, "r", "Ann")
	b, recB := join(t, reg, "r", "Bob")

	evA := recA.all()
	if j, ok := evA[0].(Joined); !ok || j.Self.ID != a.ID() || len(j.Others) != 0 {
		t.Fatalf("Ann's first event = %#v", evA[0])
	}
	if pj, ok := evA[1].(ParticipantJoined); !ok || pj.Participant.ID != b.ID() || pj.Participant.Name != "Bob" {
		t.Fatalf("Ann's second event = %#v", evA[1])
	}
	j, ok := recB.all()[0].(Joined)
	if !ok || len(j.Others) != 1 || j.Others[0].ID != a.ID() {
		t.Fatalf("Bob's joined = %#v", recB.all()[0])
	}

	b.Leave()
	b.Leave() // twice is harmless
	evA = recA.all()
	if pl, ok := evA[len(evA)-1].(ParticipantLeft); !ok || pl.ID != b.ID() {
		t.Fatalf("Ann's last event = %#v", evA[len(evA)-1])
	}
	if err := b.Subscribe(context.Background(), []string{"t"}); err != nil && !errors.Is(err, ErrNotFound) {
		t.Errorf("subscribe after leaving: %v", err)
	}
	rooms := reg.Rooms(context.Background())
	if len(rooms) != 1 || len(rooms[0].Participants) != 1 {
		t.Fatalf("rooms = %+v", rooms)
	}
}

func TestEmptyRoomsGoListedStay(t *testing.T) {
	reg := newRegistry(t, Config{OnDemand: true, MaxParticipants: 10, Listed: []RoomConfig{{Name: "lobby"}}})
	p, _ := join(t, reg, "pop-up", "a")
	q, _ := join(t, reg, "lobby", "b")
	p.Leave()
	q.Leave()
	rooms := reg.Rooms(context.Background())
	if len(rooms) != 1 || rooms[0].Name != "lobby" || len(rooms[0].Participants) != 0 {
		t.Fatalf("rooms = %+v, want only the empty listed lobby", rooms)
	}
	// The removed room comes back on the next join.
	join(t, reg, "pop-up", "c")
	if n := len(reg.Rooms(context.Background())); n != 2 {
		t.Fatalf("%d rooms", n)
	}
}

// TestConcurrentChurn joins and leaves one on-demand room from many
// goroutines, so that rooms empty and close while others join them.
func TestConcurrentChurn(t *testing.T) {
	reg := newRegistry(t, Config{OnDemand: true, MaxParticipants: 5})
	var wg sync.WaitGroup
	var mu sync.Mutex
	full := 0
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 15 {
				p, err := reg.Join(context.Background(), JoinRequest{Room: "churn", Name: fmt.Sprintf("g%d-%d", g, i), Conn: &recorder{}})
				if errors.Is(err, ErrRoomFull) {
					mu.Lock()
					full++
					mu.Unlock()
					continue
				}
				if err != nil {
					t.Error(err)
					return
				}
				p.Leave()
			}
		}()
	}
	wg.Wait()
	if rooms := reg.Rooms(context.Background()); len(rooms) != 0 {
		t.Fatalf("rooms left after churn: %+v", rooms)
	}
	t.Logf("%d joins refused as full", full)
}

func TestShutdownTellsEveryone(t *testing.T) {
	reg := newRegistry(t, Config{OnDemand: true, MaxParticipants: 10})
	_, a := join(t, reg, "x", "a")
	_, b := join(t, reg, "y", "b")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := reg.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range []*recorder{a, b} {
		r.mu.Lock()
		closed := r.closed
		r.mu.Unlock()
		if !errors.Is(closed, ErrShutdown) {
			t.Errorf("conn closed with %v, want ErrShutdown", closed)
		}
	}
	if _, err := reg.Join(ctx, JoinRequest{Room: "x", Name: "late", Conn: &recorder{}}); !errors.Is(err, ErrShutdown) {
		t.Errorf("join after shutdown: %v", err)
	}
}

func TestOperatorRemovals(t *testing.T) {
	reg := newRegistry(t, Config{OnDemand: true, MaxParticipants: 10, Listed: []RoomConfig{{Name: "keep"}}})
	a, recA := join(t, reg, "r", "a")
	_, recB := join(t, reg, "r", "b")
	ctx := context.Background()
	if err := reg.Remove(ctx, "r", a.ID()); err != nil {
		t.Fatal(err)
	}
	recA.mu.Lock()
	if !errors.Is(recA.closed, ErrRemoved) {
		t.Errorf("removed participant's conn closed with %v", recA.closed)
	}
	recA.mu.Unlock()
	evB := recB.all()
	if pl, ok := evB[len(evB)-1].(ParticipantLeft); !ok || pl.ID != a.ID() {
		t.Errorf("b's last event = %#v", evB[len(evB)-1])
	}
	if err := reg.Remove(ctx, "r", a.ID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("removing twice: %v", err)
	}
	if err := reg.Remove(ctx, "nope", "x"); !errors.Is(err, ErrRoomNotFound) {
		t.Errorf("unknown room: %v", err)
	}

	join(t, reg, "keep", "c")
	if n, err := reg.CloseRoom(ctx, "r"); err != nil || n != 1 {
		t.Errorf("close r: %d %v", n, err)
	}
	if n, err := reg.CloseRoom(ctx, "keep"); err != nil || n != 1 {
		t.Errorf("close keep: %d %v", n, err)
	}
	rooms := reg.Rooms(ctx)
	if len(rooms) != 1 || rooms[0].Name != "keep" || len(rooms[0].Participants) != 0 {
		t.Errorf("rooms after closing: %+v", rooms)
	}
}
