package sfu

import (
	"math"
	"testing"
	"time"

	"github.com/pion/rtcp"
)

// TestSenderReportMapsPublisherClock: the report a subscriber gets maps its
// rewritten timestamps onto the publisher's wall clock, before and after a
// layer switch that changed the timestamp offset.
func TestSenderReportMapsPublisherClock(t *testing.T) {
	up, sinks := fanout(1, []string{"q", "f"})
	_ = sinks
	d := (*up.downs.Load())[0]
	pubClock := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC).UnixNano() // the publisher's wall clock
	up.layers[0].sr.Store(&senderReport{ntp: toNTP(pubClock), rtp: 1000})
	up.layers[1].sr.Store(&senderReport{ntp: toNTP(pubClock), rtp: 500_000})
	for i := range up.layers[:2] {
		up.layers[i].lastAt.Store(time.Now().UnixNano()) // both layers active
	}
	d.maxLayer.Store(0)

	now := time.Now().UnixNano()
	// A keyframe of q captured 1 s after the publisher's report.
	up.forward(0, videoPacketTS(10, 1000+90_000, true), true, now)
	sr := d.senderReport(now)
	if sr == nil {
		t.Fatal("no report")
	}
	checkNTP(t, "q", sr.NTPTime, pubClock+int64(time.Second), sr.RTPTime, 1000+90_000)

	// Switch to f: its timestamps have another base; the output continues.
	d.maxLayer.Store(1)
	now += int64(40 * time.Millisecond)
	up.forward(1, videoPacketTS(7000, 500_000+90_000+3600, true), true, now)
	sr = d.senderReport(now)
	// f's packet was captured 1.04 s after the report.
	checkNTP(t, "f", sr.NTPTime, pubClock+int64(1040*time.Millisecond), 0, 0)
	if sr.PacketCount != 2 {
		t.Errorf("packet count %d, want 2", sr.PacketCount)
	}
}

func checkNTP(t *testing.T, what string, ntp uint64, wantUnix int64, rtp, wantRTP uint32) {
	t.Helper()
	got := int64(ntp>>32-ntpEpochOffset)*1e9 + int64((ntp&0xffffffff)*1e9>>32)
	if math.Abs(float64(got-wantUnix)) > float64(time.Millisecond) {
		t.Errorf("%s: report maps to %s, want %s", what, time.Unix(0, got).UTC(), time.Unix(0, wantUnix).UTC())
	}
	if wantRTP != 0 && rtp != wantRTP {
		t.Errorf("%s: rtp %d, want %d", what, rtp, wantRTP)
	}
}

func TestCompoundsFitADatagram(t *testing.T) {
	rr := &rtcp.ReceiverReport{SSRC: 1, Reports: make([]rtcp.ReceptionReport, 31)} // the largest the server sends
	for _, n := range []int{0, 1, 40, 43, 100, 400} {
		pkts := []rtcp.Packet{rr}
		for i := range n {
			pkts = append(pkts, &rtcp.SenderReport{SSRC: uint32(i + 2)})
		}
		groups := compounds(pkts, maxCompound)
		var seen []rtcp.Packet
		for _, g := range groups {
			buf, err := rtcp.Marshal(g)
			if err != nil {
				t.Fatal(err)
			}
			if len(buf) > maxCompound {
				t.Errorf("%d reports: a compound of %d bytes, over %d", n, len(buf), maxCompound)
			}
			seen = append(seen, g...)
		}
		if len(seen) != len(pkts) {
			t.Fatalf("%d reports: %d sent", n+1, len(seen))
		}
		for i := range pkts {
			if seen[i] != pkts[i] {
				t.Fatalf("%d reports: report %d out of order", n, i)
			}
		}
	}
}
