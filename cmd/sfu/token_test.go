package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	neturl "net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/signaling/client"
)

const tokenConfig = `listen: 127.0.0.1:0
ice:
  loopback: true
rooms:
  list:
    - name: open
      require_token: false
auth:
  require_token: true
  keys:
    - id: new
      secret: ` + testSecret + `-new
    - id: old
      secret: ` + testSecret + `
`

// TestTokenCommand runs `sfu token` as the binary does: the token it prints
// opens its room on a server with the same configuration, as the name it
// gives and with the permissions asked for.
func TestTokenCommand(t *testing.T) {
	path := writeConfig(t, tokenConfig)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SFU_TEST_RUN_MAIN=1",
		"SFU_TEST_ARGS=token --config "+path+" --room standup --name Ann --ttl 10m --no-publish --admin --kid old")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sfu token: %v\n%s", err, stderr.String())
	}
	token := strings.TrimSpace(string(out))
	if strings.Count(token, ".") != 2 || strings.ContainsAny(token, " \n") {
		t.Fatalf("output is not one JWT: %q", out)
	}

	// What it says, checked with the old key alone.
	old, err := rooms.NewAuth(rooms.Key{ID: "old", Secret: []byte(testSecret)})
	if err != nil {
		t.Fatal(err)
	}
	g, err := old.Verify(token)
	if err != nil {
		t.Fatalf("token not signed with --kid old: %v", err)
	}
	if g.Room != "standup" || g.Name != "Ann" || g.Permissions != (rooms.Permissions{Subscribe: true, Admin: true}) {
		t.Errorf("grant = %+v", g)
	}
	if left := time.Until(g.Expires); left < 9*time.Minute || left > 10*time.Minute {
		t.Errorf("expires in %s, want --ttl 10m", left)
	}

	addr := startInProcess(t, "--config", path)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url := "ws://" + addr + "/ws"
	c, err := client.Dial(ctx, url, client.Options{Room: "standup", Name: "Mallory", Token: token})
	if err != nil {
		t.Fatalf("the server refuses the command's token: %v", err)
	}
	defer c.Close()
	if c.Self.Name != "Ann" {
		t.Errorf("joined as %q, want Ann", c.Self.Name)
	}
	if _, err := client.Dial(ctx, url, client.Options{Room: "standup", Name: "x"}); joinError(err) != "unauthorized" {
		t.Errorf("without a token: %v, want unauthorized", err)
	}
	if _, err := client.Dial(ctx, url, client.Options{Room: "other", Name: "x", Token: token}); joinError(err) != "unauthorized" {
		t.Errorf("the token in another room: %v, want unauthorized", err)
	}
	o, err := client.Dial(ctx, url, client.Options{Room: "open", Name: "x"})
	if err != nil {
		t.Fatalf("a listed room with require_token false: %v", err)
	}
	o.Close()

	// Without --kid, the first key signs; the defaults grant publish and subscribe.
	var buf bytes.Buffer
	if err := runToken([]string{"--config", path, "--room", "r"}, &buf, io.Discard); err != nil {
		t.Fatal(err)
	}
	newKey, _ := rooms.NewAuth(rooms.Key{ID: "new", Secret: []byte(testSecret + "-new")})
	g, err = newKey.Verify(strings.TrimSpace(buf.String()))
	if err != nil {
		t.Fatalf("default key: %v", err)
	}
	if g.Name != "" || g.Permissions != (rooms.Permissions{Publish: true, Subscribe: true}) || time.Until(g.Expires) < 59*time.Minute {
		t.Errorf("default grant = %+v", g)
	}

	// --link: the page's address, the token in its fragment.
	buf.Reset()
	if err := runToken([]string{"--config", path, "--room", "stand.up", "--name", "Ann Lee", "--link", "https://sfu.example.com"}, &buf, io.Discard); err != nil {
		t.Fatal(err)
	}
	link, err := neturl.Parse(strings.TrimSpace(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	frag, _ := neturl.ParseQuery(link.Fragment)
	if link.Host != "sfu.example.com" || link.Path != "/" || link.Query().Get("room") != "stand.up" || link.Query().Get("name") != "Ann Lee" {
		t.Errorf("link = %s", link)
	}
	if g, err := newKey.Verify(frag.Get("token")); err != nil || g.Room != "stand.up" {
		t.Errorf("the link's token: %+v, %v", g, err)
	}
}

func TestTokenCommandErrors(t *testing.T) {
	path := writeConfig(t, tokenConfig)
	noKeys := writeConfig(t, "listen: 127.0.0.1:0\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--config", path}, "--room is required"},
		{[]string{"--config", path, "--room", "r", "--ttl", "-1m"}, "must be positive"},
		{[]string{"--config", path, "--room", "r", "--kid", "nope"}, `no auth key "nope"`},
		{[]string{"--config", path, "--room", "not a room"}, "invalid room"},
		{[]string{"--config", noKeys, "--room", "r"}, "no auth.keys"},
		{[]string{"--room", "r"}, "no auth.keys"},
		{[]string{"--config", path, "--room", "r", "stray"}, "unexpected argument"},
		{[]string{"--config", path, "--room", "r", "--link", "sfu.example.com"}, "want an http or https URL"},
	} {
		var out bytes.Buffer
		err := runToken(tc.args, &out, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("sfu token %q: %v, want %q", tc.args, err, tc.want)
		}
		if out.Len() > 0 {
			t.Errorf("sfu token %q printed %q", tc.args, out.String())
		}
	}
	if err := runToken([]string{"--help"}, io.Discard, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("--help: %v", err)
	}
}
