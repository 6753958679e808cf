package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tessera-rtc/tessera/configs"
	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/signaling/client"
)

const testSecret = "0123456789abcdef0123456789abcdef-test"

// startBinary runs the real binary (this test binary, through TestMain)
// with args; its log goes to the returned buffer. It returns the address
// it listens on.
func startBinary(t *testing.T, args string) (*exec.Cmd, *lockedBuffer, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SFU_TEST_RUN_MAIN=1", "SFU_TEST_ARGS="+args)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	logs := &lockedBuffer{}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		urlRe := regexp.MustCompile(`url=https?://([0-9.:]+)/`)
		for sc.Scan() {
			line := sc.Text()
			_, _ = logs.Write([]byte(line + "\n"))
			if m := urlRe.FindStringSubmatch(line); m != nil {
				select {
				case addrc <- m[1]:
				default:
				}
			}
		}
	}()
	select {
	case addr := <-addrc:
		return cmd, logs, addr
	case <-time.After(15 * time.Second):
		t.Fatalf("no listening line in the log:\n%s", logs.String())
	}
	return nil, nil, ""
}

// waitLog waits for a log line containing every one of parts.
func waitLog(t *testing.T, logs *lockedBuffer, d time.Duration, parts ...string) string {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, line := range strings.Split(logs.String(), "\n") {
			all := true
			for _, p := range parts {
				all = all && strings.Contains(line, p)
			}
			if all {
				return line
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q in:\n%s", parts, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func joinError(err error) string {
	var perr *client.Error
	if errors.As(err, &perr) {
		return perr.Code
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// TestSIGHUPReload runs the real binary with a configuration file, starts a
// call, rewrites the file and sends SIGHUP: a newly listed room works with
// the new token settings and keys, a room taken off the list keeps its call
// (media keeps flowing) but takes no newcomers, and the changed listen
// address and ping interval are refused with one log line naming them.
func TestSIGHUPReload(t *testing.T) {
	path := writeConfig(t, `listen: 127.0.0.1:0
ice:
  loopback: true
  udp_port: 0
rooms:
  on_demand: false
  list:
    - name: call
`)
	cmd, logs, addr := startBinary(t, "--config "+path)
	url := "ws://" + addr + "/ws"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	a, err := client.Dial(ctx, url, client.Options{Room: "call", Name: "a"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	st.Publish(ctx, t, a, "video")
	b, err := client.Dial(ctx, url, client.Options{Room: "call", Name: "b"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var got *st.Received
	select {
	case tr := <-b.Tracks():
		got = st.Receive(tr)
	case <-time.After(15 * time.Second):
		t.Fatal("no media before the reload")
	}
	if _, err := client.Dial(ctx, url, client.Options{Room: "new", Name: "x"}); joinError(err) != "room-not-found" {
		t.Fatalf("join an unlisted room before the reload: %v", err)
	}

	if err := os.WriteFile(path, []byte(`listen: 127.0.0.1:1
websocket:
  ping_interval: 7s
ice:
  loopback: true
  udp_port: 0
rooms:
  on_demand: false
  list:
    - name: new
      require_token: true
auth:
  keys:
    - id: k1
      secret: `+testSecret+`
`), 0o600); err != nil {
		t.Fatal(err)
	}
	before := got.Packets.Load()
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	line := waitLog(t, logs, 10*time.Second, "level=WARN", "cannot change while the server runs")
	if !strings.Contains(line, "keys=listen,websocket.ping_interval") {
		t.Errorf("refusal line does not name listen and websocket.ping_interval: %s", line)
	}
	waitLog(t, logs, 10*time.Second, "config reloaded", "applied=rooms.list,auth.keys")

	// The new room, with the new keys.
	if _, err := client.Dial(ctx, url, client.Options{Room: "new", Name: "x"}); joinError(err) != "unauthorized" {
		t.Errorf("new room without a token: %v, want unauthorized", err)
	}
	auth, err := rooms.NewAuth(rooms.Key{ID: "k1", Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := auth.Issue(rooms.Grant{Room: "new", Permissions: rooms.Permissions{Publish: true, Subscribe: true}, Expires: time.Now().Add(time.Minute)}, "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(ctx, url, client.Options{Room: "new", Name: "x", Token: tok})
	if err != nil {
		t.Fatalf("new room with a token: %v", err)
	}
	c.Close()
	// The room taken off the list takes no newcomers...
	if _, err := client.Dial(ctx, url, client.Options{Room: "call", Name: "late"}); joinError(err) != "room-not-found" {
		t.Errorf("join the unlisted room in use: %v, want room-not-found", err)
	}
	// ...but its call goes on: media flows, nobody was dropped.
	deadline := time.Now().Add(5 * time.Second)
	for got.Packets.Load() < before+100 {
		if time.Now().After(deadline) {
			t.Fatalf("media stopped at the reload: %d packets before, %d after", before, got.Packets.Load())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, cl := range []*client.Client{a, b} {
		select {
		case <-cl.Done():
			t.Errorf("%s was disconnected by the reload", cl.Self.Name)
		default:
		}
	}

	// A file that does not load changes nothing and says why.
	if err := os.WriteFile(path, []byte("rooms:\n  lisst: []\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, 10*time.Second, "config reload failed", `unknown key \"lisst\"`)
	c, err = client.Dial(ctx, url, client.Options{Room: "new", Name: "y", Token: tok})
	if err != nil {
		t.Fatalf("after a failed reload: %v", err)
	}
	c.Close()
}

// TestSIGHUPWithoutConfig: without --config, SIGHUP neither ends the server
// nor changes anything.
func TestSIGHUPWithoutConfig(t *testing.T) {
	cmd, logs, addr := startBinary(t, "--listen 127.0.0.1:0")
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, 10*time.Second, "SIGHUP ignored")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, "ws://"+addr+"/ws", client.Options{Room: "r", Name: "n"})
	if err != nil {
		t.Fatalf("after SIGHUP: %v", err)
	}
	c.Close()
}

// TestKeepFixedAgreesWithLiveKey changes every key of a configuration:
// keepFixed must undo exactly the changes liveKey calls not live.
func TestKeepFixedAgreesWithLiveKey(t *testing.T) {
	cur := configs.Defaults()
	next := configs.Defaults()
	changeEveryLeaf(reflect.ValueOf(&next).Elem())
	all := configs.Changed(cur, next)
	if len(all) < 30 {
		t.Fatalf("only %d keys changed: %q", len(all), all)
	}
	kept := configs.Changed(cur, keepFixed(cur, next))
	var wantKept []string
	for _, k := range all {
		if liveKey(k) {
			wantKept = append(wantKept, k)
		}
	}
	if strings.Join(kept, " ") != strings.Join(wantKept, " ") {
		t.Errorf("after keepFixed the changes are\n%q\nwant the live keys\n%q", kept, wantKept)
	}
}

// changeEveryLeaf gives every field a value other than its own.
func changeEveryLeaf(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := range v.NumField() {
			changeEveryLeaf(v.Field(i))
		}
	case reflect.String:
		v.SetString(v.String() + "x")
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Int, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Slice:
		v.Set(reflect.Append(v, reflect.Zero(v.Type().Elem())))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
	}
}
