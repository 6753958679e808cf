package rooms

import (
	"testing"
	"time"

	"github.com/tessera-rtc/tessera/sfu"
)

// TestFeature: the featured speaker is the loudest, held at least
// featureHold against a newcomer; silence keeps it; with none yet, the
// first participant who publishes is featured, a viewer never.
func TestFeature(t *testing.T) {
	viewer := &Participant{id: "v", via: ViaWHEP}
	quiet := &Participant{id: "quiet"}                                      // publishes nothing
	a := &Participant{id: "a", published: []*sfu.UpTrack{new(sfu.UpTrack)}} // publishes
	b := &Participant{id: "b"}
	r := &room{parts: []*Participant{viewer, quiet, a, b}}
	t0 := time.Unix(1000, 0)

	r.feature(nil, t0)
	if r.featured != a {
		t.Fatalf("before anyone speaks: %v, want the first who publishes", r.featured)
	}
	for _, step := range []struct {
		loudest *Participant
		after   time.Duration
		want    *Participant
	}{
		{b, 300 * time.Millisecond, a},               // a was featured at t0: held
		{b, featureHold, b},                          // held long enough
		{nil, 5 * time.Second, b},                    // silence keeps the speaker
		{a, 5*time.Second + 100*time.Millisecond, a}, // b was featured long ago
		{b, 5*time.Second + 900*time.Millisecond, a}, // a only 800 ms ago
	} {
		r.feature(step.loudest, t0.Add(step.after))
		if r.featured != step.want {
			t.Errorf("at %s with %v loudest: %v featured, want %v", step.after, step.loudest, r.featured.id, step.want.id)
		}
	}
}
