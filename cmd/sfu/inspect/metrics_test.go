package inspect_test

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	promtestutil "github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/tessera-rtc/tessera/cmd/sfu/inspect"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

// promtool is Debian's Prometheus tool; the promtool check is skipped
// where it is not installed.
const promtool = "/usr/bin/promtool"

// gather reads every metric of g by name and labels ("name" or
// `name{label="value"}`); histograms by their count.
func gather(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	fams, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			key := f.GetName()
			if labels := m.GetLabel(); len(labels) > 0 {
				parts := make([]string, len(labels))
				for i, l := range labels {
					parts[i] = l.GetName() + `="` + l.GetValue() + `"`
				}
				key += "{" + strings.Join(parts, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// TestMetrics runs a two-person call and scrapes /metrics: it passes the
// client library's lint and promtool's check, the gauges describe the call,
// the forwarded-packet counter matches what the subscribers counted (within
// the packets in flight), and negotiations and signaling errors are counted.
func TestMetrics(t *testing.T) {
	ctx := testutil.Context(t)
	e := newEnv(t, inspect.Config{Open: true})
	call := startCall(ctx, t, e, "m", "Ada", "Grace")

	// A request the server refuses: one not-found error.
	if err := call[0].c.Call(ctx, protocol.Subscribe{Tracks: []string{"t-nope"}}, 2*time.Second); err == nil {
		t.Fatal("subscribing to an unknown track was accepted")
	}
	time.Sleep(time.Second) // media flowing

	received := func() float64 {
		n := int64(0)
		for _, m := range call {
			for _, r := range m.recv {
				n += r.Packets.Load()
			}
		}
		return float64(n)
	}
	before := received()
	status, h, body := request(t, "GET", e.base+"/metrics", "")
	time.Sleep(100 * time.Millisecond) // what was in flight arrives
	after := received()
	if status != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", status, h.Get("Content-Type"))
	}
	m := gather(t, e.metrics.Gatherer())

	t.Run("lint", func(t *testing.T) {
		problems, err := promtestutil.GatherAndLint(e.metrics.Gatherer())
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	})
	t.Run("promtool", func(t *testing.T) {
		if _, err := os.Stat(promtool); err != nil {
			t.Skipf("no %s (apt-get install prometheus): %v", promtool, err)
		}
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(body)
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})
	t.Run("body", func(t *testing.T) {
		for _, want := range []string{
			"# TYPE tessera_forwarded_packets_total counter",
			"# TYPE tessera_negotiation_duration_seconds histogram",
			`tessera_signaling_errors_total{code="not-found"} 1`,
			"# TYPE go_goroutines gauge",
			"# TYPE process_cpu_seconds_total counter",
		} {
			if !bytes.Contains(body, []byte(want)) {
				t.Errorf("/metrics has no %q", want)
			}
		}
	})

	for name, want := range map[string]float64{
		"tessera_rooms":                                      1,
		"tessera_participants":                               2,
		"tessera_signaling_sessions":                         2,
		"tessera_peer_connections":                           2,
		"tessera_tracks":                                     4,
		"tessera_subscriptions":                              4,
		"tessera_ice_failures_total":                         0,
		`tessera_signaling_errors_total{code="not-found"}`:   1,
		`tessera_signaling_errors_total{code="bad-request"}`: 0,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present: %v), want %v", name, got, ok, want)
		}
	}
	for _, name := range []string{
		"tessera_received_packets_total", "tessera_received_bytes_total",
		"tessera_forwarded_packets_total", "tessera_forwarded_bytes_total",
	} {
		if m[name] <= 0 {
			t.Errorf("%s = %v, want some", name, m[name])
		}
	}
	for _, name := range []string{
		"tessera_nacks_received_total", "tessera_plis_received_total", "tessera_plis_sent_total", "tessera_retransmitted_packets_total",
	} {
		if _, ok := m[name]; !ok {
			t.Errorf("no %s", name)
		}
	}

	// Every packet forwarded reached a subscriber: the counter lies between
	// what the subscribers had counted before the scrape and after it.
	fwd := m["tessera_forwarded_packets_total"] + m["tessera_retransmitted_packets_total"]
	if fwd < before || fwd > after+8 {
		t.Errorf("forwarded %v packets; the subscribers counted %v before the scrape and %v after", fwd, before, after)
	}
	if rcv := m["tessera_received_packets_total"]; rcv < m["tessera_forwarded_packets_total"]*0.9 {
		t.Errorf("received %v packets from publishers but forwarded %v (each to one subscriber)", rcv, m["tessera_forwarded_packets_total"])
	}

	// Each client published two tracks with offers of its own; each got
	// the other's through server offers.
	if n := m[`tessera_negotiation_duration_seconds{kind="client-offer"}`]; n < 4 {
		t.Errorf("%v client-offer negotiations observed, want at least 4", n)
	}
	if n := m[`tessera_negotiation_duration_seconds{kind="server-offer"}`]; n < 2 {
		t.Errorf("%v server-offer negotiations observed, want at least 2", n)
	}
}
