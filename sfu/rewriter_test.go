package sfu

import (
	"testing"
	"time"
)

func TestRewriter(t *testing.T) {
	type pkt struct {
		restart bool
		seq     uint16
		ts      uint32
		at      time.Duration // since the start
		// expected
		drop   bool
		outSeq uint16
		outTS  uint32
	}
	tests := []struct {
		name string
		pkts []pkt
	}{
		{"first start keeps numbering", []pkt{
			{restart: true, seq: 500, ts: 9000, outSeq: 500, outTS: 9000},
			{seq: 501, ts: 12000, outSeq: 501, outTS: 12000},
		}},
		{"loss stays visible", []pkt{
			{restart: true, seq: 10, ts: 0, outSeq: 10, outTS: 0},
			{seq: 13, ts: 9000, outSeq: 13, outTS: 9000},
		}},
		{"reordering is kept, older than the start is dropped", []pkt{
			{restart: true, seq: 10, ts: 0, outSeq: 10},
			{seq: 12, ts: 6000, outSeq: 12, outTS: 6000},
			{seq: 11, ts: 3000, outSeq: 11, outTS: 3000},
			{seq: 9, ts: 0, drop: true},
		}},
		{"wraparound", []pkt{
			{restart: true, seq: 65534, ts: 4294967000, outSeq: 65534, outTS: 4294967000},
			{seq: 65535, ts: 4294967200, outSeq: 65535, outTS: 4294967200},
			{seq: 0, ts: 104, outSeq: 0, outTS: 104},
		}},
		{"restart on another stream continues the sequence and the clock", []pkt{
			{restart: true, seq: 100, ts: 1000, outSeq: 100, outTS: 1000},
			{seq: 101, ts: 4000, at: 0, outSeq: 101, outTS: 4000},
			// 100 ms later, a new source with unrelated numbering.
			{restart: true, seq: 7000, ts: 555555, at: 100 * time.Millisecond, outSeq: 102, outTS: 4000 + 9000},
			{seq: 7001, ts: 558555, at: 133 * time.Millisecond, outSeq: 103, outTS: 4000 + 9000 + 3000},
			{seq: 6999, ts: 552555, drop: true},
		}},
		{"restart right away still advances the timestamp", []pkt{
			{restart: true, seq: 1, ts: 10, outSeq: 1, outTS: 10},
			{restart: true, seq: 50, ts: 99, outSeq: 2, outTS: 11},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rewriter{clockRate: 90000}
			base := time.Now().UnixNano()
			for i, p := range tc.pkts {
				now := base + int64(p.at)
				if p.restart {
					r.restart(0, p.seq, p.ts, now)
				}
				seq, ts, ok := r.rewrite(0, p.seq, p.ts, now)
				if ok == p.drop {
					t.Fatalf("packet %d (seq %d): forwarded=%v, want %v", i, p.seq, ok, !p.drop)
				}
				if ok && (seq != p.outSeq || ts != p.outTS) {
					t.Errorf("packet %d: seq %d ts %d, want seq %d ts %d", i, seq, ts, p.outSeq, p.outTS)
				}
			}
		})
	}
}

func TestRewriterLookup(t *testing.T) {
	r := rewriter{clockRate: 90000}
	now := time.Now().UnixNano()
	r.restart(0, 100, 0, now)
	for seq := uint16(100); seq < 110; seq++ {
		r.rewrite(0, seq, uint32(seq)*10, now)
	}
	r.restart(2, 5000, 777, now) // a layer switch
	for seq := uint16(5000); seq < 5005; seq++ {
		r.rewrite(2, seq, uint32(seq), now)
	}
	tests := []struct {
		out   uint16
		layer int
		in    uint16
		ok    bool
	}{
		{105, 0, 105, true},
		{109, 0, 109, true},
		{110, 2, 5000, true},
		{114, 2, 5004, true},
		{115, 0, 0, false}, // not sent yet
		{99, 0, 0, false},  // before the first run
	}
	for _, tc := range tests {
		layer, in, _, ok := r.lookup(tc.out)
		if ok != tc.ok || (ok && (layer != tc.layer || in != tc.in)) {
			t.Errorf("lookup(%d) = layer %d in %d %v, want layer %d in %d %v", tc.out, layer, in, ok, tc.layer, tc.in, tc.ok)
		}
	}
}

// TestRewriterInsert: padding inserted by the server takes sequence numbers
// of its own; media before and after keeps a continuous numbering, late
// packets and retransmissions still map to what was sent.
func TestRewriterInsert(t *testing.T) {
	r := rewriter{clockRate: 90000}
	now := time.Now().UnixNano()
	r.restart(0, 10, 1000, now)
	out := func(seq uint16) uint16 {
		t.Helper()
		o, _, ok := r.rewrite(0, seq, 1000, now)
		if !ok {
			t.Fatalf("packet %d dropped", seq)
		}
		return o
	}
	if got := out(10); got != 10 {
		t.Fatalf("first = %d", got)
	}
	out(11)
	p1, ts := r.insert()
	p2, _ := r.insert()
	if p1 != 12 || p2 != 13 || ts != 1000 {
		t.Fatalf("padding got %d, %d (ts %d), want 12, 13", p1, p2, ts)
	}
	if got := out(12); got != 14 {
		t.Fatalf("media after padding = %d, want 14", got)
	}
	if got := out(13); got != 15 {
		t.Fatalf("next = %d, want 15", got)
	}
	// Reordered: 9 is older than the start; a late 11 keeps its number.
	if _, _, ok := r.rewrite(0, 9, 0, now); ok {
		t.Error("a packet older than the start was forwarded")
	}
	if o, _, ok := r.rewrite(0, 11, 0, now); !ok || o != 11 {
		t.Errorf("late 11 -> %d %v, want 11", o, ok)
	}
	for _, c := range []struct{ out, in uint16 }{{10, 10}, {11, 11}, {14, 12}, {15, 13}} {
		if _, in, _, ok := r.lookup(c.out); !ok || in != c.in {
			t.Errorf("lookup(%d) = %d %v, want %d", c.out, in, ok, c.in)
		}
	}
	if _, _, _, ok := r.lookup(12); ok {
		t.Error("a padding packet maps to media")
	}
}

// TestRewriterLongRun: a stream that never restarts goes on past the 16-bit
// sequence space, many times over.
func TestRewriterLongRun(t *testing.T) {
	r := rewriter{clockRate: 90000}
	r.restart(0, 40000, 0, 0)
	seq, want := uint16(40000), uint16(40000)
	for i := range 300_000 {
		out, _, ok := r.rewrite(0, seq, uint32(i)*3000, int64(i))
		if !ok || out != want {
			t.Fatalf("packet %d (seq %d): out %d ok %v, want %d", i, seq, out, ok, want)
		}
		if i%1000 == 999 { // a reordered packet now and then
			if out, _, ok := r.rewrite(0, seq-3, 0, int64(i)); !ok || out != want-3 {
				t.Fatalf("late packet at %d: %d %v", i, out, ok)
			}
			if _, in, _, ok := r.lookup(want - 100); !ok || in != seq-100 {
				t.Fatalf("lookup at %d: %d %v", i, in, ok)
			}
		}
		seq++
		want++
	}
}

// FuzzRewriter drives a rewriter with restarts on three layers, packets with
// gaps, and inserted padding: every packet sent continues the output
// sequence by its input gap, and maps back to where it came from.
func FuzzRewriter(f *testing.F) {
	f.Add([]byte{0, 0, 1, 1, 0, 1, 1, 0, 1, 2, 0, 0, 1, 0, 1, 0, 1, 50, 1, 1, 1, 2, 0, 0, 2, 0, 0, 1, 0, 3})
	f.Add([]byte{0, 2, 255, 1, 0, 0, 0, 1, 0, 1, 0, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		r := rewriter{clockRate: 90000}
		seq := [3]uint16{100, 5000, 65530}
		ts := [3]uint32{1000, 2_000_000, 4_294_000_000}
		started := false
		var last uint16
		now := int64(0)
		for i := 0; i+2 < len(ops); i += 3 {
			op, layer, step := ops[i]%3, int(ops[i+1]%3), ops[i+2]
			now += 1_000_000
			switch op {
			case 0: // a restart (keyframe, switch) on layer
				seq[layer] += uint16(step)
				ts[layer] += uint32(step) * 3000
				r.restart(layer, seq[layer], ts[layer], now)
				out, _, ok := r.rewrite(layer, seq[layer], ts[layer], now)
				if !ok || (started && out != last+1) {
					t.Fatalf("restart: out %d ok %v, last %d", out, ok, last)
				}
				last, started = out, true
			case 1: // the next packet of the layer being forwarded
				if !started {
					continue
				}
				cl := r.cur().layer
				gap := uint16(step%4) + 1
				seq[cl] += gap
				ts[cl] += 3000
				out, _, ok := r.rewrite(cl, seq[cl], ts[cl], now)
				if !ok || out != last+gap {
					t.Fatalf("packet: out %d ok %v, want %d", out, ok, last+gap)
				}
				last = out
				if l, in, _, ok := r.lookup(out); !ok || l != cl || in != seq[cl] {
					t.Fatalf("lookup(%d) = layer %d in %d %v, want layer %d in %d", out, l, in, ok, cl, seq[cl])
				}
			case 2: // a padding packet of the server's
				if !started {
					continue
				}
				out, _ := r.insert()
				if out != last+1 {
					t.Fatalf("padding %d after %d", out, last)
				}
				last = out
			}
		}
	})
}

// lookup is lookupRuns on the rewriter itself.
func (r *rewriter) lookup(out uint16) (layer int, in uint16, tsDelta uint32, ok bool) {
	return lookupRuns(&r.runs, r.head, out)
}
