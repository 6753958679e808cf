package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tessera-rtc/tessera/internal/testutil"
)

// TestMain lets --baseline start the naive SFU from the test binary, as
// it does from sfu-load: the binary run again with naiveEnv set.
func TestMain(m *testing.M) {
	if addr := os.Getenv(naiveEnv); addr != "" {
		os.Exit(naiveMain(addr, os.Stderr))
	}
	os.Exit(m.Run())
}

// The naive SFU, started as --baseline starts it, forwards every payload
// of a small load intact, and is measured as the project is.
func TestBaselineForwardsEverything(t *testing.T) {
	cfg := defaultConfig()
	cfg.Room = "load-baseline"
	cfg.Publishers, cfg.Subscribers = 1, 3
	cfg.Ramp = 0
	cfg.Warmup = 500 * time.Millisecond
	cfg.Duration = 2 * time.Second
	cfg.JoinTimeout = 20 * time.Second
	var stderr bytes.Buffer
	sum, measured, err := measureBaseline(testutil.Context(t), cfg, &lockedWriter{w: &stderr})
	t.Logf("progress:\n%s", stderr.String())
	if err != nil || !measured {
		t.Fatalf("measured %v: %v", measured, err)
	}
	var table bytes.Buffer
	if err := sum.table(&table); err != nil {
		t.Fatal(err)
	}
	t.Logf("summary:\n%s", table.String())

	if sum.SubscribersConnected != 3 || sum.JoinErrors != 0 {
		t.Fatalf("%d of 3 subscribers connected, %d errors (%s)", sum.SubscribersConnected, sum.JoinErrors, sum.FirstJoinError)
	}
	r := sum.Received
	if sum.Sent.Packets == 0 || r.Packets == 0 || sum.PerSubscriber.WithoutPackets != 0 {
		t.Fatalf("sent %d, received %d, %d subscribers without packets", sum.Sent.Packets, r.Packets, sum.PerSubscriber.WithoutPackets)
	}
	// Every packet read is a verified payload: nothing corrupt, no
	// retransmission or padding, and none missing in the window.
	if r.Corrupt != 0 || r.Verified != r.Packets || r.Duplicates != 0 || r.Padding != 0 {
		t.Errorf("received %d packets: %d verified, %d corrupt, %d duplicates, %d padding", r.Packets, r.Verified, r.Corrupt, r.Duplicates, r.Padding)
	}
	if sum.Loss.SeqLost != 0 || sum.Loss.CounterLost != 0 {
		t.Errorf("lost %d (sequence), %d (counters)", sum.Loss.SeqLost, sum.Loss.CounterLost)
	}
	if ratio := float64(r.Packets) / float64(3*sum.Sent.Packets); ratio < 0.9 || ratio > 1.1 {
		t.Errorf("received %d for 3 subscribers of %d sent", r.Packets, sum.Sent.Packets)
	}
	sv := sum.Server
	if sv == nil || sv.Error != "" || sv.PID == os.Getpid() || sv.CPUSeconds <= 0 || sv.CPUMicrosPerPacket <= 0 || sv.RSSAfterKB <= 0 {
		t.Errorf("server figures missing: %+v", sv)
	}
}

func TestParseFlagsBaseline(t *testing.T) {
	cfg, err := parseFlags(strings.Fields("--spawn /tmp/sfu --baseline --audio --publishers 2"), io.Discard)
	if err != nil || !cfg.Baseline {
		t.Fatalf("--baseline with --spawn: %+v, %v", cfg, err)
	}
	if _, err := parseFlags(strings.Fields("--server-pid 42 --baseline"), io.Discard); err != nil {
		t.Errorf("--baseline with --server-pid: %v", err)
	}
	for args, want := range map[string]string{
		"--baseline":                              "--spawn or --server-pid",
		"--baseline --url ws://10.0.0.1:8080/ws":  "--spawn or --server-pid",
		"--baseline --spawn /tmp/sfu --simulcast": "simulcast",
	} {
		_, err := parseFlags(strings.Fields(args), io.Discard)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err = %v, want one about %q", args, err, want)
		}
	}
}

func TestBaselineRatiosAndTable(t *testing.T) {
	project := Summary{Server: &Server{CPUMicrosPerPacket: 10, CPUPct: 20, RSSPerSubscriptionKB: 400}}
	naive := Summary{Server: &Server{CPUMicrosPerPacket: 40, CPUPct: 80, RSSPerSubscriptionKB: -3}}
	got := ratios(project.Server, naive.Server)
	if want := (Ratios{CPUMicrosPerPacket: 0.25, CPUPct: 0.25}); got != want {
		t.Errorf("ratios = %+v, want %+v", got, want)
	}
	if got := ratios(project.Server, &Server{Error: "gone"}); got != (Ratios{}) {
		t.Errorf("ratios against a failed measurement = %+v", got)
	}
	project.Baseline = &Baseline{Summary: &naive, Ratio: got}
	var out bytes.Buffer
	if err := project.table(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"summary", "baseline: the same load against the naive pion SFU", "10.00 µs ÷ 40.00 µs = 0.25", "= n/a"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}

	// In JSON the baseline is one more field of the summary.
	out.Reset()
	if err := project.write(&out, io.Discard, true); err != nil {
		t.Fatal(err)
	}
	var back Summary
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&back); err != nil {
		t.Fatal(err)
	}
	if b := back.Baseline; b == nil || b.Summary == nil || b.Summary.Server.CPUMicrosPerPacket != 40 || b.Ratio.CPUPct != 0.25 {
		t.Errorf("baseline after a JSON round trip: %+v", b)
	}
}
