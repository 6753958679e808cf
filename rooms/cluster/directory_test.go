package cluster

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	"github.com/tessera-rtc/tessera/rooms"
)

// fakeHost is a node's rooms, as the directory sees them.
type fakeHost struct {
	mu      sync.Mutex
	rooms   map[string]int // participants by room
	evicted []string
}

func (h *fakeHost) Hosted(context.Context) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for r, n := range h.rooms {
		if n > 0 {
			out = append(out, r)
		}
	}
	return out
}

func (h *fakeHost) Rooms(context.Context) []rooms.RoomInfo {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []rooms.RoomInfo
	for r, n := range h.rooms {
		info := rooms.RoomInfo{Name: r, MaxParticipants: 10}
		for range n {
			info.Participants = append(info.Participants, rooms.ParticipantInfo{ID: "p", Name: "x"})
		}
		out = append(out, info)
	}
	return out
}

func (h *fakeHost) Evict(_ context.Context, room string) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.evicted = append(h.evicted, room)
	n := h.rooms[room]
	delete(h.rooms, room)
	return n, nil
}

func (h *fakeHost) set(room string, n int) {
	h.mu.Lock()
	h.rooms[room] = n
	h.mu.Unlock()
}

type node struct {
	*Directory
	host *fakeHost
}

func newNode(t *testing.T, mr *miniredis.Miniredis, id string, participants int) node {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	d := New(Config{Client: rdb, NodeID: id, URL: "http://" + id, Lease: 10 * time.Second,
		Load: func() Load { return Load{Participants: participants} }})
	h := &fakeHost{rooms: map[string]int{}}
	d.host = h
	if err := d.Register(context.Background()); err != nil {
		t.Fatal(err)
	}
	return node{d, h}
}

// TestPlacement: a room goes to the least loaded live node, stays there
// while its host renews, and is placed again once the host's lease lapses.
func TestPlacement(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	a := newNode(t, mr, "a", 5)
	b := newNode(t, mr, "b", 2)
	c := newNode(t, mr, "c", 9)

	n, err := a.Place(ctx, "r1")
	if err != nil || n.ID != "b" || n.URL != "http://b" {
		t.Fatalf("placed on %+v, %v; want b, the least loaded", n, err)
	}
	// Any node asking gets the same answer.
	if n, err := c.Place(ctx, "r1"); err != nil || n.ID != "b" {
		t.Fatalf("c sees r1 on %+v, %v", n, err)
	}
	// b hosts it: the claim holds, and a claim by another node is refused.
	if err := b.Claim(ctx, "r1"); err != nil {
		t.Fatal(err)
	}
	if err := a.Claim(ctx, "r1"); !errors.Is(err, rooms.ErrMoved) {
		t.Fatalf("a's claim on b's room: %v, want ErrMoved", err)
	}
	b.host.set("r1", 2)

	// b renews, a and c renew; time passes: r1 stays on b.
	for range 3 {
		mr.FastForward(4 * time.Second)
		for _, x := range []node{a, b, c} {
			x.renew(ctx)
		}
	}
	if n, err := a.Place(ctx, "r1"); err != nil || n.ID != "b" {
		t.Fatalf("r1 moved to %+v, %v while b renewed", n, err)
	}

	// b dies: it stops renewing; past the lease, r1 is placed again, on the
	// least loaded of a and c.
	for range 3 {
		mr.FastForward(4 * time.Second)
		a.renew(ctx)
		c.renew(ctx)
	}
	if n, err := c.Place(ctx, "r1"); err != nil || n.ID != "a" {
		t.Fatalf("after b died r1 is on %+v, %v; want a", n, err)
	}
	nodes, err := a.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range nodes {
		ids = append(ids, n.ID)
	}
	if !slices.Equal(ids, []string{"a", "c"}) {
		t.Errorf("live nodes %v, want [a c]", ids)
	}
}

// TestUnreachableNode: a node that cannot be reached from here loses its
// rooms at once, without waiting for its lease, and is not chosen.
func TestUnreachableNode(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	a := newNode(t, mr, "a", 5)
	b := newNode(t, mr, "b", 1)
	if n, _ := a.Place(ctx, "r"); n.ID != "b" {
		t.Fatalf("placed on %s", n.ID)
	}
	a.Unreachable("b")
	if n, err := a.Place(ctx, "r"); err != nil || n.ID != "a" {
		t.Fatalf("with b unreachable, r is on %+v, %v; want a", n, err)
	}
	if _, ok, _ := a.Locate(ctx, "b"); ok {
		t.Error("an unreachable node is located")
	}
	_ = b
}

// TestRoomTakenElsewhere: a host that was out of reach while its room was
// placed elsewhere sends the room's participants away when it renews.
func TestRoomTakenElsewhere(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	a := newNode(t, mr, "a", 0)
	b := newNode(t, mr, "b", 0)
	if err := a.Claim(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	a.host.set("r", 3)
	// a's lease lapses (a was cut off), and b takes the room.
	mr.FastForward(11 * time.Second)
	if err := b.Claim(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	a.renew(ctx)
	if got := func() []string {
		for range 100 {
			a.host.mu.Lock()
			ev := slices.Clone(a.host.evicted)
			a.host.mu.Unlock()
			if len(ev) > 0 {
				return ev
			}
			time.Sleep(10 * time.Millisecond)
		}
		return nil
	}(); !slices.Equal(got, []string{"r"}) {
		t.Fatalf("evicted %v, want [r]", got)
	}
}

// TestRenewRecovers: a room whose lease lapsed while Redis was away is
// claimed again by its host when Redis answers again; a room emptied is
// released.
func TestRenewRecovers(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	a := newNode(t, mr, "a", 0)
	if err := a.Claim(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	a.host.set("r", 1)
	mr.FlushAll() // Redis restarted, empty
	a.renew(ctx)
	if v, err := mr.Get(roomKey + "r"); err != nil || v != "a" {
		t.Fatalf("placement after the restart: %q, %v", v, err)
	}
	if !a.Healthy() {
		t.Error("not healthy after a good renewal")
	}
	a.host.set("r", 0)
	a.renew(ctx)
	if !mr.Exists(roomKey + "r") {
		t.Error("the placement of a room claimed a moment ago was released before its first participant")
	}
	a.mu.Lock()
	a.renewed["r"] = time.Now().Add(-time.Minute) // claimed long ago
	a.mu.Unlock()
	a.renew(ctx)
	if mr.Exists(roomKey + "r") {
		t.Error("the placement of an emptied room was kept")
	}

	if err := a.Claim(ctx, "kept"); err != nil {
		t.Fatal(err)
	}
	a.host.set("kept", 1)
	mr.SetError("down")
	a.renew(ctx)
	if a.Healthy() {
		t.Error("healthy while Redis fails")
	}
	if err := a.Claim(ctx, "kept"); err != nil {
		t.Errorf("a newcomer to a room hosted here, without Redis: %v", err)
	}
	if _, err := a.Place(ctx, "x"); !errors.Is(err, rooms.ErrUnavailable) {
		t.Errorf("placing without Redis: %v, want ErrUnavailable", err)
	}
	if err := a.Claim(ctx, "x"); !errors.Is(err, rooms.ErrUnavailable) {
		t.Errorf("claiming without Redis: %v, want ErrUnavailable", err)
	}
	mr.SetError("")
}

// TestDrain: a draining node takes no new room and gives up its own.
func TestDrain(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	a := newNode(t, mr, "a", 0)
	b := newNode(t, mr, "b", 7)
	if err := a.Claim(ctx, "r"); err != nil {
		t.Fatal(err)
	}
	a.Drain(ctx)
	if mr.Exists(roomKey + "r") {
		t.Error("a draining node kept its room")
	}
	if err := a.Claim(ctx, "r"); !errors.Is(err, rooms.ErrMoved) {
		t.Errorf("a draining node claimed a room: %v", err)
	}
	// A placement still naming the draining node goes elsewhere.
	if err := mr.Set(roomKey+"old", "a"); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Place(ctx, "old"); err != nil || n.ID != "b" {
		t.Fatalf("a room placed on a draining node is on %+v, %v; want b", n, err)
	}
	if n, err := b.Place(ctx, "r"); err != nil || n.ID != "b" {
		t.Fatalf("r placed on %+v, %v; want b (a drains)", n, err)
	}
	if n, err := b.Place(ctx, "new"); err != nil || n.ID != "b" {
		t.Fatalf("new room placed on %+v, %v; want b", n, err)
	}
}

// TestClusterRooms: every node's rooms, each with its node; the shared
// secret is the same everywhere; a node that leaves takes its records.
func TestClusterRooms(t *testing.T) {
	ctx := context.Background()
	mr := miniredis.RunT(t)
	a := newNode(t, mr, "a", 0)
	b := newNode(t, mr, "b", 0)
	a.host.set("x", 2)
	b.host.set("y", 1)
	b.host.set("empty", 0)
	a.renew(ctx)
	b.renew(ctx)
	infos, err := b.Rooms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range infos {
		got = append(got, r.Name+"@"+r.Node)
	}
	if !slices.Equal(got, []string{"x@a", "y@b"}) || len(infos[0].Participants) != 2 {
		t.Errorf("cluster rooms %v (%+v)", got, infos)
	}
	sa, err1 := a.Secret(ctx)
	sb, err2 := b.Secret(ctx)
	if err1 != nil || err2 != nil || sa == "" || sa != sb {
		t.Errorf("secrets %q %q (%v %v)", sa, sb, err1, err2)
	}
	// Redis restarts empty: the secret the nodes know is put back, and a
	// node that never saw it adopts it.
	mr.FlushAll()
	a.renew(ctx)
	c := newNode(t, mr, "c", 0)
	if sc, err := c.Secret(ctx); err != nil || sc != sa {
		t.Errorf("after a Redis restart a new node's secret is %q (%v), the others' %q", sc, err, sa)
	}
	a.leave()
	if mr.Exists(nodeKey+"a") || mr.Exists(roomsKey+"a") || mr.Exists(roomKey+"x") {
		t.Error("a node that left kept records")
	}
}
