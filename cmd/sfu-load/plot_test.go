package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPlot(t *testing.T) {
	// The file holds what --json printed, run after run (sweep.sh).
	var lines []string
	var file bytes.Buffer
	for _, r := range []struct {
		subs int
		cpu  float64
	}{{10, 30}, {10, 20}, {10, 25}, {100, 12}, {400, 9}} {
		s := Summary{Config: ConfigSummary{Subscribers: r.subs}, Server: &Server{CPUMicrosPerPacket: r.cpu}, LatencyMs: Latency{P50: 1, P99: 3}}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, string(b))
		if err := s.write(&file, io.Discard, true); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "runs.jsonl")
	if err := os.WriteFile(path, file.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := plotMain([]string{path}, &out); err != nil {
		t.Fatal(err)
	}
	svg := out.String()
	if !strings.HasPrefix(svg, "<svg") || strings.Count(svg, "<circle") != 3*3 {
		t.Fatalf("svg with %d points:\n%s", strings.Count(svg, "<circle"), svg)
	}
	pts := medians(func() []Summary {
		var ss []Summary
		for _, l := range lines {
			var s Summary
			_ = json.Unmarshal([]byte(l), &s)
			ss = append(ss, s)
		}
		return ss
	}())
	if len(pts) != 3 || pts[0].subs != 10 || pts[0].cpuUs != 25 || pts[0].runsN != 3 {
		t.Errorf("medians = %+v", pts)
	}
	if err := plotMain([]string{filepath.Join(t.TempDir(), "none")}, &out); err == nil {
		t.Error("a missing file plotted")
	}
}
