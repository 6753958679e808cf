package sfu

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
)

func TestRocFor(t *testing.T) {
	for _, c := range []struct {
		last uint64
		seq  uint16
		want uint32
	}{
		{last: 10, seq: 5, want: 0},
		{last: 65_535, seq: 65_530, want: 0},
		{last: 65_536 + 3, seq: 65_533, want: 0}, // resent from before the wrap
		{last: 65_536 + 3, seq: 2, want: 1},
		{last: 65_530, seq: 4, want: 1}, // ahead of the last, past the wrap
		{last: 3 << 16, seq: 65_000, want: 2},
		{last: 5, seq: 65_000, want: 0}, // nothing before 0
	} {
		if got := rocFor(c.last, c.seq); got != c.want {
			t.Errorf("rocFor(%d, %d) = %d, want %d", c.last, c.seq, got, c.want)
		}
	}
}

func TestNextExt(t *testing.T) {
	var last uint64
	started := false
	steps := []struct {
		seq          uint16
		ext, highest uint64
	}{
		{65_534, 65_534, 65_534},
		{65_535, 65_535, 65_535},
		{0, 65_536, 65_536},
		{65_535, 65_535, 65_536}, // late: the highest stays
		{1, 65_537, 65_537},
	}
	for _, s := range steps {
		ext, highest := nextExt(last, started, s.seq)
		if ext != s.ext || highest != s.highest {
			t.Fatalf("nextExt(%d, %d) = %d, %d, want %d, %d", last, s.seq, ext, highest, s.ext, s.highest)
		}
		last, started = highest, true
	}
}

// TestDirectPathSeals forwards a stream through pion's writer until its
// sequence numbers wrap, then on the direct path, and resends a packet
// from after the wrap and one from before it, for each SRTP profile with
// and without header encryption: a receiver holding the keys decrypts
// every datagram to the packet forwarded, so each was sealed with its
// rollover counter.
func TestDirectPathSeals(t *testing.T) {
	for _, c := range []struct {
		name    string
		profile srtp.ProtectionProfile
		cryptex bool
	}{
		{"AEAD_AES_128_GCM", srtp.ProtectionProfileAeadAes128Gcm, false},
		{"AEAD_AES_128_GCM/cryptex", srtp.ProtectionProfileAeadAes128Gcm, true},
		{"AES128_CM_HMAC_SHA1_80", srtp.ProtectionProfileAes128CmHmacSha1_80, false},
		{"AES128_CM_HMAC_SHA1_80/cryptex", srtp.ProtectionProfileAes128CmHmacSha1_80, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			keyLen, _ := c.profile.KeyLen()
			saltLen, _ := c.profile.SaltLen()
			keys := &srtp.Config{Profile: c.profile}
			keys.Keys.LocalMasterKey = make([]byte, keyLen)
			keys.Keys.LocalMasterSalt = make([]byte, saltLen)
			_, _ = rand.Read(keys.Keys.LocalMasterKey)
			_, _ = rand.Read(keys.Keys.LocalMasterSalt)
			var opts []srtp.ContextOption
			if c.cryptex {
				opts = append(opts, srtp.Cryptex(srtp.CryptexModeEnabled))
			}
			rx, err := srtp.CreateContext(keys.Keys.LocalMasterKey, keys.Keys.LocalMasterSalt, c.profile, opts...)
			if err != nil {
				t.Fatal(err)
			}

			rx.SetROC(1000, 1) // it got the packets pion sent, up to the wrap
			send, recv := batchPair(t)
			up, sinks := fanout(1, nil)
			d := (*up.downs.Load())[0]

			now := time.Now().UnixNano()
			sent := map[uint16][]byte{}
			for i := range 12 {
				seq := uint16(65_530 + i) // wraps after 6 packets
				p := videoPacket(seq, i == 0)
				p.Payload = bytes.Repeat([]byte{byte(i)}, 900)
				p.Payload[0], p.Payload[1] = 0x10, 0x01
				if i == 0 {
					p.Payload[1] = 0x00
				}
				sent[seq] = p.Payload
				raw, _ := p.Marshal()
				n := copy(up.layers[0].cache.buffer(), raw)
				up.layers[0].cache.put(seq, n)
				if i == 8 {
					d.sub.direct.cur.Store(&route{conn: send, addr: recv.LocalAddr().(*net.UDPAddr).AddrPort(), keys: keys, cryptex: c.cryptex})
				}
				up.forward(0, p, i == 0, now)
			}
			if sinks[0].packets != 8 {
				t.Fatalf("%d packets went through pion's writer, want the 8 before the route", sinks[0].packets)
			}
			for range 4 {
				readDecrypted(t, recv, rx, sent)
			}
			// NACKs for a packet after the wrap, then one before it.
			for _, seq := range []uint16{2, 65_532} {
				var e [4]byte
				binary.BigEndian.PutUint16(e[:], seq)
				d.handleNACK([][4]byte{e}, now)
				if got := readDecrypted(t, recv, rx, sent); got != seq {
					t.Errorf("resent %d, want %d", got, seq)
				}
			}
		})
	}
}

// readDecrypted reads one datagram, decrypts it and checks its payload
// against what was forwarded under its sequence number, which it returns.
func readDecrypted(t *testing.T, recv *net.UDPConn, rx *srtp.Context, sent map[uint16][]byte) uint16 {
	t.Helper()
	buf := make([]byte, 1500)
	_ = recv.SetReadDeadline(time.Now().Add(2 * time.Second))
	n, err := recv.Read(buf)
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	plain, err := rx.DecryptRTP(nil, buf[:n], nil)
	if err != nil {
		t.Fatalf("datagram does not decrypt: %v", err)
	}
	var p rtp.Packet
	if err := p.Unmarshal(plain); err != nil {
		t.Fatal(err)
	}
	if want, ok := sent[p.SequenceNumber]; !ok || !bytes.Equal(p.Payload, want) {
		t.Fatalf("packet %d: payload differs from the one forwarded", p.SequenceNumber)
	}
	if p.SSRC != 1000 || p.PayloadType != 100 {
		t.Fatalf("packet %d: ssrc %d pt %d, want the subscriber's 1000 and 100", p.SequenceNumber, p.SSRC, p.PayloadType)
	}
	if len(p.GetExtension(3)) != 2 {
		t.Fatalf("packet %d: no transport-wide sequence number", p.SequenceNumber)
	}
	return p.SequenceNumber
}

// TestDirectRouteOnMediaPort forwards between two pion clients through an
// engine with a media port: the subscriber, which offered first (the
// server answers as DTLS server), is sent to on the direct path, and every
// packet arrives in order and intact. Closing the peer ends the route.
func TestDirectRouteOnMediaPort(t *testing.T) {
	e, err := NewEngine(Config{
		UDPPort: freeUDPPort(t), Loopback: true, ConnectTimeout: 10 * time.Second,
		IPs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	pub := newPair(t, e)
	local, up := pub.publish(webrtc.MimeTypeVP8)
	sub := newPair(t, e)
	readVP8(t, sub.subscribeVP8(local, up), 200)
	if got := sub.server.Stats().SendPath; got != "direct" {
		t.Fatalf("send path %q, want direct", got)
	}
	_ = sub.server.Close()
	sub.server.updateRoute() // as a late pion callback would
	if got := sub.server.Stats().SendPath; got != "pion: closed" {
		t.Errorf("send path of a closed peer %q, want pion: closed", got)
	}
}

// TestDirectFanoutAllocatesNothing forwards packets to 10 subscriptions on
// the direct path (sealed into the fan-out's batch, one sendmmsg) and
// counts the allocations of one fan-out: none.
func TestDirectFanoutAllocatesNothing(t *testing.T) {
	send, recv := batchPair(t)
	keys := &srtp.Config{Profile: srtp.ProtectionProfileAeadAes128Gcm}
	keys.Keys.LocalMasterKey, keys.Keys.LocalMasterSalt = make([]byte, 16), make([]byte, 12)
	up, sinks := fanout(10, nil)
	r := &route{conn: send, addr: recv.LocalAddr().(*net.UDPAddr).AddrPort(), keys: keys, cryptex: true}
	for _, d := range *up.downs.Load() {
		d.sub.direct.cur.Store(r)
	}
	now := time.Now().UnixNano()
	p := videoPacket(0, true)
	up.forward(0, p, true, now) // makes each subscription's SRTP context
	allocs := testing.AllocsPerRun(1000, func() {
		p.SequenceNumber++
		p.Timestamp += 3000
		up.forward(0, p, false, now)
	})
	if allocs != 0 {
		t.Errorf("forwarding one packet to 10 subscriptions on the direct path allocates %.1f times, want 0", allocs)
	}
	for i, d := range *up.downs.Load() {
		// The keyframe, AllocsPerRun's warm-up run, then its 1000.
		if n := d.packets.Load(); n != 1002 || sinks[i].packets != 0 {
			t.Fatalf("subscription %d sent %d packets direct and %d through pion, want 1002 and 0", i, n, sinks[i].packets)
		}
	}
}

// TestMuxConnForCandidate maps a selected pair's local candidate to a
// socket of the media port: its own address, or a 1:1 NAT address to the
// only non-loopback socket of its family; anything else is not ours.
func TestMuxConnForCandidate(t *testing.T) {
	addrs, err := localAddrs(false, nil, func(ip net.IP) bool { return ip.To4() != nil })
	if err != nil || len(addrs) == 0 {
		t.Skip("no non-loopback IPv4 address to stand for the server's private one")
	}
	port := freeUDPPort(t)
	var m udpMux
	for _, ip := range []net.IP{net.IPv4(127, 0, 0, 1), addrs[0].AsSlice()} {
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: port})
		if err != nil {
			t.Skipf("cannot bind %s:%d: %v", ip, port, err)
		}
		b, err := newBatchConn(c)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = b.Close() })
		m.conns = append(m.conns, b)
	}
	loop, public := m.conns[0], m.conns[1]
	for _, c := range []struct {
		address string
		port    int
		want    *batchConn
	}{
		{"127.0.0.1", port, loop},
		{"203.0.113.5", port, public}, // ice.nat_1to1_ips
		{addrs[0].String(), port, public},
		{"10.255.2.3", port, nil}, // a private address of no socket
		{"203.0.113.5", port + 1, nil},
		{"::1", port, nil},
		{"not an address", port, nil},
	} {
		if got := m.conn(c.address, uint16(c.port)); got != c.want {
			t.Errorf("conn(%s, %d) = %p, want %p", c.address, c.port, got, c.want)
		}
	}
}
