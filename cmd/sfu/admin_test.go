package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tessera-rtc/tessera/configs"
	"github.com/tessera-rtc/tessera/signaling/client"
)

const adminToken = "0123456789abcdef-admin"

// startLogged runs the server in this process, logging to logs, until the
// test ends, and returns its address.
func startLogged(t *testing.T, logs io.Writer, args ...string) string {
	t.Helper()
	addr, _ := startStoppable(t, logs, args...)
	return addr
}

// startStoppable is startLogged that can also be stopped (gracefully, as
// on SIGTERM) before the test ends.
func startStoppable(t *testing.T, logs io.Writer, args ...string) (addr string, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, logs, func(a string) { addrc <- a }) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				t.Error("server did not stop")
			}
		})
	}
	t.Cleanup(stop)
	select {
	case a := <-addrc:
		return a, stop
	case err := <-done:
		t.Fatalf("server did not start: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("server did not start")
	}
	return "", nil
}

func get(t *testing.T, url, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// TestAdminEndpointsWired runs the binary's server with an admin token: the
// operator endpoints answer 401 without it and 200 with it, the client's
// own endpoints stay open, and negotiations reach the metrics.
func TestAdminEndpointsWired(t *testing.T) {
	cfg := writeConfig(t, "listen: 127.0.0.1:0\nice:\n  loopback: true\nadmin:\n  token: "+adminToken+"\n")
	base := "http://" + startInProcess(t, "--config", cfg)
	for _, path := range []string{"/debug", "/debug/rooms", "/metrics", "/admin/rooms", "/debug/pprof/"} {
		if status, _ := get(t, base+path, ""); status != http.StatusUnauthorized {
			t.Errorf("GET %s without the token: %d, want 401", path, status)
		}
		if status, _ := get(t, base+path, "Bearer "+adminToken); status != http.StatusOK {
			t.Errorf("GET %s with the token: %d, want 200", path, status)
		}
	}
	for _, path := range []string{"/", "/healthz"} {
		if status, _ := get(t, base+path, ""); status != http.StatusOK {
			t.Errorf("GET %s: %d, want 200 without a token", path, status)
		}
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := client.Dial(ctx, "ws://"+strings.TrimPrefix(base, "http://")+"/ws", client.Options{Room: "r", Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	synth, err := client.NewSynth("audio", "mic", a.Self.ID, 1, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Publish(ctx, synth.Track); err != nil {
		t.Fatal(err)
	}
	_, body := get(t, base+"/metrics", "Bearer "+adminToken)
	for _, want := range []string{
		`tessera_negotiation_duration_seconds_count{kind="client-offer"} 1`,
		"tessera_participants 1",
		"tessera_tracks 1",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics has no %q", want)
		}
	}
}

// TestAdminOpenByDefault: the embedded default opens the endpoints on
// loopback, and says so at startup.
func TestAdminOpenByDefault(t *testing.T) {
	logs := &lockedBuffer{}
	base := "http://" + startLogged(t, logs, "--listen", "127.0.0.1:0")
	for _, path := range []string{"/debug", "/debug/rooms", "/metrics", "/admin/rooms"} {
		if status, _ := get(t, base+path, ""); status != http.StatusOK {
			t.Errorf("GET %s: %d, want 200", path, status)
		}
	}
	if !strings.Contains(logs.String(), "admin endpoints open on loopback") {
		t.Errorf("startup log:\n%s", logs)
	}
}

// TestAdminWarnings checks what startup says about the operator endpoints
// for each way of configuring them.
func TestAdminWarnings(t *testing.T) {
	for _, tc := range []struct {
		listen string
		admin  configs.Admin
		tls    bool
		want   string // level and message start
	}{
		{"0.0.0.0:8080", configs.Admin{Open: true}, false, "WARN admin endpoints open to anyone"},
		{":8443", configs.Admin{Open: true}, true, "WARN admin endpoints open to anyone"},
		{"127.0.0.1:8080", configs.Admin{Open: true}, false, "INFO admin endpoints open on loopback"},
		{":8080", configs.Admin{}, false, "INFO admin endpoints disabled"},
		{":8080", configs.Admin{Token: adminToken}, false, "WARN admin token sent in clear"},
		{":8443", configs.Admin{Token: adminToken}, true, ""},
		{"127.0.0.1:8080", configs.Admin{Token: adminToken}, false, ""},
	} {
		var buf strings.Builder
		cfg := configs.Embedded()
		cfg.Listen, cfg.Admin = tc.listen, tc.admin
		if tc.tls {
			cfg.TLS = configs.TLS{Cert: "c.pem", Key: "k.pem"}
		}
		s := &server{cfg: cfg, log: slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{
			ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
				if a.Key == slog.TimeKey {
					return slog.Attr{}
				}
				return a
			},
		}))}
		s.warnAdmin()
		got := strings.Replace(strings.TrimPrefix(buf.String(), "level="), " msg=\"", " ", 1)
		if (tc.want == "") != (got == "") || !strings.HasPrefix(got, tc.want) {
			t.Errorf("listen %s, admin %+v, tls %v: logged %q, want %q", tc.listen, tc.admin, tc.tls, got, tc.want)
		}
	}
}

// TestJSONLogsNameRoomAndParticipant runs a call with log.format json:
// every line is a JSON object; joins, leaves, publications and ICE state
// changes are logged once each with the room and participant; media
// produces no log lines.
func TestJSONLogsNameRoomAndParticipant(t *testing.T) {
	cfg := writeConfig(t, "listen: 127.0.0.1:0\nlog:\n  format: json\n  level: info\nice:\n  loopback: true\n")
	logs := &lockedBuffer{}
	addr := startLogged(t, logs, "--config", cfg)
	url := "ws://" + addr + "/ws"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	a, err := client.Dial(ctx, url, client.Options{Room: "logs", Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	synth, err := client.NewSynth("video", "cam", a.Self.ID, 1, 300)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := a.Publish(ctx, synth.Track); err != nil {
		t.Fatal(err)
	}
	go synth.Run(ctx, 10*time.Millisecond)
	b, err := client.Dial(ctx, url, client.Options{Room: "logs", Name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Tracks():
	case <-time.After(10 * time.Second):
		t.Fatal("no media")
	}
	time.Sleep(2 * time.Second) // some 200 packets forwarded
	if err := b.Leave(); err != nil {
		t.Fatal(err)
	}
	<-b.Done()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), `"participant left"`) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}

	ids := map[string]string{a.Self.ID: "a", b.Self.ID: "b"}
	counts := map[string]map[string]int{} // msg -> participant -> lines
	lines := 0
	sc := bufio.NewScanner(strings.NewReader(logs.String()))
	for sc.Scan() {
		lines++
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Errorf("not a JSON line: %s", sc.Text())
			continue
		}
		msg, _ := rec["msg"].(string)
		switch msg {
		case "participant joined", "participant left", "track published", "ice state":
		default:
			continue
		}
		p, _ := rec["participant"].(string)
		if rec["room"] != "logs" || ids[p] == "" {
			t.Errorf("%q without room and participant: %s", msg, sc.Text())
			continue
		}
		if counts[msg] == nil {
			counts[msg] = map[string]int{}
		}
		counts[msg][ids[p]]++
	}
	for msg, want := range map[string]map[string]int{
		"participant joined": {"a": 1, "b": 1},
		"participant left":   {"b": 1},
		"track published":    {"a": 1},
	} {
		for who, n := range want {
			if counts[msg][who] != n {
				t.Errorf("%q logged %d times for %s, want %d", msg, counts[msg][who], who, n)
			}
		}
	}
	for _, who := range []string{"a", "b"} {
		if n := counts["ice state"][who]; n < 1 || n > 6 {
			t.Errorf("%d ICE state lines for %s, want one per change", n, who)
		}
	}
	if lines > 40 {
		t.Errorf("%d log lines for a short call: something logs per packet\n%s", lines, logs)
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("log:\n%s", logs)
	}
}
