package configs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsLoopbackFriendly(t *testing.T) {
	cfg := Default()
	if !cfg.ICE.Loopback {
		t.Error("default does not offer loopback candidates")
	}
	if !cfg.Rooms.OnDemand {
		t.Error("default does not create rooms on demand")
	}
	if !strings.HasPrefix(cfg.Listen, "127.0.0.1:") {
		t.Errorf("default listens on %q, want loopback", cfg.Listen)
	}
	if cfg.TLS.Enabled() {
		t.Error("default enables TLS")
	}
	if !cfg.Admin.Open || cfg.Admin.Token != "" || !cfg.LoopbackOnly() {
		t.Errorf("default admin = %+v on %q, want open on loopback", cfg.Admin, cfg.Listen)
	}
}

func TestExampleFileLoads(t *testing.T) {
	cfg, err := Load("rooms.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.ICE.UDPPort != 50000 || len(cfg.Rooms.List) != 2 || cfg.Rooms.List[0].Name != "lobby" {
		t.Errorf("unexpected example config: %+v", cfg)
	}
	if r, ok := cfg.Rooms.Room("standup"); !ok || r.MaxParticipants != 50 {
		t.Errorf("standup = %+v, %v; want the rooms.max_participants default 50", r, ok)
	}
	if r, ok := cfg.Rooms.Room("lobby"); !ok || r.MaxParticipants != 100 {
		t.Errorf("lobby = %+v, %v", r, ok)
	}
	if cfg.Admin.Open || cfg.Admin.Token != "" || cfg.Admin.Enabled() {
		t.Errorf("example admin = %+v, want closed", cfg.Admin)
	}
}

func TestFileWithoutAdminIsClosed(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte("listen: \":9000\"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Admin.Open || cfg.Admin.Enabled() {
		t.Errorf("admin = %+v: a file that says nothing must not open the endpoints", cfg.Admin)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for listen, want := range map[string]bool{
		"127.0.0.1:8080": true,
		"127.0.0.2:80":   true,
		"[::1]:8080":     true,
		"localhost:8080": true,
		":8080":          false,
		"0.0.0.0:8080":   false,
		"[::]:8080":      false,
		"10.0.0.5:8080":  false,
		"meet.example:1": false,
		"nonsense":       false,
	} {
		if got := (Config{Listen: listen}).LoopbackOnly(); got != want {
			t.Errorf("LoopbackOnly(%q) = %v, want %v", listen, got, want)
		}
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, c Config)
		// errs are substrings the error must contain, each with its line.
		errs []string
	}{
		{
			name: "empty file keeps defaults",
			yaml: "",
			check: func(t *testing.T, c Config) {
				if c.Listen != Defaults().Listen || c.WebSocket.MaxMessageBytes != 64<<10 {
					t.Errorf("got %+v", c)
				}
			},
		},
		{
			name: "values and durations",
			yaml: "listen: \":9000\"\nice:\n  udp_port: 40000\n  ips: [10.0.0.0/8, 192.168.1.5]\n  nat_1to1_ips: [203.0.113.7]\nwebsocket:\n  ping_interval: 3s\n",
			check: func(t *testing.T, c Config) {
				if c.Listen != ":9000" || c.ICE.UDPPort != 40000 || len(c.ICE.IPs) != 2 || c.WebSocket.PingInterval != 3*time.Second {
					t.Errorf("got %+v", c)
				}
				if c.Log.Level != "info" {
					t.Errorf("log.level default lost: %q", c.Log.Level)
				}
			},
		},
		{
			name: "unknown top-level key",
			yaml: "listen: \":9000\"\nlisten_addr: x\n",
			errs: []string{`line 2: unknown key "listen_addr"`, `did you mean "listen"?`},
		},
		{
			name: "unknown nested key names its parent",
			yaml: "ice:\n  loopback: true\n  udp_prot: 5\n",
			errs: []string{`line 3: ice: unknown key "udp_prot" (did you mean "udp_port"?)`},
		},
		{
			name: "unknown key in a list item",
			yaml: "rooms:\n  list:\n    - name: a\n    - name: b\n      colour: red\n",
			errs: []string{`line 5: rooms.list[1]: unknown key "colour"`},
		},
		{
			name: "far-off key lists the known ones",
			yaml: "tls:\n  chain: x\n",
			errs: []string{`line 2: tls: unknown key "chain" (known keys: cert, key)`},
		},
		{
			name: "wrong type",
			yaml: "ice:\n  udp_port: lots\n",
			errs: []string{"line 2:", "cannot unmarshal"},
		},
		{
			name: "bad duration",
			yaml: "shutdown_timeout: soon\n",
			errs: []string{"line 1:"},
		},
		{
			name: "syntax error",
			yaml: "ice:\n  udp_port: [1\n",
			errs: []string{"invalid YAML"},
		},
		{
			name: "port out of range",
			yaml: "ice:\n  udp_port: 70000\n",
			errs: []string{"line 2: ice.udp_port: 70000 is not a port"},
		},
		{
			name: "several problems are all reported",
			yaml: "listen: nonsense\nlog:\n  level: loud\nice:\n  ips: [not-an-ip]\n  nat_1to1_ips: [1.2.3]\n",
			errs: []string{
				`line 1: listen: "nonsense" is not a host:port`,
				`line 3: log.level: "loud" is not one of`,
				`line 5: ice.ips[0]: "not-an-ip" is not an IP address or CIDR`,
				`line 6: ice.nat_1to1_ips[0]`,
			},
		},
		{
			name: "origin must be an origin",
			yaml: "websocket:\n  allowed_origins: [\"https://ok.example\", \"example.org\", \"*\"]\n",
			errs: []string{`websocket.allowed_origins[1]: "example.org" is not an origin`},
		},
		{
			name: "tls needs both files",
			yaml: "tls:\n  cert: a.pem\n",
			errs: []string{"line 1: tls: cert and key must be given together"},
		},
		{
			name: "turn needs credentials",
			yaml: "ice:\n  servers:\n    - urls: [\"turn:turn.example:3478\"]\n",
			errs: []string{`line 3: ice.servers[0]: TURN server "turn:turn.example:3478" needs username and credential`},
		},
		{
			name: "stun url scheme",
			yaml: "ice:\n  servers:\n    - urls: [\"http://x\"]\n",
			errs: []string{`ice.servers[0].urls[0]: "http://x" is not a stun:`},
		},
		{
			name: "duplicate room",
			yaml: "rooms:\n  list:\n    - name: a\n    - name: a\n",
			errs: []string{`line 4: rooms.list[1].name: room "a" is listed twice`},
		},
		{
			name: "no joinable room",
			yaml: "rooms:\n  on_demand: false\n",
			errs: []string{"rooms: no room can be joined"},
		},
		{
			name: "tiny frame limit",
			yaml: "websocket:\n  max_message_bytes: 10\n",
			errs: []string{"line 2: websocket.max_message_bytes: 10 is too small"},
		},
		{
			name: "admin token",
			yaml: "admin:\n  token: 0123456789abcdef\n",
			check: func(t *testing.T, c Config) {
				if c.Admin.Token != "0123456789abcdef" || c.Admin.Open || !c.Admin.Enabled() {
					t.Errorf("admin = %+v", c.Admin)
				}
			},
		},
		{
			name: "admin open",
			yaml: "admin:\n  open: true\n",
			check: func(t *testing.T, c Config) {
				if !c.Admin.Open || !c.Admin.Enabled() {
					t.Errorf("admin = %+v", c.Admin)
				}
			},
		},
		{
			name: "admin token too short",
			yaml: "listen: \":1\"\nadmin:\n  token: secret\n",
			errs: []string{"line 3: admin.token: too short (6 characters; at least 16)"},
		},
		{
			name: "admin token with a space",
			yaml: "admin:\n  token: \"0123456789 abcdef\"\n",
			errs: []string{"line 2: admin.token: may hold only printable ASCII"},
		},
		{
			name: "admin open with a token",
			yaml: "admin:\n  open: true\n  token: 0123456789abcdef\n",
			errs: []string{"line 1: admin: open and token exclude each other"},
		},
		{
			name: "admin unknown key",
			yaml: "admin:\n  tokens: x\n",
			errs: []string{`line 2: admin: unknown key "tokens" (did you mean "token"?)`},
		},
		{
			name: "admin open must be a boolean",
			yaml: "admin:\n  open: sometimes\n",
			errs: []string{"line 2:", "cannot unmarshal"},
		},
		{
			name: "two documents",
			yaml: "listen: \":1\"\n---\nlisten: \":2\"\n",
			errs: []string{"only one YAML document"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("test.yaml", []byte(tc.yaml))
			if len(tc.errs) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				tc.check(t, cfg)
				return
			}
			if err == nil {
				t.Fatalf("no error; want %q", tc.errs)
			}
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("error %T is not *configs.Error", err)
			}
			for _, want := range tc.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error\n%v\ndoes not contain %q", err, want)
				}
			}
			if !strings.HasPrefix(err.Error(), "test.yaml: ") {
				t.Errorf("error does not name the file: %v", err)
			}
		})
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v, want a wrapped os.ErrNotExist", err)
	}
}

func TestRoomsPolicy(t *testing.T) {
	r := Rooms{OnDemand: false, MaxParticipants: 7, List: []Room{{Name: "a", MaxParticipants: 2}, {Name: "b"}}}
	if got, ok := r.Room("a"); !ok || got.MaxParticipants != 2 {
		t.Errorf("a = %+v %v", got, ok)
	}
	if got, ok := r.Room("b"); !ok || got.MaxParticipants != 7 {
		t.Errorf("b = %+v %v", got, ok)
	}
	if _, ok := r.Room("c"); ok {
		t.Error("unlisted room allowed without on_demand")
	}
	r.OnDemand = true
	if got, ok := r.Room("c"); !ok || got.MaxParticipants != 7 {
		t.Errorf("c = %+v %v", got, ok)
	}
}

func TestValidateAfterOverride(t *testing.T) {
	cfg := Default()
	cfg.ICE.UDPPort = -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "ice.udp_port") {
		t.Fatalf("err = %v", err)
	}
}
