// Command sfu-load puts a running server under load over the real
// protocol and measures it: P publishers send synthetic media that S
// subscribers receive and verify, and the tool reports throughput, loss,
// latency and jitter, and, given the server's PID, its CPU time per
// forwarded packet and its memory per subscription.
//
//	sfu-load [--url ws://127.0.0.1:8080/ws] [--publishers 1] [--subscribers 10]
//	         [--video-bitrate 2M] [--packet-size 1200] [--audio] [--simulcast]
//	         [--ramp 10/s] [--warmup 3s] [--duration 10s] [--json]
//	         [--server-pid PID | --spawn "path/to/sfu --config load.yaml"] [--baseline]
//	sfu-load plot [summaries.jsonl...] > curve.svg
//
// With --baseline it then runs the same load against a naive SFU made the
// way pion's sfu-ws example makes one (naive.go, naive_peer.go), which it
// starts itself as a child process, and prints how the two compare.
//
// See docs/load.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/tessera-rtc/tessera/signaling/client"
)

func main() {
	if addr := os.Getenv(naiveEnv); addr != "" { // started by --baseline
		os.Exit(naiveMain(addr, os.Stderr))
	}
	if len(os.Args) > 1 && os.Args[1] == "plot" {
		if err := plotMain(os.Args[2:], os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "sfu-load plot:", err)
			os.Exit(1)
		}
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := parseFlags(os.Args[1:], os.Stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "sfu-load:", err)
		os.Exit(2)
	}
	if _, err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "sfu-load:", err)
		os.Exit(1)
	}
}

// config is a run's settings.
type config struct {
	URL          string
	Room         string
	Publishers   int
	Subscribers  int
	VideoBitrate int64 // payload bit/s of the full video layer; 0: no video
	PacketSize   int   // payload bytes of a video packet
	Audio        bool
	Simulcast    bool
	Ramp         float64 // joins per second; 0: all at once
	Duration     time.Duration
	Warmup       time.Duration
	JoinTimeout  time.Duration
	JSON         bool
	ServerPID    int
	Spawn        string
	SpawnLog     string
	SpawnTimeout time.Duration
	Baseline     bool // then the same against the naive SFU
	// WHEP: the subscribers watch the room over WHEP instead of joining
	// the call (one publisher, so that each receives the same tracks).
	WHEP bool
}

func defaultConfig() config {
	return config{
		URL: "ws://127.0.0.1:8080/ws", Room: "load",
		Publishers: 1, Subscribers: 10,
		VideoBitrate: 2_000_000, PacketSize: 1200,
		Ramp:     10,
		Duration: 10 * time.Second, Warmup: 3 * time.Second,
		JoinTimeout: 30 * time.Second, SpawnTimeout: 2 * time.Minute,
	}
}

const maxPacketSize = 1400 // payload; the RTP header, extensions and SRTP tag must still fit a 1500-byte MTU

func (c config) validate() error {
	switch {
	case c.Publishers < 1:
		return errors.New("--publishers must be at least 1")
	case c.Subscribers < 0:
		return errors.New("--subscribers must not be negative")
	case c.VideoBitrate < 0:
		return errors.New("--video-bitrate must not be negative")
	case c.VideoBitrate == 0 && !c.Audio:
		return errors.New("nothing to send: --video-bitrate is 0 and --audio is off")
	case c.Simulcast && c.VideoBitrate == 0:
		return errors.New("--simulcast needs video")
	case c.PacketSize < client.MinSynthSize+2 || c.PacketSize > maxPacketSize:
		return fmt.Errorf("--packet-size must be between %d and %d bytes", client.MinSynthSize+2, maxPacketSize)
	case c.Ramp < 0:
		return errors.New("--ramp must not be negative")
	case c.Duration <= 0:
		return errors.New("--duration must be positive")
	case c.Warmup < 0:
		return errors.New("--warmup must not be negative")
	case c.JoinTimeout <= 0:
		return errors.New("--join-timeout must be positive")
	case c.Spawn != "" && c.ServerPID != 0:
		return errors.New("--spawn and --server-pid exclude each other")
	case c.Baseline && c.Simulcast:
		return errors.New("--baseline does not apply to --simulcast: the naive SFU forwards no simulcast (pion's sfu-ws example handles one stream per track)")
	case c.WHEP && c.Publishers != 1:
		return errors.New("--whep needs --publishers 1: a viewer plays one participant, and every subscriber is to receive the same")
	case c.WHEP && c.Baseline:
		return errors.New("--whep does not apply to --baseline: the naive SFU has no WHEP")
	case c.Baseline && c.Spawn == "" && c.ServerPID == 0:
		return errors.New("--baseline compares the servers' CPU and memory: it needs --spawn or --server-pid for the project's server")
	}
	return nil
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := defaultConfig()
	fs := flag.NewFlagSet("sfu-load", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.URL, "url", cfg.URL, "the server's WebSocket URL")
	fs.StringVar(&cfg.Room, "room", cfg.Room, "room to load")
	fs.IntVar(&cfg.Publishers, "publishers", cfg.Publishers, "publishers, each sending the tracks below")
	fs.IntVar(&cfg.Subscribers, "subscribers", cfg.Subscribers, "subscribers, each receiving every track")
	fs.Func("video-bitrate", "payload bit rate of each publisher's video, e.g. 2M, 500k (0: no video) (default 2M)", func(s string) error {
		v, err := parseBitrate(s)
		cfg.VideoBitrate = v
		return err
	})
	fs.IntVar(&cfg.PacketSize, "packet-size", cfg.PacketSize, "payload bytes of a video packet; with --video-bitrate it sets the packet rate")
	fs.BoolVar(&cfg.Audio, "audio", false, "also publish an Opus-like audio track (50 packets/s of 120 bytes) per publisher")
	fs.BoolVar(&cfg.Simulcast, "simulcast", false, "publish video as three simulcast layers q, h, f at 1/4, 1/2 and all of --video-bitrate")
	fs.Func("ramp", "how fast participants join, e.g. 20/s, 1/500ms; 0: all at once (default 10/s)", func(s string) error {
		v, err := parseRamp(s)
		cfg.Ramp = v
		return err
	})
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of the measurement window")
	fs.DurationVar(&cfg.Warmup, "warmup", cfg.Warmup, "time between the last subscriber connecting and the measurement")
	fs.DurationVar(&cfg.JoinTimeout, "join-timeout", cfg.JoinTimeout, "time a participant may take to join (and a subscriber to receive every track)")
	fs.BoolVar(&cfg.JSON, "json", false, "print the summary as one JSON object on stdout (the table goes to stderr)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "PID of the server, to measure its CPU and memory from /proc")
	fs.StringVar(&cfg.Spawn, "spawn", "", `start the server with this command line (a built binary and its arguments, split on spaces), measure it, stop it at the end`)
	fs.StringVar(&cfg.SpawnLog, "spawn-log", "", "file for the output of the --spawn server (default: discarded)")
	fs.DurationVar(&cfg.SpawnTimeout, "spawn-timeout", cfg.SpawnTimeout, "time the --spawn server may take to answer HTTP")
	fs.BoolVar(&cfg.WHEP, "whep", false, "the subscribers watch over WHEP (POST /whep/ROOM, the speaker) instead of joining the call; needs --publishers 1")
	fs.BoolVar(&cfg.Baseline, "baseline", false, "then run the same load against a naive pion SFU (pion's sfu-ws pattern) that the tool starts, and compare")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sfu-load [flags]\n\nLoads a running server (or one started with --spawn) with synthetic publishers and subscribers.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return cfg, cfg.validate()
}

// parseBitrate reads "2M", "2.5M", "500k", "64000" (bit/s; k, M and G are
// powers of 1000).
func parseBitrate(s string) (int64, error) {
	mult := 1.0
	num := strings.TrimSpace(s)
	if n := len(num); n > 0 {
		switch num[n-1] {
		case 'k', 'K':
			mult = 1e3
		case 'M', 'm':
			mult = 1e6
		case 'G', 'g':
			mult = 1e9
		}
		if mult != 1 {
			num = num[:n-1]
		}
	}
	v, err := strconv.ParseFloat(num, 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("bitrate %q: want e.g. 2M, 500k or 64000", s)
	}
	return int64(v * mult), nil
}

// parseRamp reads "20/s", "20", "1/500ms", "0" as joins per second.
func parseRamp(s string) (float64, error) {
	bad := fmt.Errorf("ramp %q: want e.g. 20/s, 1/500ms or 0", s)
	count, per, found := strings.Cut(strings.TrimSpace(s), "/")
	n, err := strconv.ParseFloat(count, 64)
	if err != nil || n < 0 {
		return 0, bad
	}
	if !found {
		return n, nil
	}
	if per != "" && (per[0] < '0' || per[0] > '9') {
		per = "1" + per // "/s" is "/1s"
	}
	d, err := time.ParseDuration(per)
	if err != nil || d <= 0 {
		return 0, bad
	}
	return n / d.Seconds(), nil
}
