package sfu

import (
	"bytes"
	"sync"
	"testing"
)

// putPacket stores pkt under seq the way the layer's reader does: read
// into buffer(), then put.
func putPacket(t testing.TB, c *packetCache, seq uint16, pkt []byte) {
	t.Helper()
	buf := c.buffer()
	if len(pkt) > len(buf) {
		t.Fatalf("packet of %d bytes, the buffer takes %d", len(pkt), len(buf))
	}
	c.put(seq, copy(buf, pkt))
}

// testPacket is n bytes that differ with seq and tag.
func testPacket(seq uint16, n int, tag byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(seq) ^ byte(seq>>8) ^ byte(i) ^ tag
	}
	return p
}

// getPacket fetches seq into a full-size buffer.
func getPacket(c *packetCache, seq uint16) ([]byte, bool) {
	dst := make([]byte, 1500)
	n, ok := c.get(seq, dst)
	return dst[:n], ok
}

func TestPacketCacheRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		seq  uint16
		size int
	}{
		{"first slot", 0, 1200},
		{"last slot", cacheSize - 1, 1200},
		{"second lap", cacheSize, 1200},
		{"highest seq", 65535, 1200},
		{"one byte", 7, 1},
		{"bare header", 8, 12},
		{"as large as the buffer", 9, 1500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newPacketCache()
			want := testPacket(tc.seq, tc.size, 0)
			putPacket(t, c, tc.seq, want)
			got, ok := getPacket(c, tc.seq)
			if !ok || !bytes.Equal(got, want) {
				t.Fatalf("get(%d) = %d bytes, %v; want the %d bytes stored", tc.seq, len(got), ok, len(want))
			}
			// The reader's next packet goes into another buffer.
			buf := c.buffer()
			for i := range buf {
				buf[i] = 0xee
			}
			if got, _ := getPacket(c, tc.seq); !bytes.Equal(got, want) {
				t.Errorf("reading the next packet into buffer() changed packet %d", tc.seq)
			}
		})
	}
}

func TestPacketCacheMisses(t *testing.T) {
	tests := []struct {
		name   string
		stored []uint16
		ask    uint16
	}{
		{"empty cache, seq 0 (the zero slot's seq)", nil, 0},
		{"empty cache", nil, 1234},
		{"never stored, empty slot", []uint16{1, 2, 3}, 4},
		{"never stored, slot holds a packet one lap later", []uint16{cacheSize + 5}, 5},
		{"never stored, slot holds a packet one lap earlier", []uint16{5}, cacheSize + 5},
		{"overwritten by a packet one lap later", []uint16{100, 100 + cacheSize}, 100},
		{"wrapped: 65535 overwritten by 511", []uint16{65535, 511}, 65535},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := newPacketCache()
			for _, s := range tc.stored {
				putPacket(t, c, s, testPacket(s, 1000, 0))
			}
			if got, ok := getPacket(c, tc.ask); ok {
				t.Errorf("get(%d) found %d bytes, want a miss", tc.ask, len(got))
			}
		})
	}
}

// TestPacketCacheOverwrite: the packet sharing a slot with an older one is
// returned as itself, whole, and the older one is gone.
func TestPacketCacheOverwrite(t *testing.T) {
	c := newPacketCache()
	old := testPacket(42, 1200, 1)
	putPacket(t, c, 42, old)
	newer := testPacket(42+cacheSize, 300, 2) // shorter: no tail of the old one may show
	putPacket(t, c, 42+cacheSize, newer)
	if got, ok := getPacket(c, 42); ok {
		t.Errorf("get(42) after 42+cacheSize = %d bytes, want a miss", len(got))
	}
	if got, ok := getPacket(c, 42+cacheSize); !ok || !bytes.Equal(got, newer) {
		t.Errorf("get(42+cacheSize) = %d bytes, %v; want the %d bytes stored", len(got), ok, len(newer))
	}
}

// TestPacketCacheWrap: sequence numbers run on from 65535 to 0, and the
// last cacheSize of them stay retrievable across the wrap.
func TestPacketCacheWrap(t *testing.T) {
	c := newPacketCache()
	const first = 65535 - cacheSize/2
	n := cacheSize + 10
	for i := range n {
		seq := uint16(first + i)
		putPacket(t, c, seq, testPacket(seq, 100+i%1000, 3))
	}
	for i := range n {
		seq := uint16(first + i)
		got, ok := getPacket(c, seq)
		if i < n-cacheSize {
			if ok {
				t.Errorf("seq %d, %d packets before the last, still cached", seq, n-1-i)
			}
			continue
		}
		if !ok || !bytes.Equal(got, testPacket(seq, 100+i%1000, 3)) {
			t.Errorf("seq %d: got %d bytes, %v; want the packet stored", seq, len(got), ok)
		}
	}
}

// TestPacketCacheSmallDestination: a packet that does not fit in dst is
// not returned (part of a packet is no packet), and nothing is written;
// one that fits exactly comes back whole.
func TestPacketCacheSmallDestination(t *testing.T) {
	c := newPacketCache()
	pkt := testPacket(9, 1200, 4)
	putPacket(t, c, 9, pkt)
	backing := make([]byte, 64)
	for i := range backing {
		backing[i] = 0xaa
	}
	dst := backing[:10:10]
	if n, ok := c.get(9, dst); ok || n != 0 {
		t.Errorf("get of a 1200-byte packet into 10 bytes = %d, %v; want 0, false (no part of a packet)", n, ok)
	}
	for i, b := range backing {
		if b != 0xaa {
			t.Fatalf("get wrote into a buffer too small, at byte %d", i)
		}
	}
	if n, ok := c.get(9, nil); ok || n != 0 {
		t.Errorf("get into nil = %d, %v; want 0, false", n, ok)
	}
	exact := make([]byte, len(pkt))
	if n, ok := c.get(9, exact); !ok || !bytes.Equal(exact[:n], pkt) {
		t.Errorf("get into exactly the packet's size = %d, %v; want the packet", n, ok)
	}
}

// TestPacketCacheFullSizeAfterSmall: a slot's buffer that held a small
// packet is recycled at full size, so a packet as large as any the reader
// may read still fits and comes back whole.
func TestPacketCacheFullSizeAfterSmall(t *testing.T) {
	c := newPacketCache()
	full := len(c.buffer())
	for i := range 2 * cacheSize {
		putPacket(t, c, uint16(i), testPacket(uint16(i), 20, 5))
		if got := len(c.buffer()); got != full {
			t.Fatalf("after %d small packets buffer() has %d bytes, want %d", i+1, got, full)
		}
	}
	big := testPacket(3*cacheSize, full, 6)
	putPacket(t, c, 3*cacheSize, big)
	if got, ok := getPacket(c, 3*cacheSize); !ok || !bytes.Equal(got, big) {
		t.Errorf("a %d-byte packet after small ones came back as %d bytes, %v", full, len(got), ok)
	}
}

// TestPacketCacheConcurrent: NACKs are answered while the reader stores
// packets; a packet found is always the one asked for, whole (run with
// -race to check the locking).
func TestPacketCacheConcurrent(t *testing.T) {
	c := newPacketCache()
	const packets = 20_000
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		dst := make([]byte, 1500)
		for seq := uint16(0); ; seq += 7 {
			select {
			case <-done:
				return
			default:
			}
			if n, ok := c.get(seq, dst); ok && !bytes.Equal(dst[:n], testPacket(seq, 200+int(seq)%1000, 7)) {
				t.Errorf("get(%d) returned another packet's bytes", seq)
				return
			}
		}
	}()
	for i := range packets {
		seq := uint16(i)
		putPacket(t, c, seq, testPacket(seq, 200+int(seq)%1000, 7))
	}
	close(done)
	wg.Wait()
}
