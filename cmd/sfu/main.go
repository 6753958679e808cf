// Command sfu is the conference server: a WebRTC selective forwarding unit
// with built-in signaling and a web client.
//
//	sfu [--config rooms.yaml] [--listen ADDR] [--udp-port N]
//
// Without --config it runs on the embedded default configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr, nil); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "sfu:", err)
		}
		os.Exit(2)
	}
}

// run parses args, serves until ctx ends and shuts down. ready, when not
// nil, receives the listening address once the server accepts connections.
func run(ctx context.Context, args []string, stderr io.Writer, ready func(addr string)) error {
	fs := flag.NewFlagSet("sfu", flag.ContinueOnError)
	fs.SetOutput(stderr)
	configPath := fs.String("config", "", "rooms.yaml to run with (default: the embedded configuration)")
	listen := fs.String("listen", "", "HTTP/WebSocket address, overriding the config's listen")
	udpPort := fs.Int("udp-port", -1, "UDP port for all ICE traffic (0: ephemeral ports), overriding the config's ice.udp_port")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sfu [--config rooms.yaml] [--listen ADDR] [--udp-port N]\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	cfg, err := loadConfig(*configPath)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	if *udpPort >= 0 {
		cfg.ICE.UDPPort = *udpPort
	}
	if err := cfg.Validate(); err != nil {
		return err
	}

	log := newLogger(cfg.Log, stderr)
	srv, err := newServer(cfg, log)
	if err != nil {
		return err
	}
	return srv.serve(ctx, ready)
}

func newLogger(c logConfig, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.Level)) // validated by configs
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
