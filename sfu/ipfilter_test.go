package sfu

import (
	"net"
	"net/netip"
	"testing"
)

// TestIPFilter: which local addresses ICE may use, from ice.ips and
// ice.loopback.
func TestIPFilter(t *testing.T) {
	pfx := func(s ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range s {
			out = append(out, netip.MustParsePrefix(p))
		}
		return out
	}
	tests := []struct {
		name     string
		cfg      Config
		pass     []string
		refused  []string
		noFilter bool
	}{
		{name: "no ips: no filter", cfg: Config{Loopback: true}, noFilter: true},
		{name: "ips with loopback on", cfg: Config{IPs: pfx("10.0.0.0/8"), Loopback: true},
			pass: []string{"10.1.2.3", "127.0.0.1", "::1"}, refused: []string{"192.168.1.1", "fd00::1"}},
		{name: "ips with loopback off", cfg: Config{IPs: pfx("10.0.0.0/8")},
			pass: []string{"10.1.2.3"}, refused: []string{"127.0.0.1", "::1"}},
		{name: "ips naming IPv4 loopback only", cfg: Config{IPs: pfx("127.0.0.1/32"), Loopback: true},
			pass: []string{"127.0.0.1"}, refused: []string{"::1", "127.0.0.2", "10.1.2.3"}},
		{name: "ips naming IPv6 loopback and a LAN", cfg: Config{IPs: pfx("::1/128", "192.168.0.0/16"), Loopback: true},
			pass: []string{"::1", "192.168.4.5"}, refused: []string{"127.0.0.1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.cfg.ipFilter()
			if tc.noFilter {
				if f != nil {
					t.Fatal("a filter without ips")
				}
				return
			}
			for _, a := range tc.pass {
				if !f(net.ParseIP(a)) {
					t.Errorf("%s refused", a)
				}
			}
			for _, a := range tc.refused {
				if f(net.ParseIP(a)) {
					t.Errorf("%s allowed", a)
				}
			}
		})
	}
}
