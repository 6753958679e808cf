package configs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsLoopbackFriendly(t *testing.T) {
	cfg := Embedded()
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
	if cfg.Auth.RequireToken || len(cfg.Auth.Keys) != 0 || cfg.TokenRequired(Room{Name: "demo"}) {
		t.Errorf("default auth = %+v: the default asks for no token", cfg.Auth)
	}
	if !reflect.DeepEqual(cfg.Limits, Defaults().Limits) || cfg.Rooms.ResumeGrace != 15*time.Second {
		t.Errorf("default limits = %+v, resume_grace %s", cfg.Limits, cfg.Rooms.ResumeGrace)
	}
}

func TestDefaultLimitsAreSafe(t *testing.T) {
	want := Limits{MaxRooms: 1000, MaxTracksPerParticipant: 16, MessagesPerSecond: 50, ConnectionsPerIP: 32, TrustedProxies: []string{}, JoinTimeout: 10 * time.Second}
	if got := Defaults().Limits; !reflect.DeepEqual(got, want) {
		t.Errorf("Defaults().Limits = %+v, want %+v", got, want)
	}
	if err := Defaults().Validate(); err != nil {
		t.Errorf("Defaults() does not validate: %v", err)
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
	if r, ok := cfg.Rooms.Room("standup"); !ok || r.MaxParticipants != 50 || r.MaxViewers != 500 {
		t.Errorf("standup = %+v, %v; want the rooms.max_participants and max_viewers, 50 and 500", r, ok)
	}
	if r, ok := cfg.Rooms.Room("lobby"); !ok || r.MaxParticipants != 100 {
		t.Errorf("lobby = %+v, %v", r, ok)
	}
	if cfg.Admin.Open || cfg.Admin.Token != "" || cfg.Admin.Enabled() {
		t.Errorf("example admin = %+v, want closed", cfg.Admin)
	}
	if cfg.Auth.RequireToken || len(cfg.Auth.Keys) != 0 || cfg.TLS.Enabled() {
		t.Errorf("example auth = %+v, tls = %+v: the keys and host are the operator's", cfg.Auth, cfg.TLS)
	}
	if !reflect.DeepEqual(cfg.Limits, Defaults().Limits) || cfg.Rooms.ResumeGrace != 15*time.Second {
		t.Errorf("example limits = %+v, resume_grace %s: want the defaults, documented", cfg.Limits, cfg.Rooms.ResumeGrace)
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

// parseCase is a file and what Parse must make of it.
type parseCase struct {
	name  string
	yaml  string
	check func(t *testing.T, c Config)
	// errs are substrings the error must contain, each with its line.
	errs []string
}

func runParseCases(t *testing.T, tests []parseCase) {
	t.Helper()
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

func TestParse(t *testing.T) {
	runParseCases(t, []parseCase{
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
			errs: []string{`line 2: tls: unknown key "chain" (known keys: autocert, cert, key)`},
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
			name: "cluster",
			yaml: "cluster:\n  redis:\n    address: 10.0.0.2:6379\n    password: pw\n    db: 2\n  node_id: node-a\n  url: http://10.0.0.5:8080\n",
			check: func(t *testing.T, c Config) {
				cl := c.Cluster
				if cl == nil || cl.Redis.Address != "10.0.0.2:6379" || cl.Redis.Password != "pw" || cl.Redis.DB != 2 || cl.NodeID != "node-a" || cl.URL != "http://10.0.0.5:8080" {
					t.Errorf("got %+v", cl)
				}
			},
		},
		{
			name: "no cluster section: alone",
			yaml: "listen: \":9000\"\n",
			check: func(t *testing.T, c Config) {
				if c.Cluster != nil {
					t.Errorf("cluster = %+v, want none", c.Cluster)
				}
			},
		},
		{
			name: "cluster mistakes",
			yaml: "cluster:\n  redis:\n    address: redis\n    db: 99\n  node_id: \"node a\"\n  url: 10.0.0.5:8080\n",
			errs: []string{
				`line 3: cluster.redis.address: "redis" is not a host:port address`,
				`line 4: cluster.redis.db: 99 is not a Redis database number`,
				`line 5: cluster.node_id: "node a" may hold only`,
				`line 6: cluster.url: "10.0.0.5:8080" is not a URL`,
			},
		},
		{
			name: "cluster unknown key",
			yaml: "cluster:\n  redis:\n    adress: x:1\n",
			errs: []string{`line 3: cluster.redis: unknown key "adress" (did you mean "address"?)`},
		},
		{
			name: "port out of range",
			yaml: "ice:\n  udp_port: 70000\n",
			errs: []string{"line 2: ice.udp_port: 70000 is not a port"},
		},
		{
			name: "ephemeral ports with TURN",
			yaml: "ice:\n  udp_port: -1\n",
			errs: []string{"line 2: ice.udp_port: -1 (ephemeral ports) leaves the embedded TURN server no media port"},
		},
		{
			name: "turn secret too short",
			yaml: "turn:\n  secret: short\n",
			errs: []string{"line 2: turn.secret: too short (5 bytes, at least 16)"},
		},
		{
			name: "turn credentials that never expire",
			yaml: "turn:\n  credential_ttl: 8760h\n",
			errs: []string{"line 2: turn.credential_ttl: 8760h0m0s is out of range"},
		},
		{
			name: "turn host with a scheme",
			yaml: "turn:\n  host: turn:meet.example.org:3478\n",
			errs: []string{"line 2: turn.host: \"turn:meet.example.org:3478\" is not a host name"},
		},
		{
			name: "turn allocations",
			yaml: "turn:\n  max_allocations_per_participant: 0\n",
			errs: []string{"line 2: turn.max_allocations_per_participant: 0 must be at least 1"},
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
	})
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
	cfg := Embedded()
	cfg.ICE.UDPPort = -1
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "ice.udp_port") {
		t.Fatalf("err = %v", err)
	}
}

func TestParseSecurityKeys(t *testing.T) {
	const secret = "0123456789abcdef0123456789abcdef" // 32 bytes
	runParseCases(t, []parseCase{
		{
			name: "auth keys and require_token",
			yaml: "auth:\n  keys:\n    - id: k1\n      secret: " + secret + "\n    - id: k2\n      secret: " + secret + "xyz\n  require_token: true\n",
			check: func(t *testing.T, c Config) {
				if len(c.Auth.Keys) != 2 || c.Auth.Keys[0].ID != "k1" || c.Auth.Keys[1].Secret != secret+"xyz" || !c.Auth.RequireToken {
					t.Errorf("auth = %+v", c.Auth)
				}
				if !c.TokenRequired(Room{Name: "any"}) {
					t.Error("an unlisted room does not require the token")
				}
			},
		},
		{
			name: "listed room require_token overrides the default",
			yaml: "auth:\n  keys: [{id: k1, secret: " + secret + "}]\nrooms:\n  list:\n    - name: open\n      require_token: false\n    - name: closed\n      require_token: true\n    - name: default\n",
			check: func(t *testing.T, c Config) {
				for i, want := range []bool{false, true, false} {
					if got := c.TokenRequired(c.Rooms.List[i]); got != want {
						t.Errorf("%s: token required %v, want %v", c.Rooms.List[i].Name, got, want)
					}
				}
				c.Auth.RequireToken = true
				if !c.TokenRequired(c.Rooms.List[2]) || c.TokenRequired(c.Rooms.List[0]) {
					t.Error("a listed room without require_token does not follow auth.require_token")
				}
			},
		},
		{
			name: "limits",
			yaml: "limits:\n  max_rooms: 20\n  max_tracks_per_participant: 4\n  messages_per_second: 100\n  connections_per_ip: 3\n  join_timeout: 5s\n",
			check: func(t *testing.T, c Config) {
				want := Limits{MaxRooms: 20, MaxTracksPerParticipant: 4, MessagesPerSecond: 100, ConnectionsPerIP: 3, TrustedProxies: []string{}, JoinTimeout: 5 * time.Second}
				if !reflect.DeepEqual(c.Limits, want) {
					t.Errorf("limits = %+v, want %+v", c.Limits, want)
				}
			},
		},
		{
			name: "limits left out keep their defaults",
			yaml: "limits:\n  max_rooms: 7\n",
			check: func(t *testing.T, c Config) {
				want := Defaults().Limits
				want.MaxRooms = 7
				if !reflect.DeepEqual(c.Limits, want) {
					t.Errorf("limits = %+v, want %+v", c.Limits, want)
				}
			},
		},
		{
			name: "resume_grace 0 disables resuming",
			yaml: "rooms:\n  resume_grace: 0s\n",
			check: func(t *testing.T, c Config) {
				if c.Rooms.ResumeGrace != 0 {
					t.Errorf("resume_grace = %s", c.Rooms.ResumeGrace)
				}
			},
		},
		{
			name: "resume_grace",
			yaml: "rooms:\n  resume_grace: 1m\n",
			check: func(t *testing.T, c Config) {
				if c.Rooms.ResumeGrace != time.Minute {
					t.Errorf("resume_grace = %s", c.Rooms.ResumeGrace)
				}
			},
		},
		{
			name: "autocert",
			yaml: "listen: \":443\"\ntls:\n  autocert:\n    host: meet.example.org\n    cache_dir: /var/lib/tessera\n    email: ops@example.org\n",
			check: func(t *testing.T, c Config) {
				a := c.TLS.Autocert
				if a.Host != "meet.example.org" || a.CacheDir != "/var/lib/tessera" || a.Email != "ops@example.org" || !a.Enabled() || !c.TLS.Enabled() {
					t.Errorf("tls = %+v", c.TLS)
				}
			},
		},
		{
			name: "unknown auth key",
			yaml: "auth:\n  key: []\n",
			errs: []string{`line 2: auth: unknown key "key" (did you mean "keys"?)`},
		},
		{
			name: "unknown key in an auth key",
			yaml: "auth:\n  keys:\n    - id: k1\n      secrets: x\n",
			errs: []string{`line 4: auth.keys[0]: unknown key "secrets" (did you mean "secret"?)`},
		},
		{
			name: "unknown limit",
			yaml: "limits:\n  max_room: 3\n",
			errs: []string{`line 2: limits: unknown key "max_room" (did you mean "max_rooms"?)`},
		},
		{
			name: "unknown autocert key",
			yaml: "tls:\n  autocert:\n    hostname: x\n",
			errs: []string{`line 3: tls.autocert: unknown key "hostname" (did you mean "host"?)`},
		},
		{
			name: "unknown listed room key",
			yaml: "rooms:\n  list:\n    - name: a\n      require_tokens: true\n",
			errs: []string{`line 4: rooms.list[0]: unknown key "require_tokens" (did you mean "require_token"?)`},
		},
		{
			name: "require_token must be a boolean",
			yaml: "auth:\n  require_token: maybe\n",
			errs: []string{"line 2:", "cannot unmarshal"},
		},
		{
			name: "short secret",
			yaml: "auth:\n  keys:\n    - id: k1\n      secret: short\n",
			errs: []string{"line 4: auth.keys[0].secret: too short (5 bytes; at least 32"},
		},
		{
			name: "key without id",
			yaml: "auth:\n  keys:\n    - secret: " + secret + "\n",
			errs: []string{"line 3: auth.keys[0]: id is empty"},
		},
		{
			name: "key id with a space",
			yaml: "auth:\n  keys:\n    - id: \"k 1\"\n      secret: " + secret + "\n",
			errs: []string{`line 3: auth.keys[0].id: "k 1": at most 64 printable ASCII`},
		},
		{
			name: "duplicate key id",
			yaml: "auth:\n  keys:\n    - id: k1\n      secret: " + secret + "\n    - id: k1\n      secret: " + secret + "\n",
			errs: []string{`line 5: auth.keys[1].id: key id "k1" is used twice`},
		},
		{
			name: "require_token without keys",
			yaml: "listen: \":1\"\nauth:\n  require_token: true\n",
			errs: []string{"line 3: auth.require_token: tokens are required but auth.keys is empty"},
		},
		{
			name: "listed room requiring a token without keys",
			yaml: "rooms:\n  list:\n    - name: a\n      require_token: true\n",
			errs: []string{"line 4: rooms.list[0].require_token: tokens are required but auth.keys is empty"},
		},
		{
			name: "max_viewers out of range",
			yaml: "rooms:\n  max_viewers: 0\n  list:\n    - name: a\n      max_viewers: 200000\n",
			errs: []string{
				"line 2: rooms.max_viewers: 0 is out of range (1-100000)",
				"line 5: rooms.list[0].max_viewers: 200000 is out of range (1-100000, or left out to use rooms.max_viewers)",
			},
		},
		{
			name: "resume_grace negative",
			yaml: "rooms:\n  resume_grace: -1s\n",
			errs: []string{"line 2: rooms.resume_grace: -1s is out of range"},
		},
		{
			name: "resume_grace too long",
			yaml: "rooms:\n  resume_grace: 1h\n",
			errs: []string{"line 2: rooms.resume_grace: 1h0m0s is out of range (0 disables resuming; at most 10m0s)"},
		},
		{
			name: "every limit out of range",
			yaml: "limits:\n  max_rooms: 0\n  max_tracks_per_participant: 65\n  messages_per_second: 1\n  connections_per_ip: 0\n  join_timeout: 100ms\n",
			errs: []string{
				"line 2: limits.max_rooms: 0 is out of range (1-1000000)",
				"line 3: limits.max_tracks_per_participant: 65 is out of range (1-64)",
				"line 4: limits.messages_per_second: 1 is out of range (10-10000)",
				"line 5: limits.connections_per_ip: 0 is out of range (1-100000)",
				"line 6: limits.join_timeout: 100ms is out of range (1s-10m)",
			},
		},
		{
			name: "max_rooms below the listed rooms",
			yaml: "rooms:\n  list:\n    - name: a\n    - name: b\nlimits:\n  max_rooms: 1\n",
			errs: []string{"line 6: limits.max_rooms: 1 is fewer than the 2 listed rooms"},
		},
		{
			name: "limits too high",
			yaml: "limits:\n  max_rooms: 2000000\n  messages_per_second: 20000\n  join_timeout: 1h\n",
			errs: []string{
				"line 2: limits.max_rooms: 2000000 is out of range",
				"line 3: limits.messages_per_second: 20000 is out of range",
				"line 4: limits.join_timeout: 1h0m0s is out of range",
			},
		},
		{
			name: "autocert excludes certificate files",
			yaml: "listen: \":443\"\ntls:\n  cert: a.pem\n  key: a.key\n  autocert:\n    host: meet.example.org\n    cache_dir: /tmp/c\n",
			errs: []string{"line 2: tls: cert/key and autocert exclude each other"},
		},
		{
			name: "autocert host must be a DNS name",
			yaml: "listen: \":443\"\ntls:\n  autocert:\n    host: 203.0.113.7\n    cache_dir: /tmp/c\n",
			errs: []string{`line 4: tls.autocert.host: "203.0.113.7" is not a DNS name`},
		},
		{
			name: "autocert host with a port",
			yaml: "listen: \":443\"\ntls:\n  autocert:\n    host: meet.example.org:443\n    cache_dir: /tmp/c\n",
			errs: []string{`line 4: tls.autocert.host: "meet.example.org:443" is not a DNS name`},
		},
		{
			name: "autocert host without a domain",
			yaml: "listen: \":443\"\ntls:\n  autocert:\n    host: localhost\n    cache_dir: /tmp/c\n",
			errs: []string{`line 4: tls.autocert.host: "localhost" is not a DNS name`},
		},
		{
			name: "autocert needs a cache",
			yaml: "listen: \":443\"\ntls:\n  autocert:\n    host: meet.example.org\n",
			errs: []string{"line 3: tls.autocert: cache_dir is required"},
		},
		{
			name: "autocert needs port 443",
			yaml: "listen: \":8443\"\ntls:\n  autocert:\n    host: meet.example.org\n    cache_dir: /tmp/c\n",
			errs: []string{`line 3: tls.autocert: listen ":8443": Let's Encrypt's TLS-ALPN-01 challenge connects to port 443`},
		},
		{
			name: "autocert cannot be reached on loopback",
			yaml: "listen: 127.0.0.1:443\ntls:\n  autocert:\n    host: meet.example.org\n    cache_dir: /tmp/c\n",
			errs: []string{`line 3: tls.autocert: listen "127.0.0.1:443" is reachable from this machine only`},
		},
		{
			name: "autocert email",
			yaml: "listen: \":443\"\ntls:\n  autocert:\n    host: meet.example.org\n    cache_dir: /tmp/c\n    email: \"Ops <ops@example.org>\"\n",
			errs: []string{`line 6: tls.autocert.email: "Ops <ops@example.org>" is not an email address`},
		},
		{
			name: "autocert settings without a host",
			yaml: "tls:\n  autocert:\n    cache_dir: /tmp/c\n",
			errs: []string{"line 2: tls.autocert: host is required"},
		},
	})
}

func TestChanged(t *testing.T) {
	a := Embedded()
	b := Embedded()
	if got := Changed(a, b); len(got) != 0 {
		t.Errorf("Changed of equal configs = %q", got)
	}
	b.Listen = ":9"
	b.ICE.UDPPort = 5
	b.Rooms.List = []Room{{Name: "x"}}
	b.Auth.Keys = []AuthKey{{ID: "k", Secret: "s"}}
	b.TLS.Autocert.Host = "h.example"
	b.Limits.JoinTimeout = time.Minute
	want := []string{"listen", "tls.autocert.host", "ice.udp_port", "rooms.list", "auth.keys", "limits.join_timeout"}
	if got := Changed(a, b); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Changed = %q, want %q", got, want)
	}
}
