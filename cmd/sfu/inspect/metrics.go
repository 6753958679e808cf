package inspect

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// namespace prefixes every metric of the server.
const namespace = "tessera"

// Metrics is the server's Prometheus registry (its own, not the global
// one): the Go runtime and process collectors, the negotiation-time
// histogram, and, once New has run, collectors reading the rooms, the media
// engine and the signaling endpoint at scrape time.
type Metrics struct {
	reg         *prometheus.Registry
	negotiation *prometheus.HistogramVec
}

// NewMetrics creates the registry. Its ObserveNegotiation is meant for
// sfu.Config.OnNegotiation, so it exists before the engine does.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		negotiation: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace,
			Name:      "negotiation_duration_seconds",
			Help:      "How long negotiations took: server-offer from the server's offer to the client's answer, client-offer for applying a client's offer and answering it.",
			Buckets:   []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"kind"}),
	}
	// The kinds sfu.Config.OnNegotiation reports, present at 0 from the start.
	for _, k := range []string{"server-offer", "client-offer"} {
		m.negotiation.WithLabelValues(k)
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.negotiation,
	)
	return m
}

// ObserveNegotiation records how long a negotiation took (the signature of
// sfu.Config.OnNegotiation).
func (m *Metrics) ObserveNegotiation(kind string, d time.Duration) {
	m.negotiation.WithLabelValues(kind).Observe(d.Seconds())
}

// Gatherer exposes the registry (for tests and other exporters).
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

func (m *Metrics) register(c prometheus.Collector) error { return m.reg.Register(c) }

func (m *Metrics) handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg, // promhttp_metric_handler_errors_total
	})
}

// scrapeTimeout bounds how long a scrape waits for the rooms' goroutines.
const scrapeTimeout = 2 * time.Second

// stateCollector reads the server's state when Prometheus scrapes: gauges
// of what exists now, counters from the engine's monotonic totals and the
// signaling endpoint's error counts.
type stateCollector struct {
	rooms   Registry
	eng     Engine
	sig     Signaling
	cluster func(ctx context.Context) (ClusterView, error) // nil: alone

	roomsDesc, participants, sessions, peers, tracks, subscriptions *prometheus.Desc

	receivedPackets, receivedBytes, forwardedPackets, forwardedBytes *prometheus.Desc
	retransmitted, nacks, plisReceived, plisSent, iceFailures        *prometheus.Desc
	signalingErrors                                                  *prometheus.Desc

	clusterNodes, clusterHealthy, clusterRoomParticipants *prometheus.Desc
}

func newStateCollector(rooms Registry, eng Engine, sig Signaling, cluster func(context.Context) (ClusterView, error)) *stateCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(namespace, "", name), help, labels, nil)
	}
	return &stateCollector{
		rooms: rooms, eng: eng, sig: sig, cluster: cluster,

		roomsDesc:     d("rooms", "Rooms open."),
		participants:  d("participants", "Participants in all rooms."),
		sessions:      d("signaling_sessions", "Open signaling WebSockets, joined or not."),
		peers:         d("peer_connections", "PeerConnections of participants."),
		tracks:        d("tracks", "Tracks being published."),
		subscriptions: d("subscriptions", "Tracks being forwarded to a subscriber."),

		receivedPackets:  d("received_packets_total", "RTP packets received from publishers."),
		receivedBytes:    d("received_bytes_total", "RTP bytes (headers and payloads) received from publishers."),
		forwardedPackets: d("forwarded_packets_total", "RTP packets forwarded to subscribers, retransmissions excluded."),
		forwardedBytes:   d("forwarded_bytes_total", "RTP payload bytes forwarded to subscribers."),
		retransmitted:    d("retransmitted_packets_total", "RTP packets sent again to subscribers in answer to their NACKs."),
		nacks:            d("nacks_received_total", "RTCP NACK messages received from subscribers."),
		plisReceived:     d("plis_received_total", "Keyframe requests (PLI, FIR) received from subscribers."),
		plisSent:         d("plis_sent_total", "Keyframe requests (PLI) sent to publishers."),
		iceFailures:      d("ice_failures_total", "Participants removed because ICE failed or did not connect in time."),
		signalingErrors:  d("signaling_errors_total", "Error replies sent to signaling clients, by protocol error code.", "code"),

		clusterNodes:            d("cluster_nodes", "Live nodes of the cluster, this one included."),
		clusterHealthy:          d("cluster_directory_up", "1 when this node's last renewal reached the cluster's Redis."),
		clusterRoomParticipants: d("cluster_room_participants", "Participants of each room of the cluster, by room and hosting node.", "room", "node"),
	}
}

func (c *stateCollector) descs() []*prometheus.Desc {
	return []*prometheus.Desc{
		c.roomsDesc, c.participants, c.sessions, c.peers, c.tracks, c.subscriptions,
		c.receivedPackets, c.receivedBytes, c.forwardedPackets, c.forwardedBytes,
		c.retransmitted, c.nacks, c.plisReceived, c.plisSent, c.iceFailures, c.signalingErrors,
		c.clusterNodes, c.clusterHealthy, c.clusterRoomParticipants,
	}
}

// Describe implements prometheus.Collector.
func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs() {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	infos := c.rooms.Rooms(ctx)
	participants := 0
	for _, r := range infos {
		participants += len(r.Participants)
	}
	t := c.eng.Totals()

	gauge := func(d *prometheus.Desc, v int) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(c.roomsDesc, len(infos))
	gauge(c.participants, participants)
	gauge(c.sessions, c.sig.Sessions())
	gauge(c.peers, t.Peers)
	gauge(c.tracks, t.Tracks)
	gauge(c.subscriptions, t.Subscriptions)

	counter(c.receivedPackets, t.ReceivedPackets)
	counter(c.receivedBytes, t.ReceivedBytes)
	counter(c.forwardedPackets, t.ForwardedPackets)
	counter(c.forwardedBytes, t.ForwardedBytes)
	counter(c.retransmitted, t.Retransmitted)
	counter(c.nacks, t.NACKsReceived)
	counter(c.plisReceived, t.PLIsReceived)
	counter(c.plisSent, t.PLIsSent)
	counter(c.iceFailures, t.ICEFailures)
	for code, n := range c.sig.ErrorCounts() {
		counter(c.signalingErrors, n, string(code))
	}
	if c.cluster != nil {
		v, err := c.cluster(ctx)
		up := 0
		if v.Healthy && err == nil {
			up = 1
		}
		gauge(c.clusterHealthy, up)
		if err == nil {
			gauge(c.clusterNodes, len(v.Nodes))
			for _, r := range v.Rooms {
				ch <- prometheus.MustNewConstMetric(c.clusterRoomParticipants, prometheus.GaugeValue, float64(len(r.Participants)), r.Name, r.Node)
			}
		}
	}
}
