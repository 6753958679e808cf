package signaling_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/signaling/client"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

// minPackets is how many packets every forwarded track must deliver,
// correctly numbered, for a numbering test to pass.
const minPackets = 100

// member is one participant of a numbering test.
type member struct {
	name      string
	numbering client.Numbering
	// video is what the member publishes with its audio: "video" (VP8), a
	// mime type, or "" for nothing.
	video string
	// videoCodecs, when set, are the only video codecs its client supports.
	videoCodecs []string
	// sendOnly makes its client offer, where it publishes, only the codec
	// it publishes (client.Options.OnlyTrackCodecs).
	sendOnly bool
	// declare: its join says what it decodes (Opus and videoCodecs).
	declare bool
	late    bool // joins once the others' media flows

	c      *client.Client
	pubs   []*st.Publisher
	recv   map[string]*st.Numbered // by track id
	tracks chan *st.Numbered
}

// join connects m; manual turns auto-subscription off.
func (m *member) join(ctx context.Context, t *testing.T, srv *st.Server, room string, manual bool) {
	t.Helper()
	api, err := client.NewAPIWith(client.APIOptions{Numbering: m.numbering, VideoCodecs: m.videoCodecs})
	if err != nil {
		t.Fatal(err)
	}
	opt := client.Options{Name: m.name, API: api, OnlyTrackCodecs: m.sendOnly}
	if m.declare {
		opt.Codecs = []webrtc.RTPCodecCapability{{MimeType: webrtc.MimeTypeOpus}}
		for _, v := range m.videoCodecs {
			c := webrtc.RTPCodecCapability{MimeType: v}
			if v == webrtc.MimeTypeH264 {
				c.SDPFmtpLine = "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
			}
			opt.Codecs = append(opt.Codecs, c)
		}
	}
	if manual {
		off := false
		opt.AutoSubscribe = &off
	}
	m.c = srv.Join(ctx, room, opt)
	m.recv = map[string]*st.Numbered{}
	m.tracks = make(chan *st.Numbered, 64)
	// Each remote track is read from its first packet on; a track that
	// never delivers one must not hold up the others.
	go func() {
		for {
			select {
			case tr := <-m.c.Tracks():
				go func() { m.tracks <- st.ReceiveNumbered(m.c.PC(), tr) }()
			case <-ctx.Done():
				return
			}
		}
	}()
}

// publish publishes m's video and audio, if it publishes.
func (m *member) publish(ctx context.Context, t *testing.T) {
	t.Helper()
	if m.video == "" {
		return
	}
	m.pubs = append(m.pubs, st.Publish(ctx, t, m.c, m.video), st.Publish(ctx, t, m.c, "audio"))
}

// await collects m's remote tracks until every one of ids has delivered a
// packet, or d passed; it returns the ids still missing.
func (m *member) await(ids []string, d time.Duration) []string {
	timeout := time.After(d)
	for {
		var missing []string
		for _, id := range ids {
			if m.recv[id] == nil {
				missing = append(missing, id)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case n := <-m.tracks:
			m.recv[n.Track.ID()] = n
		case <-timeout:
			return missing
		}
	}
}

// sectionOf describes the m-line of mid in desc: its payload types, rtpmaps,
// fmtps and extmaps.
func sectionOf(desc *webrtc.SessionDescription, mid string) string {
	if desc == nil {
		return "(no description)"
	}
	var sd sdp.SessionDescription
	if err := sd.UnmarshalString(desc.SDP); err != nil {
		return err.Error()
	}
	for _, md := range sd.MediaDescriptions {
		if m, _ := md.Attribute(sdp.AttrKeyMID); m != mid {
			continue
		}
		parts := []string{"m=" + md.MediaName.Media + " " + strings.Join(md.MediaName.Formats, " ")}
		for _, a := range md.Attributes {
			switch a.Key {
			case "rtpmap", "fmtp":
				parts = append(parts, a.Key+":"+a.Value)
			case "extmap":
				// the URI's last word is enough to tell which
				id, uri, _ := strings.Cut(a.Value, " ")
				parts = append(parts, "extmap:"+id+" "+uri[strings.LastIndexAny(uri, "/:#")+1:])
			}
		}
		return strings.Join(parts, " | ")
	}
	return "(no m-line " + mid + ")"
}

// codecName is the encoding name of a mime type ("video/H264" -> "h264").
func codecName(mime string) string {
	_, name, _ := strings.Cut(strings.ToLower(mime), "/")
	return name
}

// checkDelivery checks that every member receives every other member's
// tracks: at least minPackets each, intact, video from a keyframe, each in
// the codec the publisher sends and with the subscriber's own numbering;
// and that no description a client holds has a BUNDLE collision. It
// reports failures with report (t.Errorf, or a collector).
func checkDelivery(t *testing.T, members []*member, report func(format string, args ...any)) {
	type pub struct {
		m *member
		p *st.Publisher
	}
	pubs := map[string]pub{}
	for _, m := range members {
		for _, p := range m.pubs {
			pubs[p.TrackID] = pub{m, p}
			t.Logf("%s (%s) publishes %s %s on mid %s: %s", m.name, m.numbering, p.Kind, p.TrackID,
				p.Transceiver.Mid(), sectionOf(m.c.PC().CurrentLocalDescription(), p.Transceiver.Mid()))
		}
	}
	for _, m := range members {
		var want []string
		for id, p := range pubs {
			if p.m != m {
				want = append(want, id)
			}
		}
		slices.Sort(want)
		if missing := m.await(want, 15*time.Second); len(missing) > 0 {
			report("%s (%s) did not receive %v (of %d tracks)", m.name, m.numbering, missing, len(want))
		}
		deadline := time.Now().Add(10 * time.Second)
		for _, id := range want {
			r := m.recv[id]
			if r == nil {
				continue
			}
			p := pubs[id]
			for r.Packets.Load() < minPackets && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			var problems []string
			problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
			if n := r.Packets.Load(); n < minPackets {
				problem("%d packets, want at least %d", n, minPackets)
			}
			if r.Track.StreamID() != p.m.c.Self.ID {
				problem("stream id %s, want the publisher's %s", r.Track.StreamID(), p.m.c.Self.ID)
			}
			if r.Source != p.p.Synth.Source {
				problem("carries source %d, want %d", r.Source, p.p.Synth.Source)
			}
			if p.p.Kind == "video" && !r.FirstKey.Load() {
				problem("did not start at a keyframe: %s", r.First)
			}
			if n := r.Corrupt.Load(); n > 0 {
				problem("%d corrupt packets", n)
			}
			if n := r.UnknownPT.Load(); n > 0 {
				problem("%d packets of a payload type the client's PeerConnection does not know", n)
			}
			if n := r.Violations.Load(); n > 0 {
				problem("%d packets numbered against the subscriber's negotiation; first: %s; subscriber's m-line: %s",
					n, strings.Join(r.FirstViolations(), "; "), sectionOf(m.c.PC().CurrentLocalDescription(), r.Mid()))
			}
			for _, c := range r.ReceivedCodecs() {
				if name, _, _ := strings.Cut(c, "/"); !strings.EqualFold(name, codecName(p.p.Synth.Codec())) {
					problem("received as %q", c)
				}
			}
			what := fmt.Sprintf("%s (%s) receiving %s's %s %s", m.name, m.numbering, p.m.name, p.p.Synth.Codec(), id)
			if len(problems) > 0 {
				report("%s: %s\n  %s", what, strings.Join(problems, "\n  "), r.Seen())
			} else if testing.Verbose() {
				t.Logf("%s: %s", what, r.Seen())
			}
		}
	}
	for _, m := range members {
		for _, c := range st.BundleCollisions(m.c.PC()) {
			report("%s (%s): %s", m.name, m.numbering, c)
		}
	}
}

// subscribeAll makes m subscribe to every track of the others it has not
// subscribed to yet.
func subscribeAll(ctx context.Context, t *testing.T, m *member, members []*member, done map[string]bool) {
	t.Helper()
	var ids []string
	for _, o := range members {
		if o == m || o.c == nil {
			continue
		}
		for _, p := range o.pubs {
			if !done[p.TrackID] {
				ids = append(ids, p.TrackID)
				done[p.TrackID] = true
			}
		}
	}
	if len(ids) == 0 {
		return
	}
	if err := m.c.Call(ctx, protocol.Subscribe{Tracks: ids}, 300*time.Millisecond); err != nil {
		t.Fatalf("%s subscribes to %v: %v", m.name, ids, err)
	}
}

// runRoom joins the members (the late ones once the others' media flows),
// has them publish and receive, and checks what every one receives.
func runRoom(t *testing.T, manual bool, members []*member, report func(format string, args ...any)) {
	ctx := testutil.Context(t)
	srv := st.NewServer(t, st.Options{})
	subscribed := map[*member]map[string]bool{}
	var present []*member
	for _, m := range members {
		if !m.late {
			m.join(ctx, t, srv, "numbering", manual)
			subscribed[m] = map[string]bool{}
			present = append(present, m)
		}
	}
	for _, m := range present {
		m.publish(ctx, t)
	}
	if manual {
		for _, m := range present {
			subscribeAll(ctx, t, m, present, subscribed[m])
		}
	}
	// The media of those present flows before anyone joins late.
	for _, m := range present {
		if !slices.ContainsFunc(members, func(m *member) bool { return m.late }) {
			break
		}
		var want []string
		for _, o := range present {
			if o != m {
				for _, p := range o.pubs {
					want = append(want, p.TrackID)
				}
			}
		}
		m.await(want, 15*time.Second)
	}
	for _, m := range members {
		if m.late {
			m.join(ctx, t, srv, "numbering", false)
			m.publish(ctx, t)
			present = append(present, m)
			if manual {
				for _, o := range present {
					if o != m && !o.late {
						subscribeAll(ctx, t, o, present, subscribed[o])
					}
				}
			}
		}
	}
	checkDelivery(t, present, report)
}

// TestNumberingMixedRoom: publishers numbering as Chromium and as Firefox,
// subscribers of both, one joining late. Every subscriber receives every
// other participant's audio and video intact, each packet with a payload
// type and header extension ids it negotiated for that m-line, and no
// client holds a description with a BUNDLE collision.
func TestNumberingMixedRoom(t *testing.T) {
	const (
		pion     = client.NumberingPion
		chromium = client.NumberingChromium
		firefox  = client.NumberingFirefox
	)
	for _, tc := range []struct {
		name string
		// manual: members join with auto-subscription off, publish, then
		// subscribe; so that each publisher's first offer, numbered its
		// own way, precedes any offer of the server.
		manual  bool
		members []*member
	}{
		{
			name: "auto-subscribe",
			members: []*member{
				{name: "chromium-pub", numbering: chromium, video: "video"},
				{name: "firefox-pub", numbering: firefox, video: "video"},
				{name: "chromium-sub", numbering: chromium},
				{name: "firefox-sub", numbering: firefox},
				{name: "firefox-late", numbering: firefox, video: "video", late: true},
			},
		},
		{
			name:   "publish before subscribing",
			manual: true,
			members: []*member{
				{name: "firefox-pub", numbering: firefox, video: "video"},
				{name: "chromium-pub", numbering: chromium, video: "video"},
				{name: "pion-pub", numbering: pion, video: "video"},
				{name: "firefox-sub", numbering: firefox},
				{name: "chromium-late", numbering: chromium, video: "video", late: true},
			},
		},
		{
			// Chromium's H264 is 109, Firefox's Opus; Firefox's H264 is 126.
			name:   "H264 publishers",
			manual: true,
			members: []*member{
				{name: "chromium-pub", numbering: chromium, video: webrtc.MimeTypeH264},
				{name: "firefox-pub", numbering: firefox, video: webrtc.MimeTypeVP8},
				{name: "firefox-sub", numbering: firefox},
				{name: "firefox-late", numbering: firefox, video: webrtc.MimeTypeH264, late: true},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			runRoom(t, tc.manual, tc.members, t.Errorf)
		})
	}
}

// TestMixedCodecs: clients that decode different video codecs. Where no
// codec reaches a subscriber, its session stays whole: the others' audio
// and every other track flow, and a track-unsupported event names the
// codec of the video it cannot get.
func TestMixedCodecs(t *testing.T) {
	h264, vp8 := []string{webrtc.MimeTypeH264}, []string{webrtc.MimeTypeVP8}
	for _, tc := range []struct {
		name    string
		members []*member
		// cannot: subscriber -> publisher whose video it cannot get
		cannot map[string]string
	}{
		{
			name: "an H264-only and a VP8-only client",
			members: []*member{
				{name: "h264-only", numbering: client.NumberingChromium, video: webrtc.MimeTypeH264, videoCodecs: h264, declare: true},
				{name: "vp8-only", numbering: client.NumberingFirefox, video: webrtc.MimeTypeVP8, videoCodecs: vp8, declare: true},
			},
			cannot: map[string]string{"h264-only": "vp8-only", "vp8-only": "h264-only"},
		},
		{
			// Its session has no VP8 (it offered only H264), though it did
			// not say: the server finds out when it subscribes.
			name: "a client that offered only H264 and said nothing",
			members: []*member{
				{name: "sends-h264", numbering: client.NumberingChromium, video: webrtc.MimeTypeH264, sendOnly: true, videoCodecs: h264},
				{name: "sends-vp8", numbering: client.NumberingFirefox, video: webrtc.MimeTypeVP8},
			},
			cannot: map[string]string{"sends-h264": "sends-vp8"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testutil.Context(t)
			srv := st.NewServer(t, st.Options{})
			for _, m := range tc.members {
				m.join(ctx, t, srv, "codecs", false)
				m.publish(ctx, t)
			}
			for _, m := range tc.members {
				var want []string
				var unsupported *st.Publisher
				for _, o := range tc.members {
					if o == m {
						continue
					}
					for _, p := range o.pubs {
						if p.Kind == "video" && tc.cannot[m.name] == o.name {
							unsupported = p
							continue
						}
						want = append(want, p.TrackID)
					}
				}
				if missing := m.await(want, 15*time.Second); len(missing) > 0 {
					t.Errorf("%s did not receive %v", m.name, missing)
				}
				for _, id := range want {
					r := m.recv[id]
					if r == nil {
						continue
					}
					testutil.Eventually(t, 5*time.Second, fmt.Sprintf("%s receives 50 packets of %s", m.name, id), func() bool { return r.Packets.Load() >= 50 })
					if n := r.Corrupt.Load() + r.Violations.Load(); n > 0 {
						t.Errorf("%s: %d corrupt or misnumbered packets on %s", m.name, n, id)
					}
				}
				if unsupported == nil {
					continue
				}
				ev := waitEvent(t, ctx, m.c, 0, "track-unsupported for "+unsupported.TrackID, func(e client.Event) bool {
					return e.Type == "track-unsupported" && e.TrackID == unsupported.TrackID
				})
				if !strings.EqualFold(ev.Codec, unsupported.Synth.Codec()) {
					t.Errorf("%s told %s is unsupported as %q, want %q", m.name, unsupported.TrackID, ev.Codec, unsupported.Synth.Codec())
				}
				if m.recv[unsupported.TrackID] != nil {
					t.Errorf("%s received %s, a codec it does not decode", m.name, unsupported.TrackID)
				}
			}
		})
	}
}

// TestRoomShapes runs the room shapes that once failed with Firefox in
// them, with clients numbering as the browsers do: each member must get
// every other member's audio and video intact and in its own numbering.
func TestRoomShapes(t *testing.T) {
	ff, cr := client.NumberingFirefox, client.NumberingChromium
	m := func(name string, n client.Numbering, late bool) *member {
		return &member{name: name, numbering: n, video: "video", late: late}
	}
	for _, tc := range []struct {
		name    string
		members []*member
	}{
		{"1 Firefox and 1 Chromium", []*member{m("fox", ff, false), m("crow", cr, false)}},
		{"2 Firefox", []*member{m("fox", ff, false), m("fennec", ff, false)}},
		{"1 Firefox after 2 Chromium", []*member{m("crow", cr, false), m("raven", cr, false), m("fox", ff, true)}},
		{"1 Firefox and 2 Chromium together", []*member{m("fox", ff, false), m("crow", cr, false), m("raven", cr, false)}},
		{"2 Firefox after 1 Chromium", []*member{m("crow", cr, false), m("fox", ff, true), m("fennec", ff, true)}},
		{"3 Chromium", []*member{m("crow", cr, false), m("raven", cr, false), m("rook", cr, false)}},
	} {
		t.Run(tc.name, func(t *testing.T) { runRoom(t, false, tc.members, t.Errorf) })
	}
}
