package relay

import (
	"net"
	"testing"
	"time"

	"github.com/pion/stun/v4"
	"github.com/pion/turn/v5"
)

// FuzzRelay sends arbitrary datagrams to the TURN server, each followed by
// a STUN Binding request that must still be answered: whatever a client
// sends, the server neither crashes nor stops serving.
func FuzzRelay(f *testing.F) {
	allocate, _ := stun.Build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest), stun.Fingerprint)
	user, pass, _ := turn.GenerateLongTermTURNRESTCredentials(secret, "p1", time.Hour)
	authed, _ := stun.Build(stun.TransactionID, stun.NewType(stun.MethodAllocate, stun.ClassRequest),
		stun.NewUsername(user), stun.NewRealm("tessera"), stun.NewNonce("n"), stun.NewLongTermIntegrity(user, "tessera", pass), stun.Fingerprint)
	refresh, _ := stun.Build(stun.TransactionID, stun.NewType(stun.MethodRefresh, stun.ClassRequest), stun.NewUsername(user))
	f.Add(allocate.Raw)
	f.Add(authed.Raw)
	f.Add(refresh.Raw)
	f.Add([]byte{0x40, 0x00, 0x00, 0x08, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add([]byte{0x00, 0x01, 0xff, 0xff, 0x21, 0x12, 0xa4, 0x42})

	fx := newFixture(f, nil)
	conn, err := net.Dial("udp", fx.udp)
	if err != nil {
		f.Fatal(err)
	}
	defer conn.Close()
	buf := make([]byte, 1500)
	f.Fuzz(func(t *testing.T, b []byte) {
		if _, err := conn.Write(b); err != nil {
			t.Fatal(err)
		}
		probe, _ := stun.Build(stun.TransactionID, stun.BindingRequest, stun.Fingerprint)
		if _, err := conn.Write(probe.Raw); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(2 * time.Second)
		for {
			_ = conn.SetReadDeadline(deadline)
			n, err := conn.Read(buf)
			if err != nil {
				t.Fatalf("no answer to a Binding request after %x: %v", b, err)
			}
			var m stun.Message
			m.Raw = buf[:n]
			if m.Decode() == nil && m.TransactionID == probe.TransactionID {
				return
			}
		}
	})
}
