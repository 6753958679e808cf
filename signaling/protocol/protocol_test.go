package protocol

import (
	"encoding/json"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

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
// client), and, unless it elides part of itself ({...} or [...]), decodes
// as that message with every field the example shows: encoded again, the
// message holds each of them with the same value (values the encoder
// omits as empty excepted).
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
	text = text[start:]
	if open := strings.Index(text, "\n```\n"); open >= 0 {
		text = text[open+5:]
		if end := strings.Index(text, "\n```"); end >= 0 {
			text = text[:end+1]
		}
	}
	// A message starts a line with who sends it and an arrow, and may go
	// on over lines indented under it.
	head := regexp.MustCompile(`^\s*\w+\s+(→|←)\s+(\{.*)$`)
	type example struct{ dir, json string }
	var examples []example
	for _, l := range strings.Split(text, "\n") {
		if m := head.FindStringSubmatch(l); m != nil {
			examples = append(examples, example{m[1], m[2]})
		} else if strings.HasPrefix(l, "         ") && len(examples) > 0 {
			examples[len(examples)-1].json += strings.TrimSpace(l)
		}
	}
	decoded := 0
	for _, ex := range examples {
		known := ClientMessages
		if ex.dir == "←" {
			known = ServerMessages
		}
		var typ struct{ Type string }
		if json.Unmarshal([]byte(ex.json), &typ) != nil {
			typ.Type = regexp.MustCompile(`^\{"type":"([a-z-]+)"`).FindStringSubmatch(ex.json + `{"type":""`)[1]
		}
		if known[typ.Type] == nil {
			t.Errorf("the example has %s %q, which is no message of that direction", ex.dir, typ.Type)
			continue
		}
		if strings.Contains(ex.json, "{...}") || strings.Contains(ex.json, "[...") {
			continue // elided
		}
		var want map[string]any
		if err := json.Unmarshal([]byte(ex.json), &want); err != nil {
			t.Errorf("example %s is not JSON: %v", ex.json, err)
			continue
		}
		id, m, err := Decode([]byte(ex.json), known)
		if err != nil {
			t.Errorf("example %s: %v", ex.json, err)
			continue
		}
		frame, err := Encode(id, m)
		if err != nil {
			t.Fatal(err)
		}
		var got map[string]any
		if err := json.Unmarshal(frame, &got); err != nil {
			t.Fatal(err)
		}
		if path, ok := holds(got, want, typ.Type); !ok {
			t.Errorf("example %s: %s is not what the message type reads (encoded again: %s)", ex.json, path, frame)
		}
		decoded++
	}
	if len(examples) < 10 || decoded < len(examples)/2 {
		t.Fatalf("read %d messages of the example exchange, %d whole", len(examples), decoded)
	}
}

// holds reports whether got, a decoded JSON value, holds every value of
// want, the example's, and if not, the path to the first that differs. A
// value absent from got is held when the example's is empty (omitted by
// the encoder) and not a top-level field the example names.
func holds(got, want any, path string) (string, bool) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return path, false
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				if empty(wv) {
					continue
				}
				return path + "." + k, false
			}
			if p, ok := holds(gv, wv, path+"."+k); !ok {
				return p, false
			}
		}
		return "", true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return path, false
		}
		for i := range w {
			if p, ok := holds(g[i], w[i], fmt.Sprintf("%s[%d]", path, i)); !ok {
				return p, false
			}
		}
		return "", true
	default:
		return path, reflect.DeepEqual(got, want)
	}
}

func empty(v any) bool {
	switch v := v.(type) {
	case nil:
		return true
	case bool:
		return !v
	case string:
		return v == ""
	case float64:
		return v == 0
	case []any:
		return len(v) == 0
	case map[string]any:
		return len(v) == 0
	}
	return false
}
