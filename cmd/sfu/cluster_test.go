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
	"github.com/tessera-rtc/tessera/internal/webtest"
	"github.com/tessera-rtc/tessera/rooms"
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

// callAcross joins ann through node a and bob through node b into room
// "call", each publishing audio and video, and waits until each gets the
// other's media.
func callAcross(ctx context.Context, t *testing.T, a, b string) (ann, bob *call) {
	t.Helper()
	ann = joinCall(ctx, t, a, "call", "ann")
	bob = joinCall(ctx, t, b, "call", "bob")
	ann.receive(t, 2, 15*time.Second)
	bob.receive(t, 2, 15*time.Second)
	testutil.Eventually(t, 10*time.Second, "media flows both ways across the nodes", func() bool {
		return ann.flowing(t, 100) && bob.flowing(t, 100)
	})
	return ann, bob
}

// comeBack waits until each call's socket ends, checks why (told), and
// joins the call's person again, through the node at via, as name+"2";
// it returns once their media flows again.
func comeBack(ctx context.Context, t *testing.T, via string, calls []*call, told func(*call)) {
	t.Helper()
	back := map[string]*call{}
	for _, p := range calls {
		select {
		case <-p.c.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("%s's socket is still open 10 s after its room's node went", p.c.Self.Name)
		}
		told(p)
		p.c.Close()
		back[p.c.Self.Name] = joinCall(ctx, t, via, "call", p.c.Self.Name+"2")
	}
	for _, p := range back {
		p.receive(t, len(calls), 15*time.Second)
	}
	testutil.Eventually(t, 15*time.Second, "media flows again on "+via, func() bool {
		for _, p := range back {
			if !p.flowing(t, 10) {
				return false
			}
		}
		return true
	})
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

// waitHost waits until addr's /admin/rooms lists room with n participants
// (nodes publish their rooms every 2 s), and returns its node; node, when
// given, must be it.
func waitHost(t *testing.T, addr, room, node string, n int) string {
	t.Helper()
	host := ""
	testutil.Eventually(t, 6*time.Second, fmt.Sprintf("%s lists %s with %d participants on %q", addr, room, n, node), func() bool {
		for _, r := range clusterRooms(t, addr).Rooms {
			if r.Name == room && len(r.Participants) == n && (node == "" || r.Node == node) {
				host = r.Node
				return true
			}
		}
		return false
	})
	return host
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

	ann, bob := callAcross(ctx, t, a, b)
	host := waitHost(t, a, "call", "", 2)
	waitHost(t, b, "call", host, 2)
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
	resp, err = http.Get("http://" + b + "/debug/rooms")
	if err != nil {
		t.Fatal(err)
	}
	var snap inspect.Snapshot
	err = json.NewDecoder(resp.Body).Decode(&snap)
	resp.Body.Close()
	if err != nil || snap.Cluster == nil || snap.Cluster.Node != "node-b" || len(snap.Cluster.Nodes) != 2 ||
		len(snap.Cluster.Rooms) != 1 || snap.Cluster.Rooms[0].Node != host || len(snap.Cluster.Rooms[0].Participants) != 2 {
		t.Errorf("node-b's /debug/rooms cluster part: %+v (%v)", snap.Cluster, err)
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
	comeBack(ctx, t, survivor, []*call{ann, bob}, func(p *call) {
		_, err := p.c.ResumeAt(ctx, "ws://"+survivor+"/ws")
		var ce *client.Error
		if !errors.As(err, &ce) || ce.Code != "not-found" {
			t.Fatalf("%s's resume after its node died: %v, want not-found", p.c.Self.Name, err)
		}
	})
	took := time.Since(killed)
	t.Logf("media back for every participant %s after the hosting node was killed", took.Round(10*time.Millisecond))
	if took > 10*time.Second {
		t.Errorf("media came back after %s, want within 10 s", took)
	}
	// The dead node's records lapse with its lease (10 s).
	waitHost(t, survivor, "call", other, 2)
}

type nodeProc struct {
	addr string
	kill func()
	logs interface{ String() string }
}

// startNode runs a node in this process until stop (or the test's end).
func startNode(t *testing.T, config string) (addr string, stop func()) {
	t.Helper()
	logs := &lockedBuffer{}
	addr, stop = startStoppable(t, logs, "--config", writeConfig(t, config))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of the node at %s:\n%s", addr, logs.String())
		}
	})
	return addr, stop
}

// longestGap is the longest time any track of the calls went without a
// packet since their gaps were reset.
func longestGap(calls ...*call) time.Duration {
	var longest time.Duration
	for _, p := range calls {
		for _, r := range p.got {
			if g, _, _ := r.LongestGap(); g > longest {
				longest = g
			}
		}
	}
	return longest
}

// TestClusterRedisOutage: with Redis stopped for 10 s a call across two
// nodes goes on untouched, and newcomers to its room get in; only a new
// room, which needs the directory, is refused, with a clear error. When
// Redis is back (empty, as after a restart) the nodes register again and
// new rooms are placed.
func TestClusterRedisOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	redis := testutil.StartRedis(t)
	a, _ := startNode(t, clusterConfig(redis.Addr, "node-a"))
	b, _ := startNode(t, clusterConfig(redis.Addr, "node-b"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	ann, bob := callAcross(ctx, t, a, b)
	host := waitHost(t, a, "call", "", 2)
	hostAddr := map[string]string{"node-a": a, "node-b": b}[host]
	for _, p := range []*call{ann, bob} {
		for _, r := range p.got {
			r.ResetGap()
		}
	}

	redis.Stop()
	time.Sleep(2 * time.Second) // a renewal or two fail

	// A newcomer to the call, through its node, gets in.
	cy, err := client.Dial(ctx, "ws://"+hostAddr+"/ws", client.Options{Room: "call", Name: "cy"})
	if err != nil {
		t.Fatalf("a newcomer to a hosted room while Redis is away: %v", err)
	}
	cy.Close()
	// A new room needs the directory.
	_, err = client.Dial(ctx, "ws://"+b+"/ws", client.Options{Room: "new", Name: "dee"})
	var ce *client.Error
	if !errors.As(err, &ce) || ce.Code != "unavailable" {
		t.Errorf("a new room while Redis is away: %v, want unavailable", err)
	}
	time.Sleep(8 * time.Second)
	if gap := longestGap(ann, bob); gap > 500*time.Millisecond {
		t.Errorf("the call's media stopped for %s while Redis was away", gap)
	}
	if ann.c.CloseError() != nil || bob.c.CloseError() != nil {
		t.Errorf("sockets closed while Redis was away: %v, %v", ann.c.CloseError(), bob.c.CloseError())
	}

	redis.Start()
	testutil.Eventually(t, 10*time.Second, "both nodes register again", func() bool {
		resp, err := http.Get("http://" + a + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return strings.Contains(string(body), "tessera_cluster_nodes 2") && strings.Contains(string(body), "tessera_cluster_directory_up 1")
	})
	dee, err := client.Dial(ctx, "ws://"+b+"/ws", client.Options{Room: "new", Name: "dee"})
	if err != nil {
		t.Fatalf("a new room once Redis is back: %v", err)
	}
	dee.Close()
	// The call kept its node: a newcomer through the other node lands in it.
	other := map[string]string{"node-a": b, "node-b": a}[host]
	eve := joinCall(ctx, t, other, "call", "eve")
	eve.receive(t, 4, 15*time.Second)
	waitHost(t, a, "call", host, 3)
}

// TestClusterDrain: a node told to stop (SIGTERM) releases its rooms and
// tells their participants to join again (1012); they do, through the
// other node, and their media flows there.
func TestClusterDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	redis := testutil.StartRedis(t)
	a, stopA := startNode(t, clusterConfig(redis.Addr, "node-a"))
	b, _ := startNode(t, clusterConfig(redis.Addr, "node-b"))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// Both nodes are empty: the room goes to the first by id, node-a.
	ann, bob := callAcross(ctx, t, a, b)
	waitHost(t, b, "call", "node-a", 2)
	stopped := time.Now()
	go stopA()
	comeBack(ctx, t, b, []*call{ann, bob}, func(p *call) {
		if ce := p.c.CloseError(); ce == nil || ce.Code != 1012 {
			t.Errorf("%s's socket closed with %v, want 1012 (join again)", p.c.Self.Name, ce)
		}
	})
	t.Logf("media back %s after node-a was told to stop", time.Since(stopped).Round(10*time.Millisecond))
	waitHost(t, b, "call", "node-b", 2)
}

// TestBrowserCluster: Chromium and Firefox pages opened on the two nodes of
// a cluster meet in one room, hosted by one node, the others' signaling
// relayed to it: each decodes every other's video and hears their audio.
func TestBrowserCluster(t *testing.T) {
	skipShort(t)
	webtest.RequireChromium(t)
	webtest.RequireFirefox(t)
	redis := testutil.StartRedis(t)
	// The browsers' candidates stay on IPv4 loopback.
	cfg := func(node string) string {
		return strings.Replace(clusterConfig(redis.Addr, node), "  loopback: true\n", "  loopback: true\n  ips: [127.0.0.1]\n", 1)
	}
	a, _ := startNode(t, cfg("node-a"))
	b, _ := startNode(t, cfg("node-b"))
	ff, cr := webtest.Firefox, webtest.Chromium
	people := []person{{name: "Crow", engine: cr}, {name: "Fox", engine: ff}, {name: "Raven", engine: cr, joinLag: true}}
	br := newBrowsers(t)
	runRoomOn(t, br, people, "http://"+a, "http://"+b, "http://"+b)
	// One node hosts the room (Crow's, the first), and each node says so.
	for _, addr := range []string{a, b} {
		testutil.Eventually(t, 6*time.Second, addr+" lists one room of 3 on node-a", func() bool {
			list := clusterRooms(t, addr).Rooms
			return len(list) == 1 && list[0].Node == "node-a" && len(list[0].Participants) == 3
		})
	}
	// node-b's /debug page shows the room, on node-a, in its cluster part.
	ops := br.tab(t, person{name: "ops", engine: cr})
	ops.Navigate(t, "http://"+b+"/debug")
	ops.WaitFor(t, "the cluster part listing the room on node-a", 10*time.Second,
		`!!document.querySelector('#cluster li[data-node="node-a"]') && document.querySelector('#cluster').textContent.includes('3 / ')`)
}

// TestClusterLimitsAndTokens: a room's capacity holds across nodes (its
// node alone admits), and tokens are checked wherever a client comes in.
func TestClusterLimitsAndTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a cluster")
	}
	redis := testutil.StartRedis(t)
	const secret = "0123456789abcdef0123456789abcdef"
	cfg := func(node string) string {
		return clusterConfig(redis.Addr, node) + fmt.Sprintf(`rooms:
  on_demand: true
  max_participants: 2
auth:
  require_token: true
  keys: [{id: k1, secret: %q}]
`, secret)
	}
	a, _ := startNode(t, cfg("node-a"))
	b, _ := startNode(t, cfg("node-b"))
	auth, err := rooms.NewAuth(rooms.Key{ID: "k1", Secret: []byte(secret)})
	if err != nil {
		t.Fatal(err)
	}
	token := func(room string) string {
		tok, err := auth.Issue(rooms.Grant{Room: room, Permissions: rooms.Permissions{Publish: true, Subscribe: true}, Expires: time.Now().Add(time.Hour)}, "")
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	join := func(addr, room, name, tok string) (*client.Client, error) {
		c, err := client.Dial(ctx, "ws://"+addr+"/ws", client.Options{Room: room, Name: name, Token: tok})
		if err == nil {
			t.Cleanup(c.Close)
		}
		return c, err
	}
	code := func(err error) string {
		var ce *client.Error
		if errors.As(err, &ce) {
			return ce.Code
		}
		return fmt.Sprint(err)
	}

	if _, err := join(a, "full", "ann", token("full")); err != nil {
		t.Fatal(err)
	}
	if _, err := join(b, "full", "bob", token("full")); err != nil {
		t.Fatal(err)
	}
	// The third, through either node, finds the room full.
	for _, addr := range []string{a, b} {
		if _, err := join(addr, "full", "cy", token("full")); code(err) != "room-full" {
			t.Errorf("a third participant through %s: %v, want room-full", addr, err)
		}
	}
	// Tokens: none, or one for another room, are refused through the
	// node that does not host the room as through the one that does.
	for _, addr := range []string{a, b} {
		if _, err := join(addr, "full", "dee", ""); code(err) != "unauthorized" {
			t.Errorf("no token through %s: %v, want unauthorized", addr, err)
		}
		if _, err := join(addr, "full", "dee", token("other")); code(err) != "unauthorized" {
			t.Errorf("another room's token through %s: %v, want unauthorized", addr, err)
		}
	}
}
