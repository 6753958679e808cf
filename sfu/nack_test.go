package sfu

import (
	"encoding/binary"
	"log/slog"
	"testing"
)

// TestNACKBounded: a NACK naming every packet of a second of video (a full
// compound packet names over 5,000) is looked up no further than
// nackMaxPackets, and each packet found maps back to the input it came from.
func TestNACKBounded(t *testing.T) {
	d := &DownTrack{up: &UpTrack{}}
	d.rw.runs[0] = run{layer: 1, seqDelta: 1000, firstIn: 0, maxIn: 30000, valid: true}
	var entries [][4]byte
	for i := range 300 {
		var e [4]byte
		binary.BigEndian.PutUint16(e[0:2], uint16(1000+i*17))
		binary.BigEndian.PutUint16(e[2:4], 0xffff)
		entries = append(entries, e)
	}
	r := d.wanted(entries)
	if len(r.want) != nackMaxPackets {
		t.Fatalf("%d packets looked up for a NACK of 5,100, want %d", len(r.want), nackMaxPackets)
	}
	for i, w := range r.want {
		if w.layer != 1 || w.in != uint16(i) || w.out != uint16(1000+i) {
			t.Fatalf("want[%d] = %+v: not input %d of layer 1", i, w, i)
		}
	}
	// A NACK for packets never sent finds nothing, and counts the misses.
	r = d.wanted([][4]byte{{0xff, 0x00, 0x00, 0x00}})
	if len(r.want) != 0 || d.nackMisses.Load() != 1 {
		t.Errorf("NACK for an unsent packet: %d found, %d misses", len(r.want), d.nackMisses.Load())
	}
}

func BenchmarkNACKFull(b *testing.B) {
	d := &DownTrack{up: &UpTrack{}}
	d.rw.runs[0] = run{layer: 0, firstIn: 0, maxIn: 30000, valid: true}
	entries := make([][4]byte, 300)
	for i := range entries {
		binary.BigEndian.PutUint16(entries[i][0:2], uint16(i*17))
		binary.BigEndian.PutUint16(entries[i][2:4], 0xffff)
	}
	b.ReportAllocs()
	for b.Loop() {
		d.wanted(entries)
	}
}

// TestRTCPLimiter: a burst is admitted, a flood beyond it is not, and the
// rate comes back with time.
func TestRTCPLimiter(t *testing.T) {
	l := newRTCPLimiter(rtcpRate, rtcpBurst)
	now := int64(1e9)
	admitted := 0
	for range 10 * rtcpBurst { // a flood within one millisecond
		if l.allow(now) {
			admitted++
		}
	}
	if admitted != rtcpBurst {
		t.Fatalf("%d of a flood admitted, want the burst of %d", admitted, rtcpBurst)
	}
	admitted = 0
	for i := range 10_000 { // ten seconds at 1,000 a second
		if l.allow(now + int64(i+1)*1e6) {
			admitted++
		}
	}
	if admitted < 9*rtcpRate || admitted > 10*rtcpRate+1 {
		t.Errorf("%d admitted in 10 s of 1,000/s, want about %d", admitted, 10*rtcpRate)
	}
}

// TestSubscriberRTCPLimit: however many tracks a subscriber floods, each
// within its own limit, what is read for all of them together stays within
// the subscriber's.
func TestSubscriberRTCPLimit(t *testing.T) {
	s := newSubscriber(nil, slog.Default(), nil)
	const tracks = 30
	limits := make([]rtcpLimiter, tracks)
	for i := range limits {
		limits[i] = newRTCPLimiter(rtcpRate, rtcpBurst)
	}
	admitted := 0
	for ms := range 10_000 { // ten seconds, each track at 1,000 a second
		now := int64(1e9) + int64(ms)*1e6
		for i := range limits {
			if limits[i].allow(now) && s.admitRTCP(now) {
				admitted++
			}
		}
	}
	if most := subscriberRTCPBurst + 10*subscriberRTCPRate; admitted > most {
		t.Errorf("%d admitted in 10 s over %d tracks, want at most %d", admitted, tracks, most)
	}
	if least := 9 * subscriberRTCPRate; admitted < least {
		t.Errorf("%d admitted in 10 s over %d tracks, want the subscriber's rate (%d)", admitted, tracks, least)
	}
}
