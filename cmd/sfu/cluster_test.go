package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tessera-rtc/tessera/cmd/sfu/inspect"
	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/signaling/client"
)

// clusterConfig is a node's configuration in the tests' clusters.
func clusterConfig(redisAddr, node string) string {
	return fmt.Sprintf(`listen: 127.0.0.1:0
ice:
  loopback: true
  udp_port: 0
  connect_timeout: 5s
admin:
  open: true
cluster:
  redis:
    address: %s
  node_id: %s
shutdown_timeout: 5s
`, redisAddr, node)
}

// call is a participant's client, what it publishes, and what it gets.
type call struct {
	c    *client.Client
	got  map[string]*st.Received // by track id
	pubs []*st.Publisher
}

// joinCall joins room through the node at addr, publishes audio and
// video, and receives what the room's others publish.
func joinCall(ctx context.Context, t *testing.T, addr, room, name string) *call {
	t.Helper()
	c, err := client.Dial(ctx, "ws://"+addr+"/ws", client.Options{Room: room, Name: name})
	if err != nil {
		t.Fatalf("%s joins %s through %s: %v", name, room, addr, err)
	}
	t.Cleanup(c.Close)
	p := &call{c: c, got: map[string]*st.Received{}}
	p.pubs = []*st.Publisher{st.Publish(ctx, t, c, "audio"), st.Publish(ctx, t, c, "video")}
	return p
}

// receive takes n tracks of the call's client, within d.
func (p *call) receive(t *testing.T, n int, d time.Duration) {
	t.Helper()
	timeout := time.After(d)
	for len(p.got) < n {
		select {
		case tr := <-p.c.Tracks():
			p.got[tr.ID()] = st.Receive(tr)
		case <-timeout:
			t.Fatalf("%s received %d tracks, want %d", p.c.Self.Name, len(p.got), n)
		}
	}
}

// flowing reports whether every track received has had at least n intact
// packets, and none corrupt.
func (p *call) flowing(t *testing.T, n int64) bool {
	for id, r := range p.got {
		if c := r.Corrupt.Load(); c > 0 {
			t.Fatalf("%s: %d corrupt packets on %s", p.c.Self.Name, c, id)
		}
		if r.Packets.Load() < n {
			return false
		}
	}
	return len(p.got) > 0
}

// clusterRooms reads /admin/rooms of a node.
func clusterRooms(t *testing.T, addr string) inspect.RoomList {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/admin/rooms")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var list inspect.RoomList
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/admin/rooms of %s: %d, %v", addr, resp.StatusCode, err)
	}
	return list
}

// hostOf is the node hosting room, and its participants, as addr's
// /admin/rooms shows them.
func hostOf(t *testing.T, addr, room string) (string, int) {
	t.Helper()
	for _, r := range clusterRooms(t, addr).Rooms {
		if r.Name == room {
			return r.Node, len(r.Participants)
		}
	}
	return "", 0
}

// TestClusterTwoProcesses: two sfu processes with one Redis. Participants
// whose sockets go to different nodes meet in one room, and each gets the
// other's media intact; either node's /admin/rooms and /metrics show the
// room with its node. Killing the hosting node: the participants come
// back on the other node and media flows again within 10 s.
func TestClusterTwoProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	redis := testutil.StartRedis(t)
	procs := map[string]*nodeProc{}
	for _, id := range []string{"node-a", "node-b"} {
		cmd, addr, logs := startProcess(t, clusterConfig(redis.Addr, id))
		procs[id] = &nodeProc{addr: addr, kill: func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }, logs: logs}
	}
	a, b := procs["node-a"].addr, procs["node-b"].addr
	t.Cleanup(func() {
		if t.Failed() {
			for id, p := range procs {
				t.Logf("%s's log:\n%s", id, p.logs.String())
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ann := joinCall(ctx, t, a, "call", "ann")
	bob := joinCall(ctx, t, b, "call", "bob")
	ann.receive(t, 2, 15*time.Second)
	bob.receive(t, 2, 15*time.Second)
	testutil.Eventually(t, 10*time.Second, "media flows both ways across the nodes", func() bool {
		return ann.flowing(t, 100) && bob.flowing(t, 100)
	})

	host, n := hostOf(t, a, "call")
	if host2, _ := hostOf(t, b, "call"); host == "" || host2 != host || n != 2 {
		t.Fatalf("node-a lists call on %q with %d participants, node-b on %q", host, n, host2)
	}
	resp, err := http.Get("http://" + b + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if want := fmt.Sprintf(`tessera_cluster_room_participants{node=%q,room="call"} 2`, host); !strings.Contains(string(metrics), want) {
		t.Errorf("node-b's /metrics lacks %s", want)
	}
	if !strings.Contains(string(metrics), "tessera_cluster_nodes 2") {
		t.Error("node-b's /metrics does not count 2 nodes")
	}

	// Kill the hosting node.
	other := "node-a"
	if host == "node-a" {
		other = "node-b"
	}
	survivor := procs[other].addr
	killed := time.Now()
	procs[host].kill()

	// Each client notices its socket end, tries to resume through the
	// surviving node (as a client behind one address would), is told its
	// participant is gone, and joins afresh there.
	back := map[string]*call{}
	for _, p := range []*call{ann, bob} {
		select {
		case <-p.c.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("%s's socket is still open 10 s after its room's node died", p.c.Self.Name)
		}
		_, err := p.c.ResumeAt(ctx, "ws://"+survivor+"/ws")
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != "not-found" {
			t.Fatalf("%s's resume after its node died: %v, want not-found", p.c.Self.Name, err)
		}
		p.c.Close()
		back[p.c.Self.Name] = joinCall(ctx, t, survivor, "call", p.c.Self.Name+"2")
	}
	for _, p := range back {
		p.receive(t, 2, 15*time.Second)
	}
	testutil.Eventually(t, 15*time.Second, "media flows again on the surviving node", func() bool {
		return back["ann"].flowing(t, 10) && back["bob"].flowing(t, 10)
	})
	took := time.Since(killed)
	t.Logf("media back for every participant %s after the hosting node was killed", took.Round(10*time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("media came back after %s, want within 10 s", took)
	}
	// The survivor lists the room on itself once it renews (every 2 s);
	// the dead node's records lapse with its lease (10 s).
	testutil.Eventually(t, 5*time.Second, "the survivor lists the call on itself", func() bool {
		for _, r := range clusterRooms(t, survivor).Rooms {
			if r.Name == "call" && r.Node == other && len(r.Participants) == 2 {
				return true
			}
		}
		return false
	})
}

type nodeProc struct {
	addr string
	kill func()
	logs interface{ String() string }
}
