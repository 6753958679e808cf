package main

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tessera-rtc/tessera/cmd/sfu/inspect"
	"github.com/tessera-rtc/tessera/configs"
	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/rooms/cluster"
	"github.com/tessera-rtc/tessera/signaling"
)

// clusterNode is this server as a node of a cluster: its directory in
// Redis, and the routing of joins and resumes to the rooms' nodes
// (signaling.Router).
type clusterNode struct {
	dir *cluster.Directory
	rdb *redis.Client
	reg *rooms.Local
	log *slog.Logger

	stop context.CancelFunc // ends the directory's renewals
	done chan struct{}
}

// relayHeader carries the cluster's secret on a socket a node relays.
const relayHeader = "X-Tessera-Relay"

// resumeSep ends the node's id at the start of a resume token.
const resumeSep = "~"

// newClusterNode connects to the cluster's Redis. It does not fail when
// Redis cannot be reached: the node serves what needs no directory, and
// registers when Redis answers.
func newClusterNode(cfg *configs.Cluster, listen net.Addr, tlsOn bool, load func() cluster.Load, log *slog.Logger) (*clusterNode, error) {
	id, err := nodeID(cfg, listen)
	if err != nil {
		return nil, err
	}
	nodeURL := cfg.URL
	if nodeURL == "" {
		nodeURL = defaultNodeURL(listen, tlsOn)
	}
	opts := &redis.Options{Addr: cfg.Redis.Address, Password: cfg.Redis.Password, DB: cfg.Redis.DB,
		DialTimeout: 2 * time.Second, ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MaxRetries: 1}
	if cfg.Redis.TLS {
		host, _, _ := net.SplitHostPort(cfg.Redis.Address)
		opts.TLSConfig = &tls.Config{ServerName: host, MinVersion: tls.VersionTLS12}
	}
	redisLogOnce.Do(func() { redis.SetLogger(redisLog{log}) })
	rdb := redis.NewClient(opts)
	log = log.With("node", id)
	n := &clusterNode{rdb: rdb, log: log, done: make(chan struct{})}
	n.dir = cluster.New(cluster.Config{Client: rdb, NodeID: id, URL: strings.TrimSuffix(nodeURL, "/"), Load: load, Logger: log})
	return n, nil
}

// redisLog passes go-redis's own messages (a connection pool that cannot
// dial, on every attempt) to the log at debug level: the directory says
// once, at warn, when Redis cannot be reached.
type redisLog struct{ log *slog.Logger }

func (l redisLog) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis: "+fmt.Sprintf(format, v...))
}

// redisLogOnce: go-redis's logger is one for the process.
var redisLogOnce sync.Once

// nodeID is the configured id, or the host name and the listen port.
func nodeID(cfg *configs.Cluster, listen net.Addr) (string, error) {
	if cfg.NodeID != "" {
		return cfg.NodeID, nil
	}
	host, err := os.Hostname()
	if err != nil {
		return "", fmt.Errorf("cluster.node_id is empty and the host name is unknown: %w", err)
	}
	_, port, _ := net.SplitHostPort(listen.String())
	id := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			return r
		}
		return '-'
	}, host+"-"+port)
	if !configs.ValidNodeID(id) {
		return "", fmt.Errorf("cluster.node_id is empty and %q is no node id: set one", id)
	}
	return id, nil
}

// defaultNodeURL is where the other nodes reach this one: its listen
// address, or its host name when it listens on every address.
func defaultNodeURL(listen net.Addr, tlsOn bool) string {
	host, port, _ := net.SplitHostPort(listen.String())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// start registers the node and renews its leases until close.
func (n *clusterNode) start(reg *rooms.Local) {
	n.reg = reg
	ctx, cancel := context.WithCancel(context.Background())
	n.stop = cancel
	if err := n.dir.Register(ctx); err != nil {
		n.log.Error("cluster: cannot register in Redis yet; serving what needs no directory", "err", err)
	} else {
		n.log.Info("cluster: node registered", "url", n.dirURL())
	}
	go func() {
		defer close(n.done)
		n.dir.Run(ctx, reg)
	}()
}

func (n *clusterNode) dirURL() string {
	nodes, _ := n.dir.Nodes(context.Background())
	for _, x := range nodes {
		if x.ID == n.dir.ID() {
			return x.URL
		}
	}
	return ""
}

// drain takes the node out of placement and releases its rooms: the
// participants the registry then sends off (rooms.ErrMoved) join again on
// other nodes.
func (n *clusterNode) drain(ctx context.Context) {
	n.log.Info("cluster: draining: no new rooms here, rooms released")
	n.dir.Drain(ctx)
}

// close stops the renewals and removes the node's records.
func (n *clusterNode) close() {
	if n.stop != nil {
		n.stop()
		<-n.done
	}
	_ = n.rdb.Close()
}

// RouteJoin implements signaling.Router.
func (n *clusterNode) RouteJoin(ctx context.Context, room string) (signaling.Route, error) {
	if n.hostsHere(ctx, room) {
		return signaling.Route{}, nil // served without the directory, even while Redis is away
	}
	node, err := n.dir.Place(ctx, room)
	if err != nil {
		return signaling.Route{}, err
	}
	return n.route(ctx, node)
}

// RouteResume implements signaling.Router.
func (n *clusterNode) RouteResume(ctx context.Context, token string) (signaling.Route, error) {
	id, _, ok := strings.Cut(token, resumeSep)
	if !ok || id == n.dir.ID() {
		return signaling.Route{}, nil
	}
	node, live, err := n.dir.Locate(ctx, id)
	if err != nil {
		return signaling.Route{}, err
	}
	if !live {
		return signaling.Route{}, nil // gone, and the participant with it: not-found here
	}
	return n.route(ctx, node)
}

func (n *clusterNode) route(ctx context.Context, node cluster.Node) (signaling.Route, error) {
	if node.ID == n.dir.ID() {
		return signaling.Route{}, nil
	}
	secret, err := n.dir.Secret(ctx)
	if err != nil {
		return signaling.Route{}, err
	}
	u, err := url.Parse(node.URL)
	if err != nil {
		return signaling.Route{}, fmt.Errorf("node %s: bad url %q: %w", node.ID, node.URL, err)
	}
	u.Scheme = map[string]string{"https": "wss"}[u.Scheme]
	if u.Scheme == "" {
		u.Scheme = "ws"
	}
	u.Path = "/ws"
	return signaling.Route{Node: node.ID, URL: u.String(), Header: http.Header{relayHeader: {secret}}}, nil
}

// hostsHere reports whether the room has participants on this node.
func (n *clusterNode) hostsHere(ctx context.Context, room string) bool {
	parts, err := n.reg.Participants(ctx, room)
	return err == nil && len(parts) > 0
}

// Relayed implements signaling.Router: the request carries the cluster's
// secret.
func (n *clusterNode) Relayed(r *http.Request) bool {
	got := r.Header.Get(relayHeader)
	if got == "" {
		return false
	}
	secret, err := n.dir.Secret(r.Context())
	return err == nil && subtle.ConstantTimeCompare([]byte(got), []byte(secret)) == 1
}

// Unreachable implements signaling.Router.
func (n *clusterNode) Unreachable(rt signaling.Route) { n.dir.Unreachable(rt.Node) }

// view is the cluster as the operator endpoints show it.
func (n *clusterNode) view(ctx context.Context) (inspect.ClusterView, error) {
	v := inspect.ClusterView{Node: n.dir.ID(), Healthy: n.dir.Healthy()}
	nodes, err := n.dir.Nodes(ctx)
	if err != nil {
		return v, err
	}
	for _, x := range nodes {
		v.Nodes = append(v.Nodes, inspect.NodeSummary{ID: x.ID, URL: x.URL, Participants: x.Participants, Rooms: x.Rooms,
			PacketsPerS: x.PacketsPerS, CPU: x.CPU, Draining: x.Draining})
	}
	infos, err := n.dir.Rooms(ctx)
	if err != nil {
		return v, err
	}
	v.Rooms = infos
	return v, nil
}

// clusterLoad is what the node publishes of its work: participants, and
// forwarded packets a second and cores busy since the last call.
type clusterLoad struct {
	mu       sync.Mutex
	last     time.Time
	lastPkts uint64
	lastCPU  time.Duration
}

func (l *clusterLoad) sample(participants int, forwarded uint64) cluster.Load {
	l.mu.Lock()
	defer l.mu.Unlock()
	now, cpu := time.Now(), processCPUTime()
	load := cluster.Load{Participants: participants}
	if dt := now.Sub(l.last).Seconds(); !l.last.IsZero() && dt > 0 {
		if forwarded >= l.lastPkts {
			load.PacketsPerS = float64(forwarded-l.lastPkts) / dt
		}
		if cpu >= l.lastCPU {
			load.CPU = (cpu - l.lastCPU).Seconds() / dt
		}
	}
	l.last, l.lastPkts, l.lastCPU = now, forwarded, cpu
	return load
}
