package sfu

import (
	"math/big"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

// TestReceiveStatsJitter feeds a steady 90 kHz stream (one packet every
// 10 ms) starting at awkward points: the jitter must stay near zero and
// the loss at zero.
func TestReceiveStatsJitter(t *testing.T) {
	// The first time, after a day, at which now*90000 (in ns) passes a
	// multiple of 2^64: a product of the two overflowed there.
	wrap := func() int64 {
		now := big.NewInt(time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC).UnixNano())
		step := new(big.Int).Lsh(big.NewInt(1), 64)
		step.Div(step, big.NewInt(90000))
		k := new(big.Int).Div(now, step)
		k.Add(k, big.NewInt(1))
		return k.Mul(k, step).Int64()
	}()
	tests := []struct {
		name string
		now  int64  // arrival of the first packet, unix ns
		ts   uint32 // its RTP time
	}{
		{"ordinary start", time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC).UnixNano(), 1000},
		{"arrival times across a 2^64 product", wrap - int64(time.Second), 1000},
		{"RTP time wrapping", time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC).UnixNano(), 1<<32 - 900*50},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r receiveStats
			for i := range 300 {
				r.update(uint16(i), tt.ts+uint32(i)*900, tt.now+int64(i)*int64(10*time.Millisecond), 90000)
			}
			if r.jitter > 1 {
				t.Errorf("jitter %.1f clock units, want about 0", r.jitter)
			}
			if l := r.lost(); l != 0 {
				t.Errorf("lost %d", l)
			}
		})
	}
}

func TestAudioLevelOnlyOnAudio(t *testing.T) {
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, videoKind} {
		m := mediaInfo{mid: "0", kind: kind, extIDs: map[string]int{uriAudioLevel: 1}}
		u := newUpTrack(&Peer{}, m, webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: "x/y", ClockRate: 90000}})
		// Several layers of a video track read concurrently: loudness,
		// which one reader owns, must not be measured there.
		if got, want := u.extAudioLevel != 0, kind == webrtc.RTPCodecTypeAudio; got != want {
			t.Errorf("%s track measures loudness: %v, want %v", kind, got, want)
		}
	}
}
