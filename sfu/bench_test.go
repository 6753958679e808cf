package sfu

import (
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
)

// BenchmarkPacketCache stores a packet as the reader does (into the spare
// buffer, swapped into its slot) and fetches an earlier one for a NACK.
func BenchmarkPacketCache(b *testing.B) {
	c := newPacketCache()
	for i := range cacheSize {
		copy(c.buffer(), make([]byte, 1200))
		c.put(uint16(i), 1200)
	}
	dst := make([]byte, 1500)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		seq := uint16(cacheSize + i)
		buf := c.buffer()
		buf[0] = byte(i)
		c.put(seq, 1200)
		if _, ok := c.get(seq-100, dst); !ok {
			b.Fatal("packet gone")
		}
	}
}

// BenchmarkSimulcastSwitch forwards a keyframe of layer q and one of layer
// f to a subscriber whose preference flips every time: each iteration is
// two layer switches, each restarting the rewriter at a keyframe.
func BenchmarkSimulcastSwitch(b *testing.B) {
	up, sinks := fanout(1, []string{"q", "f"})
	d := (*up.downs.Load())[0]
	now := time.Now().UnixNano()
	q, f := videoPacket(0, true), videoPacket(0, true)
	f.SSRC = 43
	for i := range up.layers {
		up.layers[i].lastAt.Store(now) // both layers are being received
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		q.SequenceNumber++
		q.Timestamp += 3000
		f.SequenceNumber++
		f.Timestamp += 3000
		d.maxLayer.Store(0) // what SetMaxLayer("q") sets
		up.forward(0, q, true, now)
		d.maxLayer.Store(1)
		up.forward(1, f, true, now)
	}
	b.StopTimer()
	if want := 2 * b.N; sinks[0].packets != want {
		b.Fatalf("%d packets forwarded, want %d: the layer did not switch", sinks[0].packets, want)
	}
}

// The floor: what forwarding one packet cannot cost less than on this
// machine, whatever the server does around it.

// BenchmarkFloorSRTP encrypts one 1200-byte RTP packet with each SRTP
// profile (pion/srtp, as every pion peer does).
func BenchmarkFloorSRTP(b *testing.B) {
	for _, p := range []struct {
		name    string
		profile srtp.ProtectionProfile
	}{
		{"AEAD_AES_128_GCM", srtp.ProtectionProfileAeadAes128Gcm},
		{"AEAD_AES_256_GCM", srtp.ProtectionProfileAeadAes256Gcm},
		{"AES128_CM_HMAC_SHA1_80", srtp.ProtectionProfileAes128CmHmacSha1_80},
	} {
		b.Run(p.name, func(b *testing.B) {
			keyLen, _ := p.profile.KeyLen()
			saltLen, _ := p.profile.SaltLen()
			ctx, err := srtp.CreateContext(make([]byte, keyLen), make([]byte, saltLen), p.profile)
			if err != nil {
				b.Fatal(err)
			}
			pkt := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: 1}, Payload: make([]byte, 1200)}
			raw, err := pkt.Marshal()
			if err != nil {
				b.Fatal(err)
			}
			dst := make([]byte, 0, 1500)
			b.SetBytes(int64(len(raw)))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				raw[2], raw[3] = byte(i>>8), byte(i)
				if _, err := ctx.EncryptRTP(dst[:0], raw, nil); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
