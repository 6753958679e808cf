package signaling

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/internal/protocoltest"
	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

func TestDecode(t *testing.T) {
	yes, no := true, false
	mid, idx := "0", uint16(0)
	tests := []struct {
		name    string
		frame   string
		want    any    // the decoded message
		id      string // the id decode must return, even with an error
		errCode Code   // expected error code ("" for none)
		errText string // substring of the error
	}{
		{name: "join", frame: `{"type":"join","id":"1","room":"r","name":"Ann"}`, id: "1",
			want: &protocol.Join{Room: "r", Name: "Ann"}},
		{name: "join with token and autoSubscribe", frame: `{"type":"join","room":"r","name":"A","token":"tok","autoSubscribe":false}`,
			want: &protocol.Join{Room: "r", Name: "A", Token: "tok", AutoSubscribe: &no}},
		{name: "join ignores unknown fields", frame: `{"type":"join","room":"r","name":"A","future":{"x":1}}`,
			want: &protocol.Join{Room: "r", Name: "A"}},
		{name: "join without room", frame: `{"type":"join","id":"9","name":"A"}`, id: "9", errCode: CodeBadRequest, errText: "room is required"},
		{name: "join without name", frame: `{"type":"join","room":"r"}`, errCode: CodeBadRequest, errText: "name is required"},
		{name: "join with numeric room", frame: `{"type":"join","room":5,"name":"A"}`, errCode: CodeBadRequest, errText: `field "room" must be a string`},
		{name: "offer", frame: `{"type":"offer","id":"x","sdp":"v=0"}`, id: "x", want: &protocol.Offer{SDP: "v=0"}},
		{name: "offer without sdp", frame: `{"type":"offer"}`, errCode: CodeBadRequest, errText: "sdp is required"},
		{name: "offer with huge sdp", frame: `{"type":"offer","sdp":"` + strings.Repeat("a", protocol.MaxSDPBytes+1) + `"}`, errCode: CodeBadRequest, errText: "larger than"},
		{name: "answer", frame: `{"type":"answer","sdp":"v=0"}`, want: &protocol.Answer{SDP: "v=0"}},
		{name: "candidate", frame: `{"type":"candidate","candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 9 typ host","sdpMid":"0","sdpMLineIndex":0}}`,
			want: &protocol.Candidate{Candidate: candidateInit("candidate:1 1 udp 1 127.0.0.1 9 typ host", &mid, &idx)}},
		{name: "end of candidates", frame: `{"type":"candidate","candidate":null}`, want: &protocol.Candidate{}},
		{name: "candidate of the wrong type", frame: `{"type":"candidate","candidate":"x"}`, errCode: CodeBadRequest},
		{name: "subscribe", frame: `{"type":"subscribe","tracks":["a","b"]}`, want: &protocol.Subscribe{Tracks: []string{"a", "b"}}},
		{name: "subscribe to nothing", frame: `{"type":"subscribe","tracks":[]}`, errCode: CodeBadRequest, errText: "at least one"},
		{name: "subscribe with a number", frame: `{"type":"subscribe","tracks":[1]}`, errCode: CodeBadRequest},
		{name: "unsubscribe", frame: `{"type":"unsubscribe","tracks":["a"]}`, want: &protocol.Unsubscribe{Tracks: []string{"a"}}},
		{name: "unsubscribe with an empty id", frame: `{"type":"unsubscribe","tracks":[""]}`, errCode: CodeBadRequest},
		{name: "layer", frame: `{"type":"layer","track":"t","rid":"q"}`, want: &protocol.Layer{Track: "t", RID: "q"}},
		{name: "layer without rid", frame: `{"type":"layer","track":"t"}`, errCode: CodeBadRequest, errText: "rid is required"},
		{name: "mute", frame: `{"type":"mute","track":"t","muted":true}`, want: &protocol.Mute{Track: "t", Muted: &yes}},
		{name: "unmute", frame: `{"type":"mute","track":"t","muted":false}`, want: &protocol.Mute{Track: "t", Muted: &no}},
		{name: "mute without muted", frame: `{"type":"mute","track":"t"}`, errCode: CodeBadRequest, errText: "muted is required"},
		{name: "leave", frame: `{"type":"leave"}`, want: &protocol.Leave{}},
		{name: "resume", frame: `{"type":"resume","id":"r","token":"abc"}`, id: "r", want: &protocol.Resume{Token: "abc"}},
		{name: "resume without token", frame: `{"type":"resume"}`, errCode: CodeBadRequest, errText: "token must be"},
		{name: "refresh", frame: `{"type":"refresh","id":"f","token":"a.b.c"}`, id: "f", want: &protocol.Refresh{Token: "a.b.c"}},
		{name: "refresh without token", frame: `{"type":"refresh","id":"f"}`, id: "f", errCode: CodeBadRequest, errText: "token must be"},
		{name: "refresh with a huge token", frame: `{"type":"refresh","token":"` + strings.Repeat("x", 5000) + `"}`, errCode: CodeBadRequest, errText: "token must be"},
		{name: "not JSON", frame: `hello`, errCode: CodeBadRequest, errText: "not a JSON object"},
		{name: "JSON array", frame: `[1,2]`, errCode: CodeBadRequest, errText: "not a JSON object"},
		{name: "no type", frame: `{"id":"3"}`, id: "3", errCode: CodeBadRequest, errText: "missing type"},
		{name: "numeric type", frame: `{"type":7}`, errCode: CodeBadRequest},
		{name: "unknown type", frame: `{"type":"dance","id":"4"}`, id: "4", errCode: CodeBadRequest, errText: `unknown message type "dance"`},
		{name: "numeric id", frame: `{"type":"leave","id":4}`, errCode: CodeBadRequest, errText: "id must be a string"},
		{name: "null id", frame: `{"type":"leave","id":null}`, want: &protocol.Leave{}},
		{name: "huge id", frame: `{"type":"leave","id":"` + strings.Repeat("i", 200) + `"}`, errCode: CodeBadRequest, errText: "id is longer"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := decode([]byte(tc.frame))
			if req.id != tc.id {
				t.Errorf("id = %q, want %q", req.id, tc.id)
			}
			if tc.errCode != "" {
				if err == nil {
					t.Fatalf("decoded %+v, want a %s error", req.msg, tc.errCode)
				}
				if got := codeOf(err); got != tc.errCode {
					t.Errorf("code = %s, want %s (%v)", got, tc.errCode, err)
				}
				if !strings.Contains(err.Error(), tc.errText) {
					t.Errorf("error %q does not contain %q", err, tc.errText)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !reflect.DeepEqual(req.msg, tc.want) {
				t.Errorf("decoded %#v, want %#v", req.msg, tc.want)
			}
		})
	}
}

func candidateInit(c string, mid *string, idx *uint16) *webrtc.ICECandidateInit {
	return &webrtc.ICECandidateInit{Candidate: c, SDPMid: mid, SDPMLineIndex: idx}
}

func TestCodeOf(t *testing.T) {
	tests := []struct {
		err  error
		want Code
	}{
		{badRequest("x"), CodeBadRequest},
		{errNotJoined, CodeNotJoined},
		{errAlreadyJoined, CodeAlreadyJoined},
		{errUnauthorized, CodeUnauthorized},
		{rooms.ErrUnauthorized, CodeUnauthorized},
		{rooms.ErrRoomNotFound, CodeRoomNotFound},
		{rooms.ErrRoomFull, CodeRoomFull},
		{rooms.ErrInvalid, CodeBadRequest},
		{rooms.ErrNotFound, CodeNotFound},
		{rooms.ErrForbidden, CodeForbidden},
		{sfu.ErrBadSDP, CodeBadSDP},
		{sfu.ErrNoPendingOffer, CodeBadSDP},
		{sfu.ErrBadCandidate, CodeBadRequest},
		{sfu.ErrTooManyTracks, CodeForbidden},
		{sfu.ErrNotAllowed, CodeForbidden},
		{rooms.ErrUnavailable, CodeUnavailable},
		{rooms.ErrMoved, CodeUnavailable},
		{errors.New("boom"), CodeInternal},
	}
	for _, tc := range tests {
		wrapped := errors.Join(errors.New("context"), tc.err)
		if got := codeOf(wrapped); got != tc.want {
			t.Errorf("codeOf(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}

// TestRenderedMessages checks the JSON of every server message against the
// protocol's field names.
func TestRenderedMessages(t *testing.T) {
	s := &session{h: &Handler{cfg: Config{ICEServers: []ICEServer{{URLs: []string{"stun:s"}}}}}}
	id := "7"
	s.joinID.Store(&id)
	track := rooms.TrackInfo{ID: "t1", Participant: "p1", Kind: "video", Layers: []string{"q", "f"}}
	tests := []struct {
		in   any // a rooms.Event, or an outgoing reply
		want string
	}{
		{rooms.Joined{Self: rooms.ParticipantInfo{ID: "p2", Name: "B"}, Others: []rooms.ParticipantInfo{{ID: "p1", Name: "A", Tracks: []rooms.TrackInfo{track}}}},
			`{"type":"joined","id":"7","participant":{"id":"p2","name":"B"},"participants":[{"id":"p1","name":"A","tracks":[{"id":"t1","participant":"p1","kind":"video","layers":["q","f"],"muted":false}]}],"iceServers":[{"urls":["stun:s"]}]}`},
		{rooms.Joined{Self: rooms.ParticipantInfo{ID: "p2", Name: "B"}, ResumeToken: "sekret"},
			`{"type":"joined","id":"7","participant":{"id":"p2","name":"B"},"participants":[],"iceServers":[{"urls":["stun:s"]}],"resumeToken":"sekret"}`},
		{rooms.Resumed{Self: rooms.ParticipantInfo{ID: "p2", Name: "B", Tracks: []rooms.TrackInfo{track}}},
			`{"type":"resumed","id":"7","participant":{"id":"p2","name":"B","tracks":[{"id":"t1","participant":"p1","kind":"video","layers":["q","f"],"muted":false}]},"participants":[],"iceServers":[{"urls":["stun:s"]}]}`},
		{rooms.ParticipantJoined{Participant: rooms.ParticipantInfo{ID: "p3", Name: "C"}},
			`{"type":"participant-joined","participant":{"id":"p3","name":"C","tracks":[]}}`},
		{rooms.ParticipantLeft{ID: "p3"}, `{"type":"participant-left","participant":"p3"}`},
		{rooms.TrackPublished{Track: rooms.TrackInfo{ID: "t2", Participant: "p1", Kind: "audio", Mid: "1"}},
			`{"type":"track-published","track":{"id":"t2","participant":"p1","kind":"audio","layers":[],"muted":false,"mid":"1"}}`},
		{rooms.TrackPublished{Track: track}, `{"type":"track-published","track":{"id":"t1","participant":"p1","kind":"video","layers":["q","f"],"muted":false}}`},
		{rooms.TrackUnpublished{ID: "t2"}, `{"type":"track-unpublished","track":"t2"}`},
		{rooms.TrackMuted{ID: "t1", Muted: true}, `{"type":"track-muted","track":"t1","muted":true}`},
		{rooms.Speakers{IDs: []string{"p1", "p2"}}, `{"type":"speakers","participants":["p1","p2"]}`},
		{rooms.Recording{On: true}, `{"type":"recording","recording":true}`},
		{rooms.Recording{}, `{"type":"recording","recording":false}`},
		{rooms.Joined{Self: rooms.ParticipantInfo{ID: "p2", Name: "B"}, Recording: true},
			`{"type":"joined","id":"7","participant":{"id":"p2","name":"B"},"participants":[],"iceServers":[{"urls":["stun:s"]}],"recording":true}`},
		{rooms.Offer{SDP: "v=0"}, `{"type":"offer","sdp":"v=0"}`},
		{rooms.LayersWanted{Track: "t1", RIDs: []string{"q"}}, `{"type":"layers","track":"t1","active":["q"]}`},
		{rooms.Candidate{}, `{"type":"candidate","candidate":null}`},
		{rooms.TrackUpdated{Track: rooms.TrackInfo{ID: "t1", Participant: "p1", Kind: "video", Codec: "video/H264"}},
			`{"type":"track-updated","track":{"id":"t1","participant":"p1","kind":"video","layers":[],"muted":false,"codec":"video/H264"}}`},
		{rooms.TrackUnsupported{ID: "t1", Codec: "video/AV1"},
			`{"type":"track-unsupported","track":"t1","codec":"video/AV1","message":"the track is sent as video/AV1, which this client does not decode, and no codec reaches every subscriber"}`},
		{rooms.TokenExpiring{Expires: time.Unix(1767225600, 0)}, `{"type":"token-expiring","expires":1767225600}`},
		{outgoing{id: "9", reply: protocol.Refreshed{Expires: 1767229200}}, `{"type":"refreshed","id":"9","expires":1767229200}`},
		{outgoing{id: "5", reply: protocol.Answer{SDP: "v=0"}}, `{"type":"answer","id":"5","sdp":"v=0"}`},
		{outgoing{id: "5", reply: protocol.Error{Code: CodeRoomFull, Message: "full"}}, `{"type":"error","id":"5","code":"room-full","message":"full"}`},
		{outgoing{reply: protocol.Leave{}}, `{"type":"leave"}`},
	}
	rendered := map[string]bool{}
	for _, tc := range tests {
		o, ok := tc.in.(outgoing)
		if !ok {
			o = outgoing{event: tc.in.(rooms.Event)}
		}
		got, err := s.frame(o)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != tc.want {
			t.Errorf("render(%T)\n got %s\nwant %s", tc.in, got, tc.want)
		}
		if _, m, err := protocol.Decode(got, protocol.ServerMessages); err == nil {
			rendered[m.Type()] = true
		}
	}
	for typ := range protocol.ServerMessages {
		if !rendered[typ] {
			t.Errorf("no test renders a %q message", typ)
		}
	}
}

// TestDecodeEveryClientMessage: every client message, as the Go client or
// a page encodes it, is read by the server as what was sent, id included.
func TestDecodeEveryClientMessage(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range protocoltest.Samples() {
		if protocol.ClientMessages[m.Type()] == nil {
			continue
		}
		seen[m.Type()] = true
		frame, err := protocol.Encode("3", m)
		if err != nil {
			t.Fatal(err)
		}
		req, err := decode(frame)
		if err != nil {
			t.Errorf("decode(%s): %v", frame, err)
			continue
		}
		if req.id != "3" || !reflect.DeepEqual(req.msg, m) {
			t.Errorf("decode(%s) = %q %#v, want %#v", frame, req.id, req.msg, m)
		}
	}
	for typ := range protocol.ClientMessages {
		if !seen[typ] {
			t.Errorf("no sample of client message %q", typ)
		}
	}
}
