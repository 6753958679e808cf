package signaling

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

// TestClientKey: the per-address limit counts an IPv6 client by its /64
// (one subscriber's), and believes X-Forwarded-For from trusted proxies
// only, up to the first address that is not one.
func TestClientKey(t *testing.T) {
	h := &Handler{cfg: Config{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::1/128")}}}
	for _, tc := range []struct {
		name, remote, xff, want string
	}{
		{"ipv4", "192.0.2.7:5000", "", "192.0.2.7"},
		{"ipv6 counts its /64", "[2001:db8:1:2:aaaa::1]:5000", "", "2001:db8:1:2::/64"},
		{"another address of the /64", "[2001:db8:1:2:ffff::9]:5000", "", "2001:db8:1:2::/64"},
		{"v4-mapped", "[::ffff:192.0.2.7]:5000", "", "192.0.2.7"},
		{"forwarded by an untrusted peer is ignored", "192.0.2.7:5000", "198.51.100.1", "192.0.2.7"},
		{"through a trusted proxy", "10.1.2.3:5000", "198.51.100.1", "198.51.100.1"},
		{"through two trusted proxies", "10.1.2.3:5000", "198.51.100.1, 10.9.9.9", "198.51.100.1"},
		{"a forged head is not believed", "10.1.2.3:5000", "203.0.113.66, 198.51.100.1", "198.51.100.1"},
		{"several headers", "10.1.2.3:5000", "203.0.113.66|198.51.100.1", "198.51.100.1"},
		{"ipv6 client through a proxy", "[fd00::1]:5000", "2001:db8:9:9::5", "2001:db8:9:9::/64"},
		{"garbage after a trusted proxy", "10.1.2.3:5000", "nonsense", "10.1.2.3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/ws", nil)
			r.RemoteAddr = tc.remote
			for _, v := range strings.Split(tc.xff, "|") {
				if v != "" {
					r.Header.Add("X-Forwarded-For", v)
				}
			}
			if got := h.clientKey(r); got != tc.want {
				t.Errorf("clientKey = %q, want %q", got, tc.want)
			}
		})
	}
}
