package signaling

import (
	"fmt"
	"strings"

	"github.com/pion/sdp/v3"
)

// Trickle ICE fragments (RFC 8840), as WHIP's PATCH carries them: ICE
// credentials, and candidates under the mid of their media section.

// maxFragCandidates bounds the candidates one fragment may add.
const maxFragCandidates = 64

type fragCandidate struct {
	mid  string
	line string // "candidate:..."
}

type sdpFrag struct {
	ufrag, pwd string
	cands      []fragCandidate
}

// parseFrag reads a fragment. Lines it does not use (m=, end-of-candidates,
// ice-options) are allowed; a candidate outside a media section with a mid
// is not.
func parseFrag(body string) (sdpFrag, error) {
	var f sdpFrag
	mid, inMedia := "", false
	for i, raw := range strings.Split(body, "\n") {
		line := strings.TrimRight(raw, "\r")
		if line == "" {
			continue
		}
		switch {
		case strings.HasPrefix(line, "m="):
			mid, inMedia = "", true
		case strings.HasPrefix(line, "a=mid:"):
			mid = strings.TrimPrefix(line, "a=mid:")
		case strings.HasPrefix(line, "a=ice-ufrag:"):
			f.ufrag = strings.TrimPrefix(line, "a=ice-ufrag:")
		case strings.HasPrefix(line, "a=ice-pwd:"):
			f.pwd = strings.TrimPrefix(line, "a=ice-pwd:")
		case strings.HasPrefix(line, "a=candidate:"):
			if !inMedia || mid == "" {
				return sdpFrag{}, badRequest("line %d: a candidate outside a media section with a mid", i+1)
			}
			if len(f.cands) == maxFragCandidates {
				return sdpFrag{}, badRequest("more than %d candidates", maxFragCandidates)
			}
			f.cands = append(f.cands, fragCandidate{mid: mid, line: strings.TrimPrefix(line, "a=")})
		case len(line) < 2 || line[1] != '=':
			return sdpFrag{}, badRequest("line %d is not an SDP line", i+1)
		}
	}
	if f.pwd != "" && f.ufrag == "" {
		return sdpFrag{}, badRequest("ice-pwd without ice-ufrag")
	}
	return f, nil
}

// iceUfrag is the first ice-ufrag of a description.
func iceUfrag(desc string) string {
	for _, line := range strings.Split(desc, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}

// restartOffer is the encoder's description with the fragment's ICE
// credentials and without its old candidates: offered again, it restarts
// ICE.
func restartOffer(current string, f sdpFrag) (string, error) {
	if current == "" {
		return "", badRequest("no session to restart")
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(current); err != nil {
		return "", fmt.Errorf("the session's description: %w", err)
	}
	rewrite := func(attrs []sdp.Attribute) []sdp.Attribute {
		out := attrs[:0]
		for _, a := range attrs {
			switch a.Key {
			case "candidate", "end-of-candidates":
				continue
			case "ice-ufrag":
				a.Value = f.ufrag
			case "ice-pwd":
				a.Value = f.pwd
			}
			out = append(out, a)
		}
		return out
	}
	d.Attributes = rewrite(d.Attributes)
	for _, m := range d.MediaDescriptions {
		m.Attributes = rewrite(m.Attributes)
	}
	d.Origin.SessionVersion++
	b, err := d.Marshal()
	if err != nil {
		return "", fmt.Errorf("the session's description: %w", err)
	}
	return string(b), nil
}

// answerFrag is the fragment answering an ICE restart: the server's new
// credentials, and its candidates under the first media section.
func answerFrag(answer string, cands []string) (string, error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(answer); err != nil {
		return "", fmt.Errorf("answer: %w", err)
	}
	if len(d.MediaDescriptions) == 0 {
		return "", fmt.Errorf("answer without media")
	}
	attr := func(key string) string {
		if v, ok := d.Attribute(key); ok {
			return v
		}
		for _, m := range d.MediaDescriptions {
			if v, ok := m.Attribute(key); ok {
				return v
			}
		}
		return ""
	}
	m := d.MediaDescriptions[0]
	mid, _ := m.Attribute("mid")
	var b strings.Builder
	fmt.Fprintf(&b, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\n", attr("ice-ufrag"), attr("ice-pwd"))
	fmt.Fprintf(&b, "m=%s 9 %s %s\r\na=mid:%s\r\n", m.MediaName.Media, strings.Join(m.MediaName.Protos, "/"), strings.Join(m.MediaName.Formats, " "), mid)
	for _, c := range cands {
		fmt.Fprintf(&b, "a=%s\r\n", c)
	}
	b.WriteString("a=end-of-candidates\r\n")
	return b.String(), nil
}
