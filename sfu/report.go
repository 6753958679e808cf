package sfu

import (
	"time"

	"github.com/pion/rtcp"
)

// senderReportInterval is how often each subscription gets a sender report.
const senderReportInterval = int64(time.Second)

// ntpEpochOffset is the seconds between 1900 (NTP) and 1970 (Unix).
const ntpEpochOffset = 2208988800

func toNTP(unixNano int64) uint64 {
	secs := uint64(unixNano/1e9) + ntpEpochOffset
	frac := uint64(unixNano%1e9) << 32 / 1e9
	return secs<<32 | frac
}

// senderReport describes the subscription's stream as sent: packet and
// octet counts of what the subscriber got, and its rewritten RTP clock
// mapped onto the publisher's wall clock through the publisher's own
// sender report. Audio and video of one publisher are then mapped onto one
// clock, so the subscriber can synchronize them, whatever the server did to
// their timestamps. Before the publisher's first report, the server's
// clock stands in. Returns nil before anything was sent.
func (d *DownTrack) senderReport(now int64) *rtcp.SenderReport {
	b := d.bound.Load()
	if b == nil {
		return nil
	}
	d.up.fwdMu.Lock()
	if !d.rw.sent {
		d.up.fwdMu.Unlock()
		return nil
	}
	lastTS, lastAt, run := d.rw.lastTS, d.rw.lastAt, *d.rw.cur()
	d.up.fwdMu.Unlock()
	if !run.valid {
		return nil // a feed's new source, before its first packet
	}

	clock := int64(d.src.ClockRate)
	rtpNow := lastTS + uint32((now-lastAt)*clock/1e9)
	ntp := toNTP(now)
	if sr := d.up.layers[run.layer].sr.Load(); sr != nil && clock > 0 {
		ticks := int64(int32(rtpNow - run.tsDelta - sr.rtp)) // since the publisher's report
		ntp = uint64(int64(sr.ntp) + ticks<<32/clock)
	}
	return &rtcp.SenderReport{
		SSRC: b.ssrc, NTPTime: ntp, RTPTime: rtpNow,
		PacketCount: uint32(d.packets.Load()), OctetCount: uint32(d.bytes.Load()),
	}
}

// receptionReport describes the reception of one published layer since
// the last report (RFC 3550 section 6.4.1), from its reader's counters.
// Called by the allocator goroutine, which owns the rr fields.
func (l *upLayer) receptionReport(now int64) (rtcp.ReceptionReport, bool) {
	ssrc, received := l.ssrc.Load(), l.recvCount.Load()
	if ssrc == 0 || received == 0 {
		return rtcp.ReceptionReport{}, false
	}
	high := l.recvHigh.Load()
	expected := uint64(high-l.recvBase.Load()) + 1
	rr := rtcp.ReceptionReport{
		SSRC:               ssrc,
		TotalLost:          uint32(min(max(int64(expected)-int64(received), 0), 1<<23-1)),
		LastSequenceNumber: high,
		Jitter:             uint32(l.jitterUs.Load() * int64(l.clockRate) / 1e6),
	}
	if dExp, dRecv := expected-l.rrExpected, received-l.rrReceived; dExp > 0 && dExp > dRecv {
		rr.FractionLost = uint8(min((dExp-dRecv)<<8/dExp, 255))
	}
	l.rrExpected, l.rrReceived = expected, received
	if sr := l.sr.Load(); sr != nil {
		rr.LastSenderReport = uint32(sr.ntp >> 16)
		rr.Delay = uint32((now - sr.at) << 16 / 1e9) // in 1/65536 s
	}
	return rr, true
}

// sendReports sends the reports that are due: sender reports for the
// subscriptions, receiver reports for what the peer publishes, in compound
// packets that each fit a datagram. Runs in the subscriber's goroutine.
func (s *subscriber) sendReports(now int64) {
	var pkts []rtcp.Packet
	if now-s.lastRR >= senderReportInterval {
		s.lastRR = now
		rr := &rtcp.ReceiverReport{SSRC: s.rtcpSSRC}
		for _, u := range s.peer.Published() {
			for i := range u.layerCount() {
				if r, ok := u.layers[i].receptionReport(now); ok && len(rr.Reports) < 31 {
					rr.Reports = append(rr.Reports, r)
				}
			}
		}
		if len(rr.Reports) > 0 {
			pkts = append(pkts, rr)
		}
	}
	for _, d := range s.subscriptions() {
		if now-d.lastReport < senderReportInterval {
			continue
		}
		if sr := d.senderReport(now); sr != nil {
			pkts = append(pkts, sr)
			d.lastReport = now
		}
	}
	for _, c := range compounds(pkts, maxCompound) {
		_ = s.peer.pc.WriteRTCP(c)
	}
}

// maxCompound bounds a compound RTCP packet, in bytes before SRTCP (which
// adds 14): with IP and UDP headers it stays under a 1280-byte path MTU.
// One sender report takes 28 bytes: past about 40 subscriptions a peer's
// reports need several packets.
const maxCompound = 1200

// compounds groups pkts, in order, into compound packets of at most max
// bytes each; a packet larger than max goes alone.
func compounds(pkts []rtcp.Packet, max int) [][]rtcp.Packet {
	var out [][]rtcp.Packet
	start, size := 0, 0
	for i, pk := range pkts {
		n := pk.MarshalSize()
		if i > start && size+n > max {
			out = append(out, pkts[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(pkts) {
		out = append(out, pkts[start:])
	}
	return out
}
