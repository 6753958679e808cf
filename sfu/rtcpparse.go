package sfu

import "encoding/binary"

// A minimal RTCP reader for what subscribers send back, allocating
// nothing: pion's rtcp.Unmarshal allocates every packet and every TWCC
// status, and with tens of subscribers each sending feedback ten times a
// second that shows on the forwarding cost.

// RTCP packet types and formats the forwarder acts on.
const (
	rtcpRTPFB  = 205 // transport layer feedback
	rtcpPSFB   = 206 // payload-specific feedback
	fmtNACK    = 1   // RTPFB
	fmtTWCC    = 15  // RTPFB
	fmtPLI     = 1   // PSFB
	fmtFIR     = 4   // PSFB
	rtcpMinLen = 8   // header and sender SSRC
)

// feedback is what one compound RTCP packet asks of a subscription.
type feedback struct {
	keyframe bool      // PLI or FIR
	nacks    [][4]byte // NACK FCI entries (PID, BLP), into the packet
	twcc     [][]byte  // TWCC FCIs (from the base sequence number on), into the packet
}

// parseFeedback walks a compound RTCP packet. It keeps slices into b, and
// reuses f's slices: f is valid until the next call.
func parseFeedback(b []byte, f *feedback) bool {
	f.keyframe = false
	f.nacks = f.nacks[:0]
	f.twcc = f.twcc[:0]
	for len(b) >= 4 {
		if b[0]>>6 != 2 {
			return false
		}
		count, pt := b[0]&0x1f, b[1]
		size := (int(binary.BigEndian.Uint16(b[2:4])) + 1) * 4
		if size > len(b) {
			return false
		}
		pkt := b[:size]
		b = b[size:]
		if b2 := pkt; len(b2) < rtcpMinLen+4 {
			continue // too short to carry feedback (media SSRC)
		}
		fci := pkt[12:]
		switch {
		case pt == rtcpPSFB && (count == fmtPLI || count == fmtFIR):
			f.keyframe = true
		case pt == rtcpRTPFB && count == fmtNACK:
			for len(fci) >= 4 {
				f.nacks = append(f.nacks, [4]byte(fci[:4]))
				fci = fci[4:]
			}
		case pt == rtcpRTPFB && count == fmtTWCC:
			if len(fci) >= 8 {
				f.twcc = append(f.twcc, fci)
			}
		}
	}
	return true
}

// nackSeqs calls fn with every sequence number of one NACK entry.
func nackSeqs(e [4]byte, fn func(seq uint16)) {
	pid := binary.BigEndian.Uint16(e[0:2])
	blp := binary.BigEndian.Uint16(e[2:4])
	fn(pid)
	for i := range 16 {
		if blp&(1<<i) != 0 {
			fn(pid + uint16(i) + 1)
		}
	}
}

// twccStatus is one packet's status in a TWCC feedback.
const (
	twccNotReceived = 0
	twccSmallDelta  = 1
	twccLargeDelta  = 2
)

// twccFeedback is a decoded TWCC FCI, in scratch owned by the caller.
type twccFeedback struct {
	base     uint16
	refTime  int64 // receiver clock, µs (24-bit signed, 64 ms units)
	statuses []uint8
	deltas   []int64 // µs, one per received packet
}

// parseTWCC decodes the FCI of a TWCC feedback (draft-holmer-rmcat-
// transport-wide-cc-extensions-01, section 3.1) into t, reusing its slices.
func parseTWCC(fci []byte, t *twccFeedback) bool {
	if len(fci) < 8 {
		return false
	}
	t.base = binary.BigEndian.Uint16(fci[0:2])
	count := int(binary.BigEndian.Uint16(fci[2:4]))
	ref := int32(uint32(fci[4])<<16|uint32(fci[5])<<8|uint32(fci[6])) << 8 >> 8 // sign-extend 24 bits
	t.refTime = int64(ref) * 64_000
	t.statuses = t.statuses[:0]
	t.deltas = t.deltas[:0]
	p := fci[8:]
	for len(t.statuses) < count {
		if len(p) < 2 {
			return false
		}
		chunk := binary.BigEndian.Uint16(p)
		p = p[2:]
		if chunk&0x8000 == 0 { // run length
			sym := uint8(chunk >> 13 & 0x3)
			for n := int(chunk & 0x1fff); n > 0 && len(t.statuses) < count; n-- {
				t.statuses = append(t.statuses, sym)
			}
			continue
		}
		if chunk&0x4000 == 0 { // status vector, 14 one-bit symbols
			for i := 13; i >= 0 && len(t.statuses) < count; i-- {
				t.statuses = append(t.statuses, uint8(chunk>>i&1))
			}
			continue
		}
		for i := 6; i >= 0 && len(t.statuses) < count; i-- { // 7 two-bit symbols
			t.statuses = append(t.statuses, uint8(chunk>>(2*i)&3))
		}
	}
	for _, s := range t.statuses {
		switch s {
		case twccSmallDelta:
			if len(p) < 1 {
				return false
			}
			t.deltas = append(t.deltas, int64(p[0])*250)
			p = p[1:]
		case twccLargeDelta:
			if len(p) < 2 {
				return false
			}
			t.deltas = append(t.deltas, int64(int16(binary.BigEndian.Uint16(p)))*250)
			p = p[2:]
		}
	}
	return true
}
