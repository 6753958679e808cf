package protocol_test

import (
	"reflect"
	"testing"

	"github.com/tessera-rtc/tessera/internal/protocoltest"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

// TestRoundTrip: every message a client or the server sends decodes, on
// the other side, to what was sent, with its id; and every message type
// has a sample here.
func TestRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range protocoltest.Samples() {
		seen[m.Type()] = true
		for _, side := range []struct {
			name  string
			known map[string]func() protocol.Message
		}{{"client", protocol.ClientMessages}, {"server", protocol.ServerMessages}} {
			if side.known[m.Type()] == nil {
				continue
			}
			for _, id := range []string{"", "42"} {
				frame, err := protocol.Encode(id, m)
				if err != nil {
					t.Fatalf("encode %s: %v", m.Type(), err)
				}
				gotID, got, err := protocol.Decode(frame, side.known)
				if err != nil {
					t.Fatalf("decode %s (%s): %v", frame, side.name, err)
				}
				if gotID != id || !reflect.DeepEqual(got, m) {
					t.Errorf("%s: round trip of %s\n got %q %#v\nwant %q %#v", side.name, frame, gotID, got, id, m)
				}
				if err := protocol.Validate(got); err != nil && side.name == "client" {
					t.Errorf("a valid %s does not validate: %v", m.Type(), err)
				}
			}
		}
	}
	for typ := range protocol.ClientMessages {
		if !seen[typ] {
			t.Errorf("no sample of client message %q", typ)
		}
	}
	for typ := range protocol.ServerMessages {
		if !seen[typ] {
			t.Errorf("no sample of server message %q", typ)
		}
	}
}
