// Command sfu is the conference server: a WebRTC selective forwarding unit
// with built-in signaling and a web client.
//
//	sfu [--config rooms.yaml] [--listen ADDR] [--udp-port N]
//	sfu token --room R [--name N] [--ttl 1h] [--no-publish] [--no-subscribe] [--admin] [--config rooms.yaml] [--kid K]
//
// Without --config it runs on the embedded default configuration. SIGHUP
// makes a server started with --config read its file again (reload.go).
// `sfu token` prints a join token signed with a key of the configuration
// (token.go).
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

	"github.com/tessera-rtc/tessera/configs"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "token" {
		if err := runToken(os.Args[2:], os.Stdout, os.Stderr); err != nil {
			if !errors.Is(err, flag.ErrHelp) {
				fmt.Fprintln(os.Stderr, "sfu token:", err)
			}
			os.Exit(2)
		}
		return
	}
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
	udpPort := fs.Int("udp-port", -1, "UDP port for all media and TURN over UDP (0: the listen port's number), overriding the config's ice.udp_port")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: sfu [--config rooms.yaml] [--listen ADDR] [--udp-port N]\n       sfu token --room R [--name N] [--ttl 1h] [...] (sfu token --help)\n\n")
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
	override := func(c *configs.Config) {
		if *listen != "" {
			c.Listen = *listen
		}
		if *udpPort >= 0 {
			c.ICE.UDPPort = *udpPort
		}
	}
	override(&cfg)
	if err := cfg.Validate(); err != nil {
		return err
	}
	if err := checkEmbeddedExposure(*configPath, cfg); err != nil {
		return err
	}

	level := new(slog.LevelVar)
	log := newLogger(cfg.Log, stderr, level)
	srv, err := newServer(cfg, log)
	if err != nil {
		return err
	}
	srv.configPath, srv.override, srv.level = *configPath, override, level
	return srv.serve(ctx, ready)
}

// newLogger logs at level, which it sets from c; the level may change later.
func newLogger(c logConfig, w io.Writer, level *slog.LevelVar) *slog.Logger {
	setLevel(level, c.Level)
	opts := &slog.HandlerOptions{Level: level}
	if c.Format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func setLevel(v *slog.LevelVar, name string) {
	var level slog.Level
	_ = level.UnmarshalText([]byte(name)) // validated by configs
	v.Set(level)
}

// checkEmbeddedExposure refuses to serve the embedded configuration beyond
// loopback: it opens the operator's endpoints (/debug, /metrics, /admin,
// pprof) without a credential because only this machine can reach them.
// A configuration file that says admin.open: true is the operator's choice
// (and is warned about); the embedded default's is not.
func checkEmbeddedExposure(configPath string, cfg configs.Config) error {
	if configPath != "" || cfg.LoopbackOnly() || !cfg.Admin.Open || cfg.Admin.Token != "" {
		return nil
	}
	return fmt.Errorf("listen %s: the embedded configuration serves /debug, /metrics and /admin without a credential, to this machine only; "+
		"to listen beyond loopback, run with --config and set admin.token (or admin.open: true to keep them open to the network; docs/security.md)", cfg.Listen)
}
