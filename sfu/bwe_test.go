package sfu

import (
	"testing"
	"time"
)

// TestSentRecord: a send record gives back what was recorded, for its own
// sequence number only, whatever the clock's value.
func TestSentRecord(t *testing.T) {
	const s = int64(time.Second)
	wrap := int64(1<<sentTimeBits) * int64(time.Microsecond) // where the stored µs wrap around
	for _, tc := range []struct {
		name     string
		at, now  int64
		size     int
		wantSize int
		probe    bool
	}{
		{"now", 1_700_000_000 * s, 1_700_000_000 * s, 1200, 1200, false},
		{"two seconds ago, probe", 1_700_000_000*s + 123_456_000, 1_700_000_002 * s, 255, 255, true},
		{"across the wrap", 7*wrap - s/2, 7*wrap + s/2, 1500, 1500, false},
		{"oversized", 42 * s, 42 * s, 5000, sentSizeMax, false},
		{"clock near zero", 0, 3 * s, 0, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := packSent(4242, tc.size, tc.probe, tc.at)
			at, size, probe, ok := unpackSent(w, 4242, tc.now)
			wantAt := tc.at / int64(time.Microsecond) * int64(time.Microsecond)
			if !ok || at != wantAt || size != tc.wantSize || probe != tc.probe {
				t.Fatalf("got at %d size %d probe %v ok %v, want %d %d %v", at, size, probe, ok, wantAt, tc.wantSize, tc.probe)
			}
			if _, _, _, ok := unpackSent(w, 4242+bweHistory, tc.now); ok {
				t.Fatal("the record of another packet in the same slot was taken for this one")
			}
		})
	}
	if _, _, _, ok := unpackSent(0, 0, 0); ok {
		t.Fatal("an empty record was taken for packet 0")
	}
}

// TestBWEObservations: feedback on sent packets yields observations with
// their send time, size and arrival; a packet taken back with unsent, or
// overwritten in the history, yields none.
func TestBWEObservations(t *testing.T) {
	b := newBWE()
	t0 := int64(1_700_000_000 * time.Second)
	for i := range 4 {
		b.onSent(1000+i, t0+int64(i)*int64(time.Millisecond), i == 3)
	}
	b.unsent(2)
	fb := twccFeedback{
		base: 0, refTime: 5_000_000,
		statuses: []uint8{twccSmallDelta, twccNotReceived, twccSmallDelta, twccSmallDelta},
		deltas:   []int64{0, 2000, 1000},
	}
	b.mu.Lock()
	b.st.obs = b.st.obs[:0]
	b.mu.Unlock()
	b.onFeedback(&fb, t0+50*int64(time.Millisecond))
	b.mu.Lock()
	defer b.mu.Unlock()
	obs := b.st.obs
	if len(obs) != 3 {
		t.Fatalf("%d observations, want 3 (packet 2 was not sent): %+v", len(obs), obs)
	}
	want := []observation{
		{sentAt: t0, arrival: 5 * int64(time.Second), size: 1000},
		{sentAt: t0 + int64(time.Millisecond), size: 1001},
		{sentAt: t0 + 3*int64(time.Millisecond), arrival: 5*int64(time.Second) + 3*int64(time.Millisecond), size: 1003, probe: true},
	}
	for i, w := range want {
		o := obs[i]
		if o.sentAt != w.sentAt || o.arrival != w.arrival || o.size != w.size || o.probe != w.probe {
			t.Errorf("observation %d = %+v, want %+v", i, o, w)
		}
	}
}
