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
			recv, send := loopbackPair(t)
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

// loopbackPair opens a receiving socket and a batching sending one.
func loopbackPair(t *testing.T) (*net.UDPConn, *batchConn) {
	t.Helper()
	recv, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { recv.Close() })
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	send, err := newBatchConn(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { send.Close() })
	return recv, send
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
	if _, err := sub.client.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	if err := sub.offer(); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.server.Subscribe(up); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	defer close(stop)
	go sendUntil(t, local, stop)

	var tr *webrtc.TrackRemote
	select {
	case tr = <-sub.tracks:
	case <-time.After(10 * time.Second):
		t.Fatal("subscriber got no track")
	}
	var last uint16
	for i := range 200 {
		p, _, err := tr.ReadRTP()
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && p.SequenceNumber != last+1 {
			t.Fatalf("sequence gap: %d after %d", p.SequenceNumber, last)
		}
		in := uint16(p.Payload[3]) | uint16(p.Payload[4])<<8
		if want := vp8Packet(in, in%50 == 0); !bytes.Equal(p.Payload, want) {
			t.Fatalf("payload % x, want % x", p.Payload, want)
		}
		last = p.SequenceNumber
	}
	if got := sub.server.Stats().SendPath; got != "direct" {
		t.Fatalf("send path %q, want direct", got)
	}
	_ = sub.server.Close()
	sub.server.updateRoute() // as a late pion callback would
	if got := sub.server.Stats().SendPath; got != "pion: closed" {
		t.Errorf("send path of a closed peer %q, want pion: closed", got)
	}
}
