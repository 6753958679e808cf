// Package cluster places rooms across the nodes that share one Redis.
//
// Each room is hosted by one node, which holds the room's placement in
// Redis as a lease it renews; each node holds a lease on its own record
// (where the others reach it, and its load). A join for a room that no
// live node hosts places the room on the least loaded live node; any node
// accepts any client and relays its signaling to the room's node
// (signaling.Router), while the media flows between the client and that
// node directly. A node that dies stops renewing: its leases lapse, and
// its rooms are placed again when their clients come back. What Redis
// holds, and what happens on each failure, is in docs/cluster.md.
//
// The package is rooms' seam to Redis: rooms.Local calls Claim (through
// rooms.Placement) before anyone joins a room here, and the directory
// renews the rooms rooms.Local hosts.
package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tessera-rtc/tessera/rooms"
)

// Redis keys, all under one prefix.
const (
	prefix    = "tessera:"
	nodeKey   = prefix + "node:"  // + node id: the node's record (JSON), a lease
	roomKey   = prefix + "room:"  // + room name: the hosting node's id, a lease
	roomsKey  = prefix + "rooms:" // + node id: the node's rooms (JSON), a lease
	secretKey = prefix + "secret" // the secret nodes present to each other
)

// Node is a node as the directory knows it.
type Node struct {
	ID  string `json:"id"`
	URL string `json:"url"` // where the others reach its HTTP listener
	// Load, published with each renewal.
	Participants int     `json:"participants"`
	Rooms        int     `json:"rooms"`
	PacketsPerS  float64 `json:"packetsPerSecond"`
	CPU          float64 `json:"cpu"` // cores busy
	Draining     bool    `json:"draining,omitempty"`
}

// Load is what a node publishes about its work.
type Load struct {
	Participants int
	PacketsPerS  float64
	CPU          float64
}

// Host is what the directory needs of the node's own rooms.
type Host interface {
	// Hosted lists the rooms with participants here.
	Hosted(ctx context.Context) []string
	// Rooms describes them, for the cluster-wide views.
	Rooms(ctx context.Context) []rooms.RoomInfo
	// Evict sends a room's participants away: another node hosts it now.
	Evict(ctx context.Context, room string) (int, error)
}

// Config configures a Directory.
type Config struct {
	Client *redis.Client
	NodeID string
	URL    string
	// Lease is how long a node's and a room's records outlive their last
	// renewal (default 10 s); they are renewed every Lease/5.
	Lease time.Duration
	Load  func() Load // nil: only the participant count, from Host
	// Timeout bounds each Redis call (default 2 s).
	Timeout time.Duration
	Logger  *slog.Logger
}

// Directory is this node's view of the cluster.
type Directory struct {
	cfg  Config
	rdb  *redis.Client
	log  *slog.Logger
	host Host // set by Run

	mu       sync.Mutex
	renewed  map[string]time.Time // rooms whose placement this node renews, by when it claimed them
	suspects map[string]time.Time // nodes that could not be reached, until
	draining bool
	secret   string
	healthy  bool // the last renewal reached Redis
}

// New creates the directory of a node. Run registers it.
func New(cfg Config) *Directory {
	if cfg.Lease <= 0 {
		cfg.Lease = 10 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Directory{
		cfg: cfg, rdb: cfg.Client, log: cfg.Logger.With("node", cfg.NodeID),
		renewed: map[string]time.Time{}, suspects: map[string]time.Time{},
	}
}

// ID is this node's id.
func (d *Directory) ID() string { return d.cfg.NodeID }

// ErrNoNode: no live node can take a room.
var ErrNoNode = errors.New("no live node in the cluster")

// unavailable wraps a Redis failure as rooms.ErrUnavailable.
func unavailable(err error) error {
	return fmt.Errorf("%w: the cluster's directory: %v", rooms.ErrUnavailable, err)
}

func (d *Directory) ctx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, d.cfg.Timeout)
}

// renewScript renews a lease held by ARGV[1], or takes it when nobody
// holds it; it returns the holder.
var renewScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return v`)

// releaseScript deletes a lease only if ARGV[1] holds it.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0`)

// Claim implements rooms.Placement: this node hosts the room from now on,
// unless another one does. A room this node hosts already takes newcomers
// while Redis cannot be reached.
func (d *Directory) Claim(ctx context.Context, room string) error {
	d.mu.Lock()
	draining := d.draining
	d.mu.Unlock()
	if draining {
		return fmt.Errorf("%w: this node drains", rooms.ErrMoved)
	}
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	holder, err := renewScript.Run(ctx, d.rdb, []string{roomKey + room}, d.cfg.NodeID, d.cfg.Lease.Milliseconds()).Text()
	if err != nil {
		d.mu.Lock()
		_, ours := d.renewed[room]
		d.mu.Unlock()
		if ours {
			return nil
		}
		return unavailable(err)
	}
	if holder != d.cfg.NodeID {
		return fmt.Errorf("%w: node %s hosts room %q", rooms.ErrMoved, holder, room)
	}
	d.mu.Lock()
	if _, ok := d.renewed[room]; !ok {
		d.renewed[room] = time.Now()
	}
	d.mu.Unlock()
	return nil
}

// Place returns the node hosting room, placing the room on the least
// loaded live node when none does (or its host is gone).
func (d *Directory) Place(ctx context.Context, room string) (Node, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	for range 3 {
		id, err := d.rdb.Get(ctx, roomKey+room).Result()
		switch {
		case err == nil:
			if n, ok, err := d.node(ctx, id); err != nil {
				return Node{}, unavailable(err)
			} else if ok && !n.Draining && !d.suspect(id) {
				return n, nil
			}
			// Its host is gone, drains, or cannot be reached from here:
			// placed again.
			if err := releaseScript.Run(ctx, d.rdb, []string{roomKey + room}, id).Err(); err != nil {
				return Node{}, unavailable(err)
			}
			d.log.Warn("room placed again: its node is gone", "room", room, "was", id)
		case !errors.Is(err, redis.Nil):
			return Node{}, unavailable(err)
		}
		n, err := d.leastLoaded(ctx)
		if err != nil {
			return Node{}, err
		}
		ok, err := d.rdb.SetNX(ctx, roomKey+room, n.ID, d.cfg.Lease).Result()
		if err != nil {
			return Node{}, unavailable(err)
		}
		if ok {
			d.log.Info("room placed", "room", room, "on", n.ID)
			return n, nil
		}
		// Another node placed it meanwhile: read where.
	}
	return Node{}, fmt.Errorf("%w: room %q could not be placed", rooms.ErrUnavailable, room)
}

// Locate returns a live node by id.
func (d *Directory) Locate(ctx context.Context, id string) (Node, bool, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	n, ok, err := d.node(ctx, id)
	if err != nil {
		return Node{}, false, unavailable(err)
	}
	return n, ok && !d.suspect(id), nil
}

func (d *Directory) node(ctx context.Context, id string) (Node, bool, error) {
	raw, err := d.rdb.Get(ctx, nodeKey+id).Bytes()
	if errors.Is(err, redis.Nil) {
		return Node{}, false, nil
	}
	if err != nil {
		return Node{}, false, err
	}
	var n Node
	if err := json.Unmarshal(raw, &n); err != nil {
		return Node{}, false, fmt.Errorf("node %s: %w", id, err)
	}
	return n, true, nil
}

// Nodes lists the live nodes, by id.
func (d *Directory) Nodes(ctx context.Context) ([]Node, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	keys, err := d.scan(ctx, nodeKey+"*")
	if err != nil {
		return nil, unavailable(err)
	}
	var out []Node
	for _, k := range keys {
		n, ok, err := d.node(ctx, strings.TrimPrefix(k, nodeKey))
		if err != nil {
			return nil, unavailable(err)
		}
		if ok {
			out = append(out, n)
		}
	}
	slices.SortFunc(out, func(a, b Node) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (d *Directory) scan(ctx context.Context, match string) ([]string, error) {
	var keys []string
	iter := d.rdb.Scan(ctx, 0, match, 100).Iterator()
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
	}
	return keys, iter.Err()
}

// leastLoaded picks the live node, not draining nor suspected, with the
// fewest participants (then packets, then id).
func (d *Directory) leastLoaded(ctx context.Context) (Node, error) {
	nodes, err := d.Nodes(ctx)
	if err != nil {
		return Node{}, err
	}
	nodes = slices.DeleteFunc(nodes, func(n Node) bool { return n.Draining || d.suspect(n.ID) })
	if len(nodes) == 0 {
		return Node{}, fmt.Errorf("%w: %w", rooms.ErrUnavailable, ErrNoNode)
	}
	return slices.MinFunc(nodes, func(a, b Node) int {
		switch {
		case a.Participants != b.Participants:
			return a.Participants - b.Participants
		case a.PacketsPerS != b.PacketsPerS:
			if a.PacketsPerS < b.PacketsPerS {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	}), nil
}

// Unreachable records that node id could not be reached from here: it is
// not chosen, and its rooms are placed again, until its lease would have
// lapsed.
func (d *Directory) Unreachable(id string) {
	if id == d.cfg.NodeID {
		return
	}
	d.mu.Lock()
	d.suspects[id] = time.Now().Add(d.cfg.Lease)
	d.mu.Unlock()
	d.log.Warn("node unreachable: its rooms go elsewhere", "unreachable", id)
}

func (d *Directory) suspect(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	until, ok := d.suspects[id]
	if ok && time.Now().After(until) {
		delete(d.suspects, id)
		return false
	}
	return ok
}

// Secret is the secret the nodes present to each other when they relay a
// client: the first node to ask creates it. Whoever can read Redis is
// trusted as a node.
func (d *Directory) Secret(ctx context.Context) (string, error) {
	d.mu.Lock()
	s := d.secret
	d.mu.Unlock()
	if s != "" {
		return s, nil
	}
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	var b [24]byte
	_, _ = rand.Read(b[:])
	if err := d.rdb.SetNX(ctx, secretKey, base64.RawURLEncoding.EncodeToString(b[:]), 0).Err(); err != nil {
		return "", unavailable(err)
	}
	s, err := d.rdb.Get(ctx, secretKey).Result()
	if err != nil {
		return "", unavailable(err)
	}
	d.mu.Lock()
	d.secret = s
	d.mu.Unlock()
	return s, nil
}

// Healthy reports whether the last renewal reached Redis.
func (d *Directory) Healthy() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.healthy
}

// Drain takes this node out of placement: no new room comes here, and the
// rooms it hosts are released for their clients to place again.
func (d *Directory) Drain(ctx context.Context) {
	d.mu.Lock()
	d.draining = true
	hosted := make([]string, 0, len(d.renewed))
	for r := range d.renewed {
		hosted = append(hosted, r)
	}
	d.renewed = map[string]time.Time{}
	d.mu.Unlock()
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	if err := d.publish(ctx, nil); err != nil {
		d.log.Warn("cannot mark the node draining", "err", err)
	}
	for _, r := range hosted {
		_ = releaseScript.Run(ctx, d.rdb, []string{roomKey + r}, d.cfg.NodeID).Err()
	}
}

// Run registers the node and renews its leases every Lease/5 until ctx
// ends; then it removes the node's records.
func (d *Directory) Run(ctx context.Context, host Host) {
	d.host = host
	t := time.NewTicker(d.cfg.Lease / 5)
	defer t.Stop()
	for {
		d.renew(ctx)
		select {
		case <-ctx.Done():
			d.leave()
			return
		case <-t.C:
		}
	}
}

// Register publishes the node's record once, so that it can be placed on
// before Run's first renewal; it fails when Redis cannot be reached.
func (d *Directory) Register(ctx context.Context) error {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	if err := d.publish(ctx, nil); err != nil {
		return unavailable(err)
	}
	return nil
}

// publish writes the node's record (and, given them, its rooms).
func (d *Directory) publish(ctx context.Context, infos []rooms.RoomInfo) error {
	d.mu.Lock()
	n := Node{ID: d.cfg.NodeID, URL: d.cfg.URL, Draining: d.draining}
	d.mu.Unlock()
	if d.cfg.Load != nil {
		l := d.cfg.Load()
		n.Participants, n.PacketsPerS, n.CPU = l.Participants, l.PacketsPerS, l.CPU
	}
	n.Rooms = len(infos)
	if d.cfg.Load == nil {
		for _, r := range infos {
			n.Participants += len(r.Participants)
		}
	}
	raw, _ := json.Marshal(n)
	pipe := d.rdb.TxPipeline()
	pipe.Set(ctx, nodeKey+n.ID, raw, d.cfg.Lease)
	if infos != nil {
		rs, _ := json.Marshal(infos)
		pipe.Set(ctx, roomsKey+n.ID, rs, d.cfg.Lease)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// renew publishes the node's record and rooms, renews the placements of
// the rooms it hosts, releases those it no longer hosts, and sends away
// the participants of a room another node took.
func (d *Directory) renew(parent context.Context) {
	ctx, cancel := d.ctx(parent)
	defer cancel()
	infos := d.host.Rooms(ctx)
	for i := range infos {
		infos[i].Node = d.cfg.NodeID
	}
	infos = slices.DeleteFunc(infos, func(r rooms.RoomInfo) bool { return len(r.Participants) == 0 })
	if infos == nil {
		infos = []rooms.RoomInfo{}
	}
	err := d.publish(ctx, infos)
	if was := d.setHealthy(err == nil); err != nil {
		if was {
			d.log.Warn("cannot reach the cluster's directory: serving the rooms hosted here", "err", err)
		}
		return
	}
	hosted := map[string]bool{}
	for _, r := range infos {
		hosted[r.Name] = true
	}
	d.mu.Lock()
	draining := d.draining
	var release []string
	for r, since := range d.renewed {
		// A room claimed just now may not have its first participant
		// yet: it is kept for a lease.
		if !hosted[r] && time.Since(since) > d.cfg.Lease {
			release = append(release, r)
			delete(d.renewed, r)
		}
	}
	d.mu.Unlock()
	for _, r := range release {
		_ = releaseScript.Run(ctx, d.rdb, []string{roomKey + r}, d.cfg.NodeID).Err()
	}
	if draining {
		return
	}
	for r := range hosted {
		holder, err := renewScript.Run(ctx, d.rdb, []string{roomKey + r}, d.cfg.NodeID, d.cfg.Lease.Milliseconds()).Text()
		if err != nil {
			d.setHealthy(false)
			return
		}
		if holder != d.cfg.NodeID {
			// The room was placed elsewhere while this node was out of
			// reach: its participants go there.
			d.log.Warn("room taken by another node", "room", r, "by", holder)
			go func() { _, _ = d.host.Evict(context.WithoutCancel(parent), r) }()
			continue
		}
		d.mu.Lock()
		if d.draining {
			// Drain released the room meanwhile: give it back.
			d.mu.Unlock()
			_ = releaseScript.Run(ctx, d.rdb, []string{roomKey + r}, d.cfg.NodeID).Err()
			continue
		}
		if _, ok := d.renewed[r]; !ok {
			d.renewed[r] = time.Now()
		}
		d.mu.Unlock()
	}
	d.keepSecret(ctx)
}

// keepSecret puts the secret this node knows back into a Redis that lost
// it (restarted empty), and adopts the one Redis holds: the nodes agree
// again once each has renewed.
func (d *Directory) keepSecret(ctx context.Context) {
	d.mu.Lock()
	s := d.secret
	d.mu.Unlock()
	if s == "" {
		return
	}
	if err := d.rdb.SetNX(ctx, secretKey, s, 0).Err(); err != nil {
		return
	}
	if held, err := d.rdb.Get(ctx, secretKey).Result(); err == nil && held != s {
		d.mu.Lock()
		d.secret = held
		d.mu.Unlock()
	}
}

// setHealthy records whether Redis answered, and returns what it was.
func (d *Directory) setHealthy(ok bool) bool {
	d.mu.Lock()
	was := d.healthy
	d.healthy = ok
	d.mu.Unlock()
	if ok && !was {
		d.log.Info("cluster directory reached")
	}
	return was
}

// leave removes the node's records and releases its rooms.
func (d *Directory) leave() {
	ctx, cancel := d.ctx(context.Background())
	defer cancel()
	d.mu.Lock()
	hosted := make([]string, 0, len(d.renewed))
	for r := range d.renewed {
		hosted = append(hosted, r)
	}
	d.renewed = map[string]time.Time{}
	d.mu.Unlock()
	for _, r := range hosted {
		_ = releaseScript.Run(ctx, d.rdb, []string{roomKey + r}, d.cfg.NodeID).Err()
	}
	_ = d.rdb.Del(ctx, nodeKey+d.cfg.NodeID, roomsKey+d.cfg.NodeID).Err()
}

// Rooms lists the rooms of every live node, each marked with its node.
func (d *Directory) Rooms(ctx context.Context) ([]rooms.RoomInfo, error) {
	ctx, cancel := d.ctx(ctx)
	defer cancel()
	nodes, err := d.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var out []rooms.RoomInfo
	for _, n := range nodes {
		raw, err := d.rdb.Get(ctx, roomsKey+n.ID).Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, unavailable(err)
		}
		var infos []rooms.RoomInfo
		if err := json.Unmarshal(raw, &infos); err != nil {
			return nil, fmt.Errorf("rooms of node %s: %w", n.ID, err)
		}
		for i := range infos {
			infos[i].Node = n.ID
		}
		out = append(out, infos...)
	}
	slices.SortFunc(out, func(a, b rooms.RoomInfo) int {
		if c := strings.Compare(a.Name, b.Name); c != 0 {
			return c
		}
		return strings.Compare(a.Node, b.Node)
	})
	return out, nil
}
