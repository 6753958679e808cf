package main

import (
	"io"
	"strings"
	"testing"
	"time"

	"github.com/tessera-rtc/tessera/configs"
)

func TestParseBitrate(t *testing.T) {
	for in, want := range map[string]int64{"2M": 2_000_000, "2.5m": 2_500_000, "500k": 500_000, "64000": 64000, "1G": 1e9, "0": 0} {
		if got, err := parseBitrate(in); err != nil || got != want {
			t.Errorf("parseBitrate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "fast", "-1M", "2Mbit"} {
		if _, err := parseBitrate(in); err == nil {
			t.Errorf("parseBitrate(%q) succeeded", in)
		}
	}
}

func TestParseRamp(t *testing.T) {
	for in, want := range map[string]float64{"20/s": 20, "20": 20, "0": 0, "1/500ms": 2, "30/1m": 0.5, "5/2s": 2.5} {
		if got, err := parseRamp(in); err != nil || got != want {
			t.Errorf("parseRamp(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "x/s", "20/", "20/0s", "-1/s", "20/fortnight"} {
		if _, err := parseRamp(in); err == nil {
			t.Errorf("parseRamp(%q) succeeded", in)
		}
	}
}

func TestParseFlags(t *testing.T) {
	cfg, err := parseFlags(strings.Fields("--publishers 2 --subscribers 5 --video-bitrate 1M --packet-size 1000 --audio --simulcast --ramp 20/s --duration 5s --json"), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Publishers != 2 || cfg.Subscribers != 5 || cfg.VideoBitrate != 1e6 || cfg.PacketSize != 1000 ||
		!cfg.Audio || !cfg.Simulcast || cfg.Ramp != 20 || cfg.Duration != 5*time.Second || !cfg.JSON {
		t.Fatalf("parsed %+v", cfg)
	}
	if got := planOf(cfg).videoPPS; got != 125 {
		t.Errorf("1 Mbit/s in 1000-byte packets: %v packets/s, want 125", got)
	}
	for _, args := range []string{
		"--publishers 0",
		"--packet-size 10",
		"--packet-size 9000",
		"--video-bitrate 0",
		"--video-bitrate 0 --audio --simulcast",
		"--spawn ./sfu --server-pid 1",
		"--duration 0s",
		"--whep --publishers 2",
		"--whep --baseline --server-pid 1",
		"extra",
	} {
		if _, err := parseFlags(strings.Fields(args), io.Discard); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

func TestHealthURL(t *testing.T) {
	u, port, err := healthURL("ws://127.0.0.1:8080/ws")
	if err != nil || u != "http://127.0.0.1:8080/healthz" || port != 8080 {
		t.Fatalf("got %q %d %v", u, port, err)
	}
	u, port, err = healthURL("wss://sfu.example/ws?x=1")
	if err != nil || u != "https://sfu.example/healthz" || port != 443 {
		t.Fatalf("got %q %d %v", u, port, err)
	}
	if _, _, err := healthURL("http://127.0.0.1:8080/ws"); err == nil {
		t.Fatal("an http URL was accepted")
	}
}

// The configuration docs/load.md runs the server with is valid, and is what
// the document says.
func TestLoadYAMLIsValid(t *testing.T) {
	cfg, err := configs.Load("load.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	if cfg.Listen != "127.0.0.1:8080" || cfg.ICE.UDPPort != 50000 || !cfg.ICE.Loopback || cfg.Rooms.MaxParticipants < 100 {
		t.Errorf("load.yaml: listen %s, udp_port %d, loopback %v, max_participants %d",
			cfg.Listen, cfg.ICE.UDPPort, cfg.ICE.Loopback, cfg.Rooms.MaxParticipants)
	}
}
