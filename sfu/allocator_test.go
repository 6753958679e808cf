package sfu

import (
	"log/slog"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// Layer bitrates of a typical three-layer simulcast track (bits/s).
const (
	rateQ = 150_000
	rateH = 500_000
	rateF = 1_500_000
)

// qhf is a track sending all three layers.
var qhf = layerRates{rateQ, rateH, rateF}

func TestChooseLayers(t *testing.T) {
	tests := []struct {
		name     string
		budget   int
		margin   int
		tracks   []layerRates
		want     []int
		wantMore bool
		cheapest int // checked when wantMore
	}{
		{
			name:   "ample budget: highest layers",
			budget: 10_000_000, margin: 1_000_000,
			tracks: []layerRates{qhf, qhf},
			want:   []int{2, 2},
		},
		{
			name:   "tight budget: lowest layers",
			budget: 2*rateQ + (rateH - rateQ) - 1, margin: 0,
			tracks:   []layerRates{qhf, qhf},
			want:     []int{0, 0},
			wantMore: true, cheapest: rateH - rateQ,
		},
		{
			name:   "lowest layers even over budget",
			budget: rateQ, margin: 0,
			tracks:   []layerRates{qhf, qhf, qhf},
			want:     []int{0, 0, 0},
			wantMore: true, cheapest: rateH - rateQ,
		},
		{
			name:   "one step: the track first in priority goes up",
			budget: 3*rateQ + (rateH - rateQ), margin: 0,
			tracks:   []layerRates{qhf, qhf, qhf},
			want:     []int{1, 0, 0},
			wantMore: true, cheapest: rateH - rateQ,
		},
		{
			// Enough for one track to reach f, if it went first.
			name:   "round-robin: equal tracks go up together",
			budget: 2*rateQ + (rateH - rateQ) + (rateF - rateH), margin: 0,
			tracks:   []layerRates{qhf, qhf},
			want:     []int{1, 1},
			wantMore: true, cheapest: rateF - rateH,
		},
		{
			name:   "round-robin: all tracks step before any steps twice",
			budget: 3*rateQ + 3*(rateH-rateQ) + (rateF - rateH), margin: 0,
			tracks:   []layerRates{qhf, qhf, qhf},
			want:     []int{2, 1, 1},
			wantMore: true, cheapest: rateF - rateH,
		},
		{
			name:   "inactive middle layer skipped: straight to f",
			budget: rateF, margin: 0,
			tracks: []layerRates{{rateQ, -1, rateF}},
			want:   []int{2},
		},
		{
			name:   "inactive middle layer skipped: the step to f does not fit",
			budget: rateF - 1, margin: 0,
			tracks:   []layerRates{{rateQ, -1, rateF}},
			want:     []int{0},
			wantMore: true, cheapest: rateF - rateQ,
		},
		{
			name:   "inactive lowest layer: starts at the lowest sent",
			budget: rateH, margin: 0,
			tracks:   []layerRates{{-1, rateH, rateF}},
			want:     []int{1},
			wantMore: true, cheapest: rateF - rateH,
		},
		{
			name:   "a track sending nothing gets no layer and costs nothing",
			budget: rateF, margin: 0,
			tracks: []layerRates{{-1, -1, -1}, {rateQ, rateH, rateF}},
			want:   []int{-1, 2},
		},
		{
			name:   "single layer: nothing to step to",
			budget: 0, margin: 0,
			tracks: []layerRates{{rateH, -1, -1}},
			want:   []int{0},
		},
		{
			name:   "margin: a step that fits only without it is not taken",
			budget: rateQ + (rateH - rateQ), margin: 1,
			tracks:   []layerRates{qhf},
			want:     []int{0},
			wantMore: true, cheapest: rateH - rateQ,
		},
		{
			name:   "margin: a step that fits with it is taken",
			budget: rateQ + (rateH - rateQ) + 100_000, margin: 100_000,
			tracks:   []layerRates{qhf},
			want:     []int{1},
			wantMore: true, cheapest: rateF - rateH,
		},
		{
			// The first track's step (1 Mbit/s) is seen first, the second's
			// (300 kbit/s) is cheaper: the probe is for the cheaper one.
			name:   "probe: the cheapest step that did not fit",
			budget: 2 * rateQ, margin: 0,
			tracks:   []layerRates{{rateQ, rateQ + 1_000_000, -1}, {rateQ, rateQ + 300_000, -1}},
			want:     []int{0, 0},
			wantMore: true, cheapest: 300_000,
		},
		{
			// A cheap step that fits is no reason to probe; the dearer one
			// that did not fit is.
			name:   "probe: a step that fitted is not the cheapest",
			budget: 2*rateQ + 100_000, margin: 0,
			tracks:   []layerRates{{rateQ, rateQ + 1_000_000, -1}, {rateQ, rateQ + 100_000, -1}},
			want:     []int{0, 1},
			wantMore: true, cheapest: 1_000_000,
		},
		{
			name:   "zero tracks",
			budget: 1_000_000, margin: 100_000,
			want: []int{},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			scratch := make([]int, 0, 1)
			a := chooseLayers(tc.budget, tc.margin, tc.tracks, scratch)
			if !slices.Equal(a.layers, tc.want) {
				t.Errorf("layers %v, want %v", a.layers, tc.want)
			}
			if a.wantMore != tc.wantMore || (tc.wantMore && a.cheapest != tc.cheapest) {
				t.Errorf("wantMore %v cheapest %d, want %v %d", a.wantMore, a.cheapest, tc.wantMore, tc.cheapest)
			}
			spent := 0
			for i, l := range a.layers {
				if l >= 0 {
					spent += tc.tracks[i][l]
				}
			}
			if a.left != tc.budget-spent {
				t.Errorf("left %d, want %d (budget %d, spent %d)", a.left, tc.budget-spent, tc.budget, spent)
			}
		})
	}
}

// TestChooseLayersReusesScratch: the layers go into the caller's slice
// when it has room, and nothing is allocated.
func TestChooseLayersReusesScratch(t *testing.T) {
	tracks := []layerRates{qhf, {rateQ, -1, rateF}, {-1, -1, -1}, qhf}
	scratch := make([]int, 7, 8) // stale contents: must be overwritten
	a := chooseLayers(2_000_000, 200_000, tracks, scratch)
	if len(a.layers) != len(tracks) || &a.layers[0] != &scratch[0] {
		t.Fatalf("layers %v not in the scratch slice", a.layers)
	}
	if allocs := testing.AllocsPerRun(100, func() {
		a = chooseLayers(2_000_000, 200_000, tracks, a.layers)
	}); allocs != 0 {
		t.Errorf("chooseLayers allocates %.1f times", allocs)
	}
}

// allocTestTrack builds a video track with the given simulcast layers
// (none: a single stream) published by pub.
func allocTestTrack(pub *Peer, rids ...string) *UpTrack {
	return newUpTrack(pub, mediaInfo{mid: NewID("m"), kind: webrtc.RTPCodecTypeVideo, rids: rids},
		webrtc.RTPCodecParameters{PayloadType: 96, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}})
}

// sendLayer makes layer l of u look sent at rate bits/s as of now.
func sendLayer(u *UpTrack, l, rate int, now int64) {
	u.layers[l].lastAt.Store(now)
	u.layers[l].rate.Store(int64(rate))
}

// allocTestSubscriber is a subscriber whose estimator has had feedback.
func allocTestSubscriber(now int64) *subscriber {
	s := newSubscriber(nil, slog.New(slog.DiscardHandler), make(chan struct{}))
	s.bwe.onFeedback(&twccFeedback{}, now)
	return s
}

// TestLayerRates: what the allocator reads of a subscription, layers
// above the subscriber's wish left out unless nothing below is sent.
func TestLayerRates(t *testing.T) {
	now := time.Now().UnixNano()
	stale := now - int64(2*layerTimeout)
	pub := &Peer{id: "p-pub", e: &Engine{}}
	tests := []struct {
		name   string
		rids   []string
		sentAt [maxLayers]int64 // 0: never sent
		max    int32
		want   layerRates
	}{
		{"all sent, all wanted", []string{"q", "h", "f"}, [3]int64{now, now, now}, 2, layerRates{rateQ, rateH, rateF}},
		{"all sent, up to h wanted", []string{"q", "h", "f"}, [3]int64{now, now, now}, 1, layerRates{rateQ, rateH, -1}},
		{"h silent", []string{"q", "h", "f"}, [3]int64{now, stale, now}, 2, layerRates{rateQ, -1, rateF}},
		{"only f sent, q wanted", []string{"q", "h", "f"}, [3]int64{0, 0, now}, 0, layerRates{-1, -1, rateF}},
		{"h and f sent, q wanted", []string{"q", "h", "f"}, [3]int64{0, now, now}, 0, layerRates{-1, rateH, -1}},
		{"nothing sent", []string{"q", "h", "f"}, [3]int64{stale, 0, stale}, 2, layerRates{-1, -1, -1}},
		{"two layers", []string{"q", "f"}, [3]int64{now, now, now}, 1, layerRates{rateQ, rateH, -1}},
		{"no simulcast", nil, [3]int64{now, now, now}, 0, layerRates{rateQ, -1, -1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u := allocTestTrack(pub, tc.rids...)
			for l, at := range tc.sentAt {
				u.layers[l].lastAt.Store(at)
				u.layers[l].rate.Store(int64([]int{rateQ, rateH, rateF}[l]))
			}
			d := newDownTrack(u, allocTestSubscriber(now))
			d.maxLayer.Store(tc.max)
			if got := d.layerRates(now); got != tc.want {
				t.Errorf("layerRates = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestAllocate runs the whole allocation of one subscriber: audio is
// reserved first, muted video is left alone, priorities order the tracks,
// and the choice lands in bweLayer.
func TestAllocate(t *testing.T) {
	now := time.Now().UnixNano()
	pub := &Peer{id: "p-pub", e: &Engine{}}
	sub := allocTestSubscriber(now)
	audio := newUpTrack(pub, mediaInfo{mid: "a", kind: webrtc.RTPCodecTypeAudio},
		webrtc.RTPCodecParameters{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000}})
	low, high, muted := allocTestTrack(pub, "q", "h", "f"), allocTestTrack(pub, "q", "h", "f"), allocTestTrack(pub, "q", "h", "f")
	for _, u := range []*UpTrack{low, high, muted} {
		for l, r := range qhf {
			sendLayer(u, l, r, now)
		}
	}
	high.SetPriority(1)
	muted.muted.Store(true)
	var downs []*DownTrack
	for _, u := range []*UpTrack{audio, low, muted, high} {
		downs = append(downs, newDownTrack(u, sub))
	}
	sub.downs.Store(&downs)
	dLow, dMuted, dHigh := downs[1], downs[2], downs[3]
	dMuted.bweLayer.Store(1)

	// The estimate carries audio, both q layers, and the step of the
	// track of higher priority to h, within the margin; not the step of
	// the other track, which comes second although listed first.
	est := (audioReserve + 2*rateQ + (rateH - rateQ)) * 10 / 9
	sub.bwe.est.Store(int64(est))
	sub.allocate(now)
	if l, h, m := dLow.bweLayer.Load(), dHigh.bweLayer.Load(), dMuted.bweLayer.Load(); l != 0 || h != 1 || m != 1 {
		t.Errorf("layers low %d high %d muted %d, want 0 1 1 (muted untouched)", l, h, m)
	}
	// Without the audio reserve, the second step fits too.
	est = (2*rateQ + 2*(rateH-rateQ)) * 10 / 9
	sub.bwe.est.Store(int64(est))
	sub.allocate(now)
	if l, h := dLow.bweLayer.Load(), dHigh.bweLayer.Load(); l != 0 || h != 1 {
		t.Errorf("layers low %d high %d, want 0 1: audio counted", l, h)
	}
	sub.bwe.est.Store(int64(est + audioReserve*10/9 + 1))
	sub.allocate(now)
	if l, h := dLow.bweLayer.Load(), dHigh.bweLayer.Load(); l != 1 || h != 1 {
		t.Errorf("layers low %d high %d, want 1 1", l, h)
	}
}

// TestAllocateAllocatesNothing: in steady state the allocator reuses its
// scratch.
func TestAllocateAllocatesNothing(t *testing.T) {
	sub, now := benchSubscriber(8)
	sub.allocate(now)
	if a := testing.AllocsPerRun(100, func() { sub.allocate(now) }); a != 0 && !raceEnabled {
		t.Errorf("allocate allocates %.1f times", a)
	}
}

// oldAllocate is the allocator's choice as it was written before
// chooseLayers, read straight from the DownTracks: the reference
// TestChooseLayersAsBefore compares against.
func oldAllocate(video []*DownTrack, budget, margin int, now int64) (choice []int, wantMore bool, cheapest, left int) {
	lowestActive := func(d *DownTrack) int {
		for i := range d.up.layerCount() {
			if d.up.layers[i].active(now) {
				return i
			}
		}
		return -1
	}
	nextActive := func(d *DownTrack, l int) int {
		for i := l + 1; i <= int(d.maxLayer.Load()) && i < d.up.layerCount(); i++ {
			if d.up.layers[i].active(now) {
				return i
			}
		}
		return -1
	}
	for _, d := range video {
		l := lowestActive(d)
		choice = append(choice, l)
		if l >= 0 {
			budget -= d.up.layers[l].bitrate(now)
		}
	}
	for improved := true; improved; {
		improved = false
		for i, d := range video {
			next := nextActive(d, choice[i])
			if next < 0 {
				continue
			}
			extra := d.up.layers[next].bitrate(now)
			if choice[i] >= 0 {
				extra -= d.up.layers[choice[i]].bitrate(now)
			}
			if extra <= budget-margin {
				choice[i] = next
				budget -= extra
				improved = true
				continue
			}
			if !wantMore || extra < cheapest {
				wantMore, cheapest = true, extra
			}
		}
	}
	return choice, wantMore, cheapest, budget
}

// TestChooseLayersAsBefore compares layerRates and chooseLayers with the
// allocator as it was before they were pulled out, on random tracks.
func TestChooseLayersAsBefore(t *testing.T) {
	now := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(1, 2))
	pub := &Peer{id: "p-pub", e: &Engine{}}
	sub := allocTestSubscriber(now)
	ridSets := [][]string{nil, {"q", "f"}, {"q", "h", "f"}}
	var scratch []int
	for range 3000 {
		video := make([]*DownTrack, rng.IntN(5))
		tracks := make([]layerRates, len(video))
		for i := range video {
			u := allocTestTrack(pub, ridSets[rng.IntN(len(ridSets))]...)
			for l := range u.layerCount() {
				if rng.IntN(3) > 0 {
					sendLayer(u, l, rng.IntN(4)*rng.IntN(1_000_000), now)
				}
			}
			video[i] = newDownTrack(u, sub)
			video[i].maxLayer.Store(int32(rng.IntN(u.layerCount())))
			tracks[i] = video[i].layerRates(now)
		}
		budget, margin := rng.IntN(6_000_000)-500_000, rng.IntN(600_000)
		choice, wantMore, cheapest, left := oldAllocate(video, budget, margin, now)
		a := chooseLayers(budget, margin, tracks, scratch)
		scratch = a.layers
		if !slices.Equal(a.layers, choice) || a.wantMore != wantMore || a.cheapest != cheapest || a.left != left {
			t.Fatalf("budget %d margin %d tracks %v: got %+v, before %v %v %d %d",
				budget, margin, tracks, a, choice, wantMore, cheapest, left)
		}
	}
}

// benchSubscriber is a subscriber with n three-layer video subscriptions
// and one audio, all being sent, with bandwidth for every layer (so that
// the allocator does not probe).
func benchSubscriber(n int) (*subscriber, int64) {
	now := time.Now().UnixNano()
	pub := &Peer{id: "p-pub", e: &Engine{}}
	sub := allocTestSubscriber(now)
	audio := newUpTrack(pub, mediaInfo{mid: "a", kind: webrtc.RTPCodecTypeAudio},
		webrtc.RTPCodecParameters{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000}})
	downs := []*DownTrack{newDownTrack(audio, sub)}
	for i := range n {
		u := allocTestTrack(pub, "q", "h", "f")
		for l, r := range qhf {
			sendLayer(u, l, r, now)
		}
		u.SetPriority(i % 3)
		downs = append(downs, newDownTrack(u, sub))
	}
	sub.downs.Store(&downs)
	sub.bwe.est.Store(bweMax)
	return sub, now
}

// BenchmarkAllocate is one round of a subscriber's allocator with 8 video
// subscriptions.
func BenchmarkAllocate(b *testing.B) {
	sub, now := benchSubscriber(8)
	b.ReportAllocs()
	for b.Loop() {
		sub.allocate(now)
	}
}

// TestProbeCarrier: a probe's padding goes in a video stream being
// forwarded, never in a muted track's or one not started, which would
// carry none of it: with such a track first, every probe failed and the
// estimate never rose (Chromium's simulcast test, 1 run in 4).
func TestProbeCarrier(t *testing.T) {
	now := time.Now().UnixNano()
	pub := &Peer{id: "p-pub", e: &Engine{}}
	sub := allocTestSubscriber(now)
	audio := newUpTrack(pub, mediaInfo{mid: "a", kind: webrtc.RTPCodecTypeAudio},
		webrtc.RTPCodecParameters{PayloadType: 111, RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000}})
	muted, idle, live := allocTestTrack(pub, "q", "h", "f"), allocTestTrack(pub, "q", "h", "f"), allocTestTrack(pub, "q", "h", "f")
	muted.muted.Store(true)
	var downs []*DownTrack
	for _, u := range []*UpTrack{audio, muted, idle, live} {
		d := newDownTrack(u, sub)
		d.bound.Store(&binding{ssrc: 1, twccID: 3})
		downs = append(downs, d)
	}
	downs[1].layer.Store(0) // muted after it started
	downs[3].layer.Store(0) // forwarding q
	for _, tc := range []struct {
		name  string
		downs []*DownTrack
		want  *DownTrack
	}{
		{"muted and not started first", downs, downs[3]},
		{"none forwarded", downs[:3], nil},
		{"audio only", downs[:1], nil},
	} {
		if got := probeCarrier(tc.downs); got != tc.want {
			t.Errorf("%s: probe carrier %p, want %p", tc.name, got, tc.want)
		}
	}
}
