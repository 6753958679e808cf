package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"text/tabwriter"
)

// --baseline: after the run against the project, the same load against
// the naive SFU of naive.go, which the tool starts itself, and the
// project's figures over the naive SFU's.

// Baseline is the run of the same load against the naive SFU.
type Baseline struct {
	Summary *Summary `json:"summary,omitempty"` // nil if it failed before its window
	Ratio   Ratios   `json:"ratio"`             // the project's figures ÷ the naive SFU's
	Error   string   `json:"error,omitempty"`
}

// Ratios divide the project's server figures by the naive SFU's, for the
// same load: below 1 the project takes less. 0 where a figure is missing
// (or an RSS growth is not positive).
type Ratios struct {
	CPUMicrosPerPacket   float64 `json:"cpu_us_per_forwarded_packet"`
	CPUPct               float64 `json:"cpu_pct"`
	RSSPerSubscriptionKB float64 `json:"rss_per_subscription_kb"`
}

// runBaseline runs cfg's load against a naive SFU it starts, once the run
// against the project (whose summary is project) is over, and compares.
// An error leaves what was measured in the result and its message in
// Error.
func runBaseline(ctx context.Context, cfg config, project Summary, stderr io.Writer) (*Baseline, error) {
	fmt.Fprintln(stderr, "baseline: the same load against the naive pion SFU")
	sum, measured, err := measureBaseline(ctx, cfg, stderr)
	b := &Baseline{}
	if measured {
		b.Summary = &sum
		b.Ratio = ratios(project.Server, sum.Server)
	}
	if err != nil {
		b.Error = err.Error()
		return b, fmt.Errorf("baseline: %w", err)
	}
	return b, nil
}

// measureBaseline runs cfg's load against a naive SFU it starts and stops.
func measureBaseline(ctx context.Context, cfg config, stderr io.Writer) (Summary, bool, error) {
	sp, url, err := naiveSpawn()
	if err != nil {
		return Summary{}, false, err
	}
	cfg.URL, cfg.Spawn, cfg.ServerPID, cfg.Baseline = url, "", 0, false
	return runOnce(ctx, cfg, &sp, stderr)
}

// naiveSpawn returns how to start the naive SFU, this program with
// naiveEnv set to a free loopback port, and the URL it will serve.
func naiveSpawn() (spawnSpec, string, error) {
	exe, err := os.Executable()
	if err != nil {
		return spawnSpec{}, "", fmt.Errorf("--baseline: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return spawnSpec{}, "", fmt.Errorf("--baseline: a free port: %w", err)
	}
	addr := ln.Addr().String()
	_ = ln.Close() // the naive SFU listens on it in a moment
	sp := spawnSpec{flag: "--baseline", args: []string{exe}, env: []string{naiveEnv + "=" + addr}}
	return sp, "ws://" + addr + "/ws", nil
}

func ratios(project, naive *Server) Ratios {
	if project == nil || naive == nil || project.Error != "" || naive.Error != "" {
		return Ratios{}
	}
	div := func(a, b float64) float64 {
		if a <= 0 || b <= 0 {
			return 0
		}
		return round(a/b, 3)
	}
	return Ratios{
		CPUMicrosPerPacket:   div(project.CPUMicrosPerPacket, naive.CPUMicrosPerPacket),
		CPUPct:               div(project.CPUPct, naive.CPUPct),
		RSSPerSubscriptionKB: div(project.RSSPerSubscriptionKB, naive.RSSPerSubscriptionKB),
	}
}

// table prints the naive SFU's run and the comparison, after the
// project's table (whose server figures are project).
func (b *Baseline) table(w io.Writer, project Summary) error {
	if b.Summary != nil {
		fmt.Fprintln(w)
		if err := b.Summary.titledTable(w, "baseline: the same load against the naive pion SFU (pion's sfu-ws pattern)"); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	fmt.Fprintln(tw, "project ÷ naive pion SFU")
	if b.Error != "" {
		row("baseline error", "%s", b.Error)
	}
	if b.Summary != nil && b.Summary.Server != nil && project.Server != nil {
		p, n, r := project.Server, b.Summary.Server, b.Ratio
		row("CPU per forwarded packet", "%.2f µs ÷ %.2f µs = %s", p.CPUMicrosPerPacket, n.CPUMicrosPerPacket, ratioText(r.CPUMicrosPerPacket))
		row("server CPU", "%.1f%% ÷ %.1f%% of a core = %s", p.CPUPct, n.CPUPct, ratioText(r.CPUPct))
		row("RSS per subscription", "%.1f kB ÷ %.1f kB = %s", p.RSSPerSubscriptionKB, n.RSSPerSubscriptionKB, ratioText(r.RSSPerSubscriptionKB))
		row("loss (counter)", "%.3f%% and %.3f%%", project.Loss.CounterPct, b.Summary.Loss.CounterPct)
	}
	return tw.Flush()
}

func ratioText(r float64) string {
	if r == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", r)
}
