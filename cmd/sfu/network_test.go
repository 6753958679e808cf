package main

import (
	"context"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/configs"
	"github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/signaling/client"
)

// TestEveryNetwork runs a call between two Go clients on the embedded
// default configuration, each time over one path: direct UDP, ICE over
// TCP on the HTTP port, and the embedded TURN server over UDP and over
// TCP. Media must arrive intact, and /debug must say which path each
// participant took.
func TestEveryNetwork(t *testing.T) {
	cfg := configs.Embedded()
	cfg.Listen = "127.0.0.1:0"
	addr := startServer(t, cfg)
	for _, tc := range []struct {
		name     string
		networks []webrtc.NetworkType
		relay    string
		want     string
		// send is how the server writes bob's media: direct into the
		// media port's socket whenever its side of the pair is UDP (a
		// client's relay is reached over UDP too), else through pion.
		send string
	}{
		{"udp", nil, "", "udp", "direct"},
		{"ice-tcp", []webrtc.NetworkType{webrtc.NetworkTypeTCP4}, "", "tcp", "pion: the selected pair is tcp"},
		{"relay over udp", nil, "udp", "relay-udp", "direct"},
		{"relay over tcp", nil, "tcp", "relay-tcp", "direct"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			room := "net-" + tc.want
			join := func(name string) *client.Client {
				api, err := client.NewAPIWith(client.APIOptions{NetworkTypes: tc.networks})
				if err != nil {
					t.Fatal(err)
				}
				c, err := client.Dial(ctx, "ws://"+addr+"/ws", client.Options{Room: room, Name: name, API: api, Relay: tc.relay})
				if err != nil {
					t.Fatalf("join as %s: %v", name, err)
				}
				t.Cleanup(c.Close)
				return c
			}
			pub, sub := join("alice"), join("bob")
			signalingtest.Publish(ctx, t, pub, "video")
			var tr *webrtc.TrackRemote
			select {
			case tr = <-sub.Tracks():
			case <-ctx.Done():
				t.Fatalf("bob received no track over %s", tc.name)
			}
			got := signalingtest.Receive(tr)
			deadline := time.Now().Add(10 * time.Second)
			for got.Packets.Load() < 100 && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			if n, bad := got.Packets.Load(), got.Corrupt.Load(); n < 100 || bad > 0 {
				t.Fatalf("bob received %d packets (%d corrupt) over %s, want 100 intact", n, bad, tc.name)
			}
			ps := debugParticipants(t, "http://"+addr, room)
			for _, name := range []string{"alice", "bob"} {
				if ps[name].Path != tc.want {
					t.Errorf("/debug says %s took %q, want %q", name, ps[name].Path, tc.want)
				}
			}
			if got := ps["bob"].SendPath; got != tc.send {
				t.Errorf("/debug says the server sends to bob by %q, want %q", got, tc.send)
			}
		})
	}
}
