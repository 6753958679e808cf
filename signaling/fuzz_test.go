package signaling

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"

	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/sfu"
)

// FuzzDecode: any frame decodes to a message or to an error with a protocol
// code, and never panics.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","id":"1","room":"r","name":"n"}`,
		`{"type":"offer","sdp":"v=0\r\n"}`,
		`{"type":"candidate","candidate":null}`,
		`{"type":"subscribe","tracks":["a","b"]}`,
		`{"type":"mute","track":"t","muted":true}`,
		`{"type":"resume","token":"x"}`,
		`{"type":"refresh","token":"x.y.z"}`,
		`[1,2]`, `{"type":7}`, `{}`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := decode(data)
		if err != nil {
			if codeOf(err) == CodeInternal {
				t.Fatalf("decode error without a protocol code: %v", err)
			}
			return
		}
		if req.msg == nil {
			t.Fatal("no message and no error")
		}
	})
}

// fuzzHandler is one registry and engine for all runs of FuzzSession.
var fuzzHandler *Handler

func newFuzzHandler(f testing.TB) *Handler {
	if fuzzHandler != nil {
		return fuzzHandler
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	e, err := sfu.NewEngine(sfu.Config{Loopback: true, Logger: log})
	if err != nil {
		f.Fatal(err)
	}
	reg, err := rooms.NewLocal(rooms.Config{OnDemand: true, MaxParticipants: 1000}, e, log)
	if err != nil {
		f.Fatal(err)
	}
	fuzzHandler = NewHandler(Config{Logger: log, QueueSize: 1 << 16}, reg)
	return fuzzHandler
}

// FuzzSession feeds a sequence of frames (one per line) to a session, as
// its reader would: decoding, dispatch, the room and the media plane
// (offers with arbitrary SDP included) must answer every one without a
// panic and leave no participant behind.
func FuzzSession(f *testing.F) {
	h := newFuzzHandler(f)
	f.Add([]byte("{\"type\":\"join\",\"room\":\"f\",\"name\":\"a\"}\n{\"type\":\"offer\",\"sdp\":\"v=0\\r\\no=- 1 1 IN IP4 0.0.0.0\\r\\ns=-\\r\\nt=0 0\\r\\nm=audio 9 UDP/TLS/RTP/SAVPF 111\\r\\na=mid:0\\r\\na=ice-ufrag:u\\r\\na=ice-pwd:pppppppppppppppppppppppp\\r\\na=fingerprint:sha-256 AA\\r\\na=setup:actpass\\r\\na=sendonly\\r\\na=rtpmap:111 opus/48000/2\\r\\n\"}\n{\"type\":\"mute\",\"track\":\"t\",\"muted\":true}"))
	f.Add([]byte("{\"type\":\"join\",\"room\":\"f\",\"name\":\"b\"}\n{\"type\":\"subscribe\",\"tracks\":[\"x\"]}\n{\"type\":\"answer\",\"sdp\":\"v=0\"}\n{\"type\":\"candidate\",\"candidate\":{\"candidate\":\"candidate:1 1 udp 1 1.2.3.4 5 typ host\"}}\n{\"type\":\"leave\"}"))
	f.Add([]byte("{\"type\":\"resume\",\"token\":\"abc\"}\n{\"type\":\"layer\",\"track\":\"t\",\"rid\":\"q\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &session{h: h, out: make(chan any, 1<<16), closing: make(chan struct{})}
		s.logp.Store(h.log)
		s.ctx, s.cancel = context.WithCancel(context.Background())
		defer s.cancel()
		for _, frame := range bytes.Split(data, []byte("\n")) {
			if s.handle(frame) {
				break
			}
		}
		if s.part != nil {
			s.part.Leave()
		}
		for _, r := range h.reg.Rooms(context.Background()) {
			for _, p := range r.Participants {
				if s.part != nil && p.ID == s.part.ID() {
					t.Fatalf("participant %s left behind", p.ID)
				}
			}
		}
	})
}
