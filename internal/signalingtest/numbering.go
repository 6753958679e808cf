package signalingtest

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// Numbered is a Received whose every packet is also checked against what
// the client negotiated for the track's m-line: its payload type must be
// one the answer kept there, and each of its header extension ids one of
// the m-line's negotiated extmaps. Browsers number payload types and
// extensions differently; the server must send each subscriber its own
// numbers, whatever the publisher's.
type Numbered struct {
	*Received
	// Violations counts the packets that broke the rule.
	Violations atomic.Int64

	pc *webrtc.PeerConnection
	tr *webrtc.TrackRemote

	mu      sync.Mutex
	mid     string
	neg     *negotiation // nil: the mid is in no current description
	first   []string     // descriptions of the first violations
	seenPT  map[uint8]int
	seenExt map[uint8]int
}

// maxViolationNotes is how many violations a Numbered describes.
const maxViolationNotes = 5

// negotiation is what both current descriptions agree on for one m-line.
type negotiation struct {
	pts  map[uint8]string // payload type -> "name/rate[/channels] fmtp"
	exts map[uint8]string // extension id -> URI
}

// ReceiveNumbered reads tr as Receive does, checking every packet's
// numbering against pc's current descriptions (pc: the PeerConnection tr
// arrived on).
func ReceiveNumbered(pc *webrtc.PeerConnection, tr *webrtc.TrackRemote) *Numbered {
	n := &Numbered{pc: pc, tr: tr, seenPT: map[uint8]int{}, seenExt: map[uint8]int{}}
	n.Received = receive(tr, n.check)
	return n
}

// check runs on the reading goroutine for every packet. The negotiation is
// read again from the descriptions when a packet does not fit the one
// cached (the m-line may have been renegotiated since).
func (n *Numbered) check(p *rtp.Packet) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.seenPT[p.PayloadType]++
	for _, id := range p.GetExtensionIDs() {
		n.seenExt[id]++
	}
	problem := n.problem(p)
	if problem != "" {
		n.refresh()
		problem = n.problem(p)
	}
	if problem == "" {
		return
	}
	n.Violations.Add(1)
	if len(n.first) < maxViolationNotes {
		n.first = append(n.first, fmt.Sprintf("seq %d ssrc %d: %s", p.SequenceNumber, p.SSRC, problem))
	}
}

// problem says what is wrong with p's numbering, "" if nothing.
func (n *Numbered) problem(p *rtp.Packet) string {
	if n.neg == nil {
		return fmt.Sprintf("payload type %d on mid %q, which no current description negotiates", p.PayloadType, n.mid)
	}
	var out []string
	if _, ok := n.neg.pts[p.PayloadType]; !ok {
		out = append(out, fmt.Sprintf("payload type %d not negotiated on mid %s (negotiated: %s)", p.PayloadType, n.mid, describePTs(n.neg.pts)))
	}
	if p.Extension {
		switch p.ExtensionProfile {
		case 0xBEDE, 0x1000:
			for _, id := range p.GetExtensionIDs() {
				if _, ok := n.neg.exts[id]; !ok {
					out = append(out, fmt.Sprintf("header extension id %d not negotiated on mid %s (negotiated: %s)", id, n.mid, describeExts(n.neg.exts)))
				}
			}
		default:
			out = append(out, fmt.Sprintf("header extension profile %#04x (not RFC 8285)", p.ExtensionProfile))
		}
	}
	return strings.Join(out, "; ")
}

// refresh reads the m-line's negotiation from pc's current descriptions.
func (n *Numbered) refresh() {
	if n.mid == "" {
		n.mid = midOf(n.pc, n.tr)
	}
	n.neg = nil
	if n.mid == "" {
		return
	}
	local, remote := n.pc.CurrentLocalDescription(), n.pc.CurrentRemoteDescription()
	if local == nil || remote == nil {
		return
	}
	l, r := section(local.SDP, n.mid), section(remote.SDP, n.mid)
	if l == nil || r == nil {
		return
	}
	// The answer keeps a subset of the offer: what both say is what was
	// negotiated, whichever side offered.
	lp, rp := payloadTypes(l), payloadTypes(r)
	neg := &negotiation{pts: map[uint8]string{}, exts: map[uint8]string{}}
	for pt, c := range lp {
		if _, ok := rp[pt]; ok {
			neg.pts[pt] = c
		}
	}
	le, re := extmapIDs(l), extmapIDs(r)
	for id, uri := range le {
		if re[id] == uri {
			neg.exts[id] = uri
		}
	}
	n.neg = neg
}

// midOf finds the mid of the transceiver tr arrived on.
func midOf(pc *webrtc.PeerConnection, tr *webrtc.TrackRemote) string {
	for _, t := range pc.GetTransceivers() {
		r := t.Receiver()
		if r == nil {
			continue
		}
		for _, rt := range r.Tracks() {
			if rt == tr {
				return t.Mid()
			}
		}
	}
	return ""
}

// Mid is the mid of the track's m-line ("" until a packet arrived).
func (n *Numbered) Mid() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.mid
}

// FirstViolations describes the first few violations.
func (n *Numbered) FirstViolations() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.first)
}

// Seen summarizes the payload types and header extension ids received,
// with their counts, and the ids the m-line negotiated, for test logs.
func (n *Numbered) Seen() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.neg == nil && n.mid == "" {
		n.refresh()
	}
	count := func(m map[uint8]int) string {
		keys := slices.Sorted(maps.Keys(m))
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%d×%d", k, m[k])
		}
		return strings.Join(parts, " ")
	}
	neg := "nothing"
	if n.neg != nil {
		neg = fmt.Sprintf("pt %v ext ids %v", slices.Sorted(maps.Keys(n.neg.pts)), slices.Sorted(maps.Keys(n.neg.exts)))
	}
	return fmt.Sprintf("mid %s: received pt [%s] ext ids [%s]; negotiated %s", n.mid, count(n.seenPT), count(n.seenExt), neg)
}

// ReceivedCodecs lists, for each payload type received, the codec the
// m-line negotiated for it, "name/rate[/channels] fmtp", or "pt N: not
// negotiated".
func (n *Numbered) ReceivedCodecs() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []string
	for _, pt := range slices.Sorted(maps.Keys(n.seenPT)) {
		var c string
		ok := false
		if n.neg != nil {
			c, ok = n.neg.pts[pt]
		}
		if ok {
			out = append(out, strings.TrimSpace(c))
		} else {
			out = append(out, fmt.Sprintf("pt %d: not negotiated", pt))
		}
	}
	return out
}

func describePTs(m map[uint8]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", k, strings.TrimSpace(m[k]))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func describeExts(m map[uint8]string) string {
	keys := slices.Sorted(maps.Keys(m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d %s", k, m[k])
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// section returns the m-section of raw with the given mid, nil if none. It
// parses the text: pion caches a parse into its SessionDescription, which
// its own goroutines share.
func section(raw, mid string) *sdp.MediaDescription {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(raw); err != nil {
		return nil
	}
	for _, md := range sd.MediaDescriptions {
		if m, _ := md.Attribute(sdp.AttrKeyMID); m == mid {
			return md
		}
	}
	return nil
}

// payloadTypes lists the payload types of md's m= line, each with its
// codec as "name/rate[/channels] fmtp".
func payloadTypes(md *sdp.MediaDescription) map[uint8]string {
	out := map[uint8]string{}
	for _, f := range md.MediaName.Formats {
		if pt, err := strconv.ParseUint(f, 10, 7); err == nil {
			out[uint8(pt)] = ""
		}
	}
	fmtp := map[uint8]string{}
	for _, a := range md.Attributes {
		if a.Key != "rtpmap" && a.Key != "fmtp" {
			continue
		}
		ptStr, rest, _ := strings.Cut(a.Value, " ")
		pt, err := strconv.ParseUint(ptStr, 10, 7)
		if err != nil {
			continue
		}
		if _, ok := out[uint8(pt)]; !ok {
			continue
		}
		if a.Key == "rtpmap" {
			out[uint8(pt)] = rest
		} else {
			fmtp[uint8(pt)] = rest
		}
	}
	for pt, f := range fmtp {
		out[pt] += " " + f
	}
	return out
}

// extmapIDs lists md's extmaps: id -> URI.
func extmapIDs(md *sdp.MediaDescription) map[uint8]string {
	out := map[uint8]string{}
	for _, a := range md.Attributes {
		if a.Key != "extmap" {
			continue
		}
		idDir, rest, _ := strings.Cut(a.Value, " ")
		idStr, _, _ := strings.Cut(idDir, "/")
		uri, _, _ := strings.Cut(rest, " ")
		if id, err := strconv.ParseUint(idStr, 10, 8); err == nil {
			out[uint8(id)] = uri
		}
	}
	return out
}

// BundleCollisions checks pc's current descriptions as a browser checks a
// description it is given: within a BUNDLE group, a payload type must name
// the same codec (name, clock rate, channels and format parameters) in
// every m-line that uses it, and an extension id the same URI (Chromium
// refuses such a description: "BUNDLE group contains a codec collision for
// payload_type=N" / "for header extension id=N"). It describes each
// collision.
func BundleCollisions(pc *webrtc.PeerConnection) []string {
	var out []string
	for _, d := range []struct {
		name string
		desc *webrtc.SessionDescription
	}{{"local", pc.CurrentLocalDescription()}, {"remote", pc.CurrentRemoteDescription()}} {
		if d.desc != nil {
			for _, c := range bundleCollisions(d.desc.SDP) {
				out = append(out, d.name+" description: "+c)
			}
		}
	}
	return out
}

func bundleCollisions(raw string) []string {
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(raw); err != nil {
		return []string{"does not parse: " + err.Error()}
	}
	var groups [][]string
	for _, a := range sd.Attributes {
		if a.Key == "group" && strings.HasPrefix(a.Value, "BUNDLE ") {
			groups = append(groups, strings.Fields(a.Value)[1:])
		}
	}
	// meanings lists what one number means across a group, with the mids
	// of each meaning, in order of appearance.
	type meaning struct {
		what string
		mids []string
	}
	add := func(ms []meaning, what, mid string, same func(a, b string) bool) []meaning {
		for i := range ms {
			if same(ms[i].what, what) {
				ms[i].mids = append(ms[i].mids, mid)
				return ms
			}
		}
		return append(ms, meaning{what, []string{mid}})
	}
	describe := func(ms []meaning) string {
		parts := make([]string, len(ms))
		for i, m := range ms {
			parts[i] = fmt.Sprintf("%q on mids %v", m.what, m.mids)
		}
		return strings.Join(parts, ", ")
	}
	var out []string
	for _, g := range groups {
		pts, exts := map[uint8][]meaning{}, map[uint8][]meaning{}
		for _, md := range sd.MediaDescriptions {
			mid, _ := md.Attribute(sdp.AttrKeyMID)
			if !slices.Contains(g, mid) || md.MediaName.Media != "audio" && md.MediaName.Media != "video" {
				continue
			}
			if _, bundleOnly := md.Attribute("bundle-only"); md.MediaName.Port.Value == 0 && !bundleOnly {
				continue // rejected
			}
			for pt, codec := range payloadTypes(md) {
				pts[pt] = add(pts[pt], md.MediaName.Media+" "+codec, mid, sameCodec)
			}
			for id, uri := range extmapIDs(md) {
				exts[id] = add(exts[id], uri, mid, func(a, b string) bool { return a == b })
			}
		}
		for pt, ms := range pts {
			if len(ms) > 1 {
				note := ""
				if !slices.ContainsFunc(ms[1:], func(m meaning) bool { return codecName(m.what) != codecName(ms[0].what) }) {
					note = " (one codec, other format parameters)"
				}
				out = append(out, fmt.Sprintf("payload type %d is %s%s", pt, describe(ms), note))
			}
		}
		for id, ms := range exts {
			if len(ms) > 1 {
				out = append(out, fmt.Sprintf("header extension id %d is %s", id, describe(ms)))
			}
		}
	}
	slices.Sort(out)
	return out
}

// sameCodec compares two "kind name/rate[/channels] fmtp" descriptions:
// names case-insensitively, format parameters in any order.
func sameCodec(a, b string) bool {
	return codecName(a) == codecName(b) && maps.Equal(codecParams(a), codecParams(b))
}

// codecName is the "kind name/rate[/channels]" of a codec description, in
// lower case.
func codecName(s string) string {
	kind, rest, _ := strings.Cut(s, " ")
	name, _, _ := strings.Cut(rest, " ")
	return kind + " " + strings.ToLower(name)
}

// codecParams are the format parameters of a codec description.
func codecParams(s string) map[string]string {
	_, rest, _ := strings.Cut(s, " ")
	_, fmtp, _ := strings.Cut(rest, " ")
	params := map[string]string{}
	for _, kv := range strings.Split(fmtp, ";") {
		if k, v, _ := strings.Cut(strings.TrimSpace(kv), "="); k != "" {
			params[strings.ToLower(k)] = v
		}
	}
	return params
}
