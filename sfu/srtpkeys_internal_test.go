package sfu

import (
	"errors"
	"strings"
	"testing"

	"github.com/pion/dtls/v3/pkg/protocol/handshake"
)

// TestDTLSSecretsIncomplete: without both the key log and the server hello
// (a handshake not done, or one where the server was the DTLS client) there
// are no keys, and malformed key log lines change nothing.
func TestDTLSSecretsIncomplete(t *testing.T) {
	var s dtlsSecrets
	if _, err := s.srtpConfig(); !errors.Is(err, errNoDTLSSecrets) {
		t.Fatalf("no secrets: %v, want errNoDTLSSecrets", err)
	}
	for _, line := range []string{
		"", "CLIENT_RANDOM", "CLIENT_RANDOM zz 00", "CLIENT_RANDOM 00 00", // short random
		"SERVER_HANDSHAKE_TRAFFIC_SECRET " + strings.Repeat("00", 32) + " 00",
	} {
		if n, err := s.Write([]byte(line + "\n")); err != nil || n != len(line)+1 {
			t.Fatalf("Write(%q) = %d, %v", line, n, err)
		}
	}
	if s.master != nil {
		t.Fatalf("a malformed key log line was taken: %x", s.master)
	}
	if _, err := s.Write([]byte("CLIENT_RANDOM " + strings.Repeat("ab", 32) + " " + strings.Repeat("cd", 48) + "\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", nil, 60); !errors.Is(err, errNoDTLSSecrets) {
		t.Fatalf("key log without server hello: %v, want errNoDTLSSecrets", err)
	}
	s.serverHello(handshake.MessageServerHello{})
	if _, err := s.ExportKeyingMaterial("EXTRACTOR-dtls_srtp", nil, 60); err != nil {
		t.Fatalf("with both: %v", err)
	}
	if _, err := s.srtpConfig(); !errors.Is(err, errNoDTLSSecrets) {
		t.Fatalf("a server hello without use_srtp gives keys: %v", err)
	}
}
