package signaling

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"slices"
	"testing"

	"github.com/gorilla/websocket"
	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/signaling/protocol"
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
// panic, and keep these invariants:
//   - every error reply has a protocol code other than internal, and echoes
//     the id of the frame it answers;
//   - the session has a participant exactly when a join succeeded (it was
//     sent joined) and no leave followed, and the room lists it then;
//   - the socket is closed only by a leave (1000), never by what else a
//     client sends in the protocol's shape;
//   - when the socket ends, the participant is gone from its room.
func FuzzSession(f *testing.F) {
	h := newFuzzHandler(f)
	f.Add([]byte("{\"type\":\"join\",\"room\":\"f\",\"name\":\"a\"}\n{\"type\":\"offer\",\"sdp\":\"v=0\\r\\no=- 1 1 IN IP4 0.0.0.0\\r\\ns=-\\r\\nt=0 0\\r\\nm=audio 9 UDP/TLS/RTP/SAVPF 111\\r\\na=mid:0\\r\\na=ice-ufrag:u\\r\\na=ice-pwd:pppppppppppppppppppppppp\\r\\na=fingerprint:sha-256 AA\\r\\na=setup:actpass\\r\\na=sendonly\\r\\na=rtpmap:111 opus/48000/2\\r\\n\"}\n{\"type\":\"mute\",\"track\":\"t\",\"muted\":true}"))
	f.Add([]byte("{\"type\":\"join\",\"room\":\"f\",\"name\":\"b\"}\n{\"type\":\"subscribe\",\"tracks\":[\"x\"]}\n{\"type\":\"answer\",\"sdp\":\"v=0\"}\n{\"type\":\"candidate\",\"candidate\":{\"candidate\":\"candidate:1 1 udp 1 1.2.3.4 5 typ host\"}}\n{\"type\":\"leave\"}"))
	f.Add([]byte("{\"type\":\"resume\",\"token\":\"abc\"}\n{\"type\":\"layer\",\"track\":\"t\",\"rid\":\"q\"}"))
	f.Add([]byte("{\"type\":\"join\",\"id\":\"j\",\"room\":\"f\",\"name\":\"c\"}\n{\"type\":\"join\",\"id\":\"k\",\"room\":\"g\",\"name\":\"c\"}\n{\"type\":\"refresh\",\"id\":\"r\",\"token\":\"x\"}\n{\"type\":\"leave\"}\n{\"type\":\"join\",\"room\":\"f\",\"name\":\"c\"}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := &session{h: h, out: make(chan *outgoing, 1<<16), closing: make(chan struct{})}
		s.logp.Store(h.log)
		s.ctx, s.cancel = context.WithCancel(context.Background())
		defer s.cancel()
		joined, left := false, false
		for _, frame := range bytes.Split(data, []byte("\n")) {
			want, _ := decode(frame)
			end := s.handle(frame)
			for drained := false; !drained; {
				select {
				case o := <-s.out:
					if _, err := s.frame(*o); err != nil {
						t.Fatalf("frame %q: a message that cannot be sent: %v", frame, err)
					}
					switch m := o.reply.(type) {
					case protocol.Error:
						if m.Code == CodeInternal || !slices.Contains(Codes, m.Code) {
							t.Fatalf("frame %q: error %q: %s", frame, m.Code, m.Message)
						}
						if o.id != want.id {
							t.Fatalf("frame %q: error echoes id %q, want %q", frame, o.id, want.id)
						}
					}
					switch o.event.(type) {
					case rooms.Joined, rooms.Resumed:
						joined = true
					}
				default:
					drained = true
				}
			}
			if end {
				left = true
				break
			}
		}
		select {
		case <-s.closing:
			if !left || s.closeCode != websocket.CloseNormalClosure {
				t.Fatalf("socket closed with %d %q, not by a leave", s.closeCode, s.closeText)
			}
		default:
			if left {
				t.Fatal("leave did not close the socket")
			}
		}
		if (s.part != nil) != (joined && !left) {
			t.Fatalf("participant %v, joined %v, left %v", s.part != nil, joined, left)
		}
		if s.part == nil {
			return
		}
		listed := func() bool {
			for _, r := range h.reg.Rooms(context.Background()) {
				for _, p := range r.Participants {
					if p.ID == s.part.ID() {
						return r.Name == s.part.Room()
					}
				}
			}
			return false
		}
		if !listed() {
			t.Fatalf("participant %s is not in its room %q", s.part.ID(), s.part.Room())
		}
		s.part.Disconnected(s, true) // the socket ends with a close frame
		if listed() {
			t.Fatalf("participant %s left behind", s.part.ID())
		}
	})
}
