package protocol

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/pion/webrtc/v4"
)

// samples holds one message of every type, with every field set, as a
// sender would fill it.
func samples() []Message {
	yes := true
	mid, idx := "0", uint16(0)
	track := Track{ID: "t1", Participant: "p1", Kind: "video", Layers: []string{"q", "h"}, Muted: true, Codec: "video/VP8", Mid: "1"}
	part := Participant{ID: "p1", Name: "Ann", Tracks: []Track{track}}
	ice := []ICEServer{{URLs: []string{"turn:h:3478"}, Username: "u", Credential: "c"}}
	return []Message{
		&Join{Room: "r", Name: "Ann", Token: "a.b.c", AutoSubscribe: &yes, Codecs: []Codec{{MimeType: "video/VP8", SDPFmtpLine: "x=1"}}},
		&Offer{SDP: "v=0\r\n"},
		&Answer{SDP: "v=0\r\n"},
		&Candidate{Candidate: &webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 1 1.2.3.4 5 typ host", SDPMid: &mid, SDPMLineIndex: &idx}},
		&Subscribe{Tracks: []string{"t1", "t2"}},
		&Unsubscribe{Tracks: []string{"t1"}},
		&Layer{Track: "t1", RID: "q"},
		&Mute{Track: "t1", Muted: &yes},
		&Leave{},
		&Resume{Token: "tok"},
		&Refresh{Token: "a.b.c"},
		&Joined{Participant: ParticipantRef{ID: "p2", Name: "Bob"}, Participants: []Participant{part}, ICEServers: ice, ResumeToken: "rt"},
		&Resumed{Participant: part, Participants: []Participant{}, ICEServers: ice, ResumeToken: "rt2"},
		&ParticipantJoined{Participant: part},
		&ParticipantLeft{Participant: "p1"},
		&TrackPublished{Track: track},
		&TrackUpdated{Track: track},
		&TrackUnpublished{Track: "t1"},
		&TrackUnsupported{Track: "t1", Codec: "video/AV1", Message: "no"},
		&TrackMuted{Track: "t1", Muted: true},
		&Speakers{Participants: []string{"p1", "p2"}},
		&Layers{Track: "t1", Active: []string{"q"}},
		&TokenExpiring{Expires: 1767225600},
		&Refreshed{Expires: 1767229200},
		&Error{Code: CodeRoomFull, Message: "full"},
	}
}

// TestRoundTrip: every message a client or the server sends decodes, on
// the other side, to what was sent, with its id; and every message type
// has a sample here.
func TestRoundTrip(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range samples() {
		seen[m.Type()] = true
		for _, side := range []struct {
			name  string
			known map[string]func() Message
		}{{"client", ClientMessages}, {"server", ServerMessages}} {
			if side.known[m.Type()] == nil {
				continue
			}
			for _, id := range []string{"", "42"} {
				frame, err := Encode(id, m)
				if err != nil {
					t.Fatalf("encode %s: %v", m.Type(), err)
				}
				gotID, got, err := Decode(frame, side.known)
				if err != nil {
					t.Fatalf("decode %s (%s): %v", frame, side.name, err)
				}
				if gotID != id || !reflect.DeepEqual(got, m) {
					t.Errorf("%s: round trip of %s\n got %q %#v\nwant %q %#v", side.name, frame, gotID, got, id, m)
				}
				if err := Validate(got); err != nil && side.name == "client" {
					t.Errorf("a valid %s does not validate: %v", m.Type(), err)
				}
			}
		}
	}
	for typ := range ClientMessages {
		if !seen[typ] {
			t.Errorf("no sample of client message %q", typ)
		}
	}
	for typ := range ServerMessages {
		if !seen[typ] {
			t.Errorf("no sample of server message %q", typ)
		}
	}
}

// TestEncode: the frame's shape, type first, then the id, then the fields.
func TestEncode(t *testing.T) {
	tests := []struct {
		id   string
		m    Message
		want string
	}{
		{"", Leave{}, `{"type":"leave"}`},
		{"1", Leave{}, `{"type":"leave","id":"1"}`},
		{"a\"b", Offer{SDP: "v=0"}, `{"type":"offer","id":"a\"b","sdp":"v=0"}`},
		{"", Candidate{}, `{"type":"candidate","candidate":null}`},
		{"", Join{Room: "r", Name: "n"}, `{"type":"join","room":"r","name":"n"}`},
	}
	for _, tc := range tests {
		got, err := Encode(tc.id, tc.m)
		if err != nil || string(got) != tc.want {
			t.Errorf("Encode(%q, %#v) = %s, %v; want %s", tc.id, tc.m, got, err, tc.want)
		}
	}
	// A writer handed nothing (a bug) gets an error to log, not a panic
	// and not a frame.
	if got, err := Encode("1", nil); err == nil {
		t.Errorf("Encode of no message = %s, want an error", got)
	}
}

// docTables reads docs/protocol.md's table of messages under heading: for
// each message type, the field names its "fields" cell names.
func docTables(t *testing.T, heading string) map[string][]string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "\n## "+heading+"\n")
	if start < 0 {
		t.Fatalf("docs/protocol.md has no %q section", heading)
	}
	text = text[start+1:]
	if end := strings.Index(text[3:], "\n## "); end >= 0 {
		text = text[:end+3]
	}
	code := regexp.MustCompile("`([^`]*)`")
	ident := regexp.MustCompile(`^[a-z][a-zA-Z]*\??$`)
	out := map[string][]string{}
	for _, line := range strings.Split(text, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || !strings.Contains(cells[1], "`") {
			continue
		}
		var fields []string
		for _, m := range code.FindAllStringSubmatch(cells[2], -1) {
			if ident.MatchString(m[1]) && !slices.Contains([]string{"true", "false", "null"}, m[1]) {
				fields = append(fields, strings.TrimSuffix(m[1], "?"))
			}
		}
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			out[m[1]] = fields
		}
	}
	return out
}

// jsonFields lists the JSON names of a message's fields.
func jsonFields(m Message) []string {
	var out []string
	typ := reflect.TypeOf(m)
	if typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	for i := range typ.NumField() {
		out = append(out, strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
	}
	sort.Strings(out)
	return out
}

// TestDocumented: docs/protocol.md lists every message type of each
// direction, and no other, with the fields the types have.
func TestDocumented(t *testing.T) {
	for _, dir := range []struct {
		heading string
		known   map[string]func() Message
	}{{"Client to server", ClientMessages}, {"Server to client", ServerMessages}} {
		documented := docTables(t, dir.heading)
		for typ, newMsg := range dir.known {
			fields, ok := documented[typ]
			if !ok {
				t.Errorf("%s: message %q is not documented", dir.heading, typ)
				continue
			}
			want := jsonFields(newMsg())
			for _, f := range want {
				if !slices.Contains(fields, f) {
					t.Errorf("%s: %q: field %q is not documented (the doc names %v)", dir.heading, typ, f, fields)
				}
			}
			for _, f := range fields {
				if f != "id" && !slices.Contains(want, f) {
					t.Errorf("%s: %q: the doc names field %q, which the message does not have (%v)", dir.heading, typ, f, want)
				}
			}
		}
		for typ := range documented {
			if dir.known[typ] == nil {
				t.Errorf("%s: the doc lists %q, which is no message", dir.heading, typ)
			}
		}
	}
}

// TestValidate: what a client message must hold.
func TestValidate(t *testing.T) {
	no := false
	tests := []struct {
		m    Message
		want string // substring of the error; "" for valid
	}{
		{&Join{Room: "r", Name: "n"}, ""},
		{&Join{Name: "n"}, "room is required"},
		{&Join{Room: "r"}, "name is required"},
		{&Join{Room: "r", Name: "n", Codecs: []Codec{{MimeType: "text/plain"}}}, "not audio/"},
		{&Join{Room: "r", Name: "n", Token: strings.Repeat("x", MaxTokenBytes+1)}, "token is too long"},
		{&Offer{}, "sdp is required"},
		{&Answer{SDP: strings.Repeat("a", MaxSDPBytes+1)}, "larger than"},
		{&Subscribe{}, "at least one"},
		{&Unsubscribe{Tracks: make([]string, MaxTracksPerMsg+1)}, "more than"},
		{&Subscribe{Tracks: []string{""}}, "track ids must be"},
		{&Layer{Track: "t"}, "rid is required"},
		{&Mute{Track: "t"}, "muted is required"},
		{&Mute{Track: "t", Muted: &no}, ""},
		{&Resume{}, "token must be"},
		{&Refresh{Token: strings.Repeat("x", MaxTokenBytes+1)}, "token must be"},
		{&Leave{}, ""},
		{&Candidate{}, ""},
	}
	for _, tc := range tests {
		err := Validate(tc.m)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("Validate(%#v) = %v, want nil", tc.m, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("Validate(%#v) = %v, want an error with %q", tc.m, err, tc.want)
		}
	}
}

// TestDocumentedExample: every message of docs/protocol.md's example
// exchange is a message of its direction (→ client to server, ← server to
// client). The example elides values ("..."), so only its types are read.
func TestDocumentedExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	start := strings.Index(text, "\n## Example exchange\n")
	if start < 0 {
		t.Fatal("docs/protocol.md has no example exchange")
	}
	line := regexp.MustCompile(`^\s*\w+\s+(→|←)\s+\{"type":"([a-z-]+)"`)
	n := 0
	for _, l := range strings.Split(text[start:], "\n") {
		m := line.FindStringSubmatch(l)
		if m == nil {
			continue
		}
		n++
		known := ClientMessages
		if m[1] == "←" {
			known = ServerMessages
		}
		if known[m[2]] == nil {
			t.Errorf("the example has %s %q, which is no message of that direction", m[1], m[2])
		}
	}
	if n < 10 {
		t.Fatalf("read %d messages of the example exchange", n)
	}
}
