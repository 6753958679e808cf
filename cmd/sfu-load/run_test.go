package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/internal/testutil"
)

// shortLoad is a run small enough for a test, against srv.
func shortLoad(srv *st.Server) config {
	cfg := defaultConfig()
	cfg.URL = srv.URL
	cfg.Publishers, cfg.Subscribers = 1, 3
	cfg.Ramp = 0
	cfg.Warmup = 500 * time.Millisecond
	cfg.Duration = 2 * time.Second
	cfg.JoinTimeout = 20 * time.Second
	cfg.JSON = true
	return cfg
}

func TestLoadAgainstInProcessServer(t *testing.T) {
	srv := st.NewServer(t, st.Options{})
	cfg := shortLoad(srv)
	cfg.Room = "load-basic"
	cfg.ServerPID = os.Getpid() // the server runs in this process
	var stdout, stderr bytes.Buffer
	sum, err := run(testutil.Context(t), cfg, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	t.Logf("progress and table:\n%s", stderr.String())

	if sum.SubscribersConnected != 3 || sum.JoinErrors != 0 {
		t.Fatalf("%d of 3 subscribers connected, %d errors (%s)", sum.SubscribersConnected, sum.JoinErrors, sum.FirstJoinError)
	}
	if sum.PerSubscriber.WithoutPackets != 0 || sum.PerSubscriber.MinPackets == 0 {
		t.Errorf("a subscriber received nothing in the window: %+v", sum.PerSubscriber)
	}
	if sum.Received.Corrupt != 0 {
		t.Errorf("%d corrupt payloads", sum.Received.Corrupt)
	}
	if sum.Sent.Packets == 0 || sum.Received.Packets == 0 {
		t.Fatalf("sent %d, received %d", sum.Sent.Packets, sum.Received.Packets)
	}
	// Loopback loses nothing; allow a little for a machine under load
	// and the race detector.
	if sum.Loss.CounterPct > 2 || sum.Loss.SeqPct > 2 {
		t.Errorf("loss %.2f%% (counters), %.2f%% (sequence) on loopback", sum.Loss.CounterPct, sum.Loss.SeqPct)
	}
	// Every subscriber gets every packet sent, give or take the window's edges.
	if ratio := float64(sum.Received.Packets) / float64(3*sum.Sent.Packets); ratio < 0.9 || ratio > 1.1 {
		t.Errorf("received %d for 3 subscribers of %d sent", sum.Received.Packets, sum.Sent.Packets)
	}
	l := sum.LatencyMs
	if !(l.P50 > 0 && l.P50 <= l.P99 && l.P99 < 1000 && l.Mean > 0 && l.Max >= l.P99) {
		t.Errorf("implausible latency %+v ms", l)
	}
	if sum.JitterMs.Mean <= 0 || sum.JitterMs.Mean > 1000 {
		t.Errorf("implausible jitter %+v ms", sum.JitterMs)
	}
	if sum.Server == nil || sum.Server.Error != "" || sum.Server.CPUMicrosPerPacket <= 0 || sum.Server.RSSAfterKB <= 0 {
		t.Errorf("server figures missing: %+v", sum.Server)
	}
	if sum.Tool.CPUSeconds <= 0 || sum.Tool.CPUs < 1 {
		t.Errorf("tool figures missing: %+v", sum.Tool)
	}

	// stdout holds exactly one JSON object with the same figures.
	var got Summary
	dec := json.NewDecoder(&stdout)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatalf("stdout is not the JSON summary: %v", err)
	}
	if dec.More() {
		t.Error("stdout holds more than one JSON value")
	}
	if got.Received.Packets != sum.Received.Packets || got.LatencyMs != sum.LatencyMs || got.Config.Subscribers != 3 {
		t.Errorf("JSON differs from the summary: %+v", got)
	}
	for _, want := range []string{"measuring", "latency p50", "summary", "µs per forwarded packet"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr lacks %q", want)
		}
	}
}

func TestLoadSimulcastWithAudio(t *testing.T) {
	srv := st.NewServer(t, st.Options{})
	cfg := shortLoad(srv)
	cfg.Room = "load-simulcast"
	cfg.Subscribers = 2
	cfg.Simulcast, cfg.Audio = true, true
	cfg.JSON = false
	var stdout, stderr bytes.Buffer
	sum, err := run(testutil.Context(t), cfg, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	t.Logf("progress:\n%s\n%s", stderr.String(), stdout.String())
	if sum.Tracks != 2 || sum.SubscribersConnected != 2 {
		t.Fatalf("%d tracks, %d subscribers connected; want 2 and 2", sum.Tracks, sum.SubscribersConnected)
	}
	if sum.Received.Corrupt != 0 || sum.PerSubscriber.WithoutPackets != 0 {
		t.Errorf("corrupt %d, subscribers without packets %d", sum.Received.Corrupt, sum.PerSubscriber.WithoutPackets)
	}
	// Three layers (1/4 + 1/2 + 1 of the video) and audio are sent.
	full := planOf(cfg).videoPPS
	if want := 1.75*full + audioPPS; sum.Sent.PPS < 0.8*want || sum.Sent.PPS > 1.2*want {
		t.Errorf("sent %.0f packets/s, want about %.0f", sum.Sent.PPS, want)
	}
	if !strings.HasPrefix(stdout.String(), "summary") {
		t.Errorf("without --json stdout should hold the table, got %q", stdout.String())
	}
}

// TestLoadOverWHEP: with --whep the subscribers are WHEP viewers of the
// publisher, and each gets every packet of its audio and video, intact.
func TestLoadOverWHEP(t *testing.T) {
	srv := st.NewServer(t, st.Options{})
	cfg := shortLoad(srv)
	cfg.Room = "load-whep"
	cfg.WHEP, cfg.Audio = true, true
	var stdout, stderr bytes.Buffer
	sum, err := run(testutil.Context(t), cfg, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if sum.SubscribersConnected != 3 || sum.JoinErrors != 0 {
		t.Fatalf("%d of 3 viewers connected, %d errors (%s)", sum.SubscribersConnected, sum.JoinErrors, sum.FirstJoinError)
	}
	if sum.Received.Corrupt != 0 || sum.PerSubscriber.WithoutPackets != 0 {
		t.Errorf("corrupt %d, viewers without packets %d", sum.Received.Corrupt, sum.PerSubscriber.WithoutPackets)
	}
	if ratio := float64(sum.Received.Packets) / float64(3*sum.Sent.Packets); ratio < 0.9 || ratio > 1.1 {
		t.Errorf("received %d for 3 viewers of %d sent", sum.Received.Packets, sum.Sent.Packets)
	}
	if n := srv.Handler.WHEPSessions(); n != 0 {
		t.Errorf("%d WHEP sessions left after the run", n)
	}
}
