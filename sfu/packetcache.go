package sfu

import "sync"

// cacheSize is how many packets of one video layer are kept for
// retransmission: 2.5 s at 200 packets/s, far beyond a NACK's round trip.
const cacheSize = 512

// packetCache keeps the last cacheSize packets of one layer, as received,
// indexed by sequence number. The layer's reader reads every packet into the
// cache's spare buffer and then swaps it into its slot, so caching copies
// nothing; retransmissions copy a packet out under the lock.
type packetCache struct {
	mu    sync.Mutex
	slots [cacheSize]cacheSlot // guarded by mu
	spare []byte               // owned by the reader
}

type cacheSlot struct {
	buf []byte // the packet, or nil
	seq uint16
}

func newPacketCache() *packetCache {
	return &packetCache{spare: make([]byte, 1500)}
}

// buffer is where the reader puts the next packet.
func (c *packetCache) buffer() []byte { return c.spare[:cap(c.spare)] }

// put stores the packet just read into buffer()[:n] under seq, and recycles
// the evicted slot's buffer as the next spare. The stored bytes stay valid
// until cacheSize more packets have been put.
func (c *packetCache) put(seq uint16, n int) {
	c.mu.Lock()
	s := &c.slots[seq%cacheSize]
	old := s.buf
	s.buf, s.seq = c.spare[:n], seq
	c.mu.Unlock()
	if old == nil {
		old = make([]byte, 1500)
	}
	c.spare = old[:cap(old)]
}

// get copies packet seq into dst; it reports false if the packet is gone,
// or does not fit in dst (part of a packet is no packet).
func (c *packetCache) get(seq uint16, dst []byte) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := &c.slots[seq%cacheSize]
	if s.buf == nil || s.seq != seq || len(s.buf) > len(dst) {
		return 0, false
	}
	return copy(dst, s.buf), true
}
