package signaling

import (
	"io"
	"log/slog"
	"net/http/httptest"
	"testing"
)

// TestCheckOrigin: a browser's socket is accepted from the server's own
// origin and from the configured ones, refused from any other; "*" turns
// the check off; a client that sends no Origin is not a browser to protect.
func TestCheckOrigin(t *testing.T) {
	listed := []string{"https://meet.example.org", "http://localhost:3000/"}
	tests := []struct {
		allowed []string
		origin  string
		want    bool
	}{
		{listed, "", true},
		{listed, "https://sfu.example.org", true}, // the server's own host
		{listed, "https://meet.example.org", true},
		{listed, "HTTPS://MEET.EXAMPLE.ORG", true},
		{listed, "http://localhost:3000", true}, // listed with a trailing slash
		{listed, "https://evil.example", false},
		{listed, "https://meet.example.org.evil.example", false},
		{listed, "http://meet.example.org", false}, // another scheme is another origin
		{listed, "%zz", false},
		{nil, "https://meet.example.org", false},
		{[]string{"*"}, "https://evil.example", true},
	}
	for _, tc := range tests {
		h := &Handler{cfg: Config{AllowedOrigins: tc.allowed}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		r := httptest.NewRequest("GET", "https://sfu.example.org/ws", nil)
		if tc.origin != "" {
			r.Header.Set("Origin", tc.origin)
		}
		if got := h.checkOrigin(r); got != tc.want {
			t.Errorf("allowed %v, Origin %q: %v, want %v", tc.allowed, tc.origin, got, tc.want)
		}
	}
}
