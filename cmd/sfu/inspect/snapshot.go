package inspect

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/sfu/record"
)

// Snapshot is the answer of /debug/rooms. Bitrates are bits/s, durations
// milliseconds, times RFC 3339.
type Snapshot struct {
	At     time.Time    `json:"at"`
	Server ServerState  `json:"server"`
	Rooms  []RoomDetail `json:"rooms"`
	// Cluster, in a cluster: every node, and every room with its node
	// (the details above are this node's rooms).
	Cluster *ClusterSnapshot `json:"cluster,omitempty"`
}

// ClusterSnapshot is the cluster part of a snapshot.
type ClusterSnapshot struct {
	ClusterView
	Rooms []RoomSummary `json:"rooms"`
	Error string        `json:"error,omitempty"` // the directory could not be read
}

// ServerState is the server as a whole.
type ServerState struct {
	UptimeMs      int64 `json:"uptimeMs"`
	Sessions      int   `json:"sessions"` // open signaling WebSockets
	Peers         int   `json:"peers"`
	Tracks        int   `json:"tracks"`
	Subscriptions int   `json:"subscriptions"`
}

// RoomDetail is one room.
type RoomDetail struct {
	Name            string              `json:"name"`
	MaxParticipants int                 `json:"maxParticipants"`
	Participants    []ParticipantDetail `json:"participants"`
	// Recording: what is published in the room is being recorded.
	Recording bool `json:"recording,omitempty"`
	// Recordings are the room's files being written and the last ones
	// finished.
	Recordings []record.Info `json:"recordings,omitempty"`
}

// ParticipantDetail is one participant: its PeerConnection, what it
// publishes and what it receives.
type ParticipantDetail struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Via  string `json:"via,omitempty"` // "whip" for a WHIP publisher, "whep" for a WHEP viewer
	// Watching is, for a WHEP viewer, the id of the participant it plays,
	// or "speaker" when it follows the room's speaker.
	Watching   string    `json:"watching,omitempty"`
	JoinedAt   time.Time `json:"joinedAt"`
	InCallMs   int64     `json:"inCallMs"`
	Connection States    `json:"connection"`
	// CandidatePair is the selected ICE candidate pair (null before ICE connects).
	CandidatePair *CandidatePair `json:"candidatePair"`
	// Path is how media flows between the participant and the server, on
	// the pair the server sends on (the client may send on another): "udp" or
	// "tcp" (directly), "relay-udp", "relay-tcp" or "relay-tls" (through
	// the embedded TURN server, reached over that transport), "relay"
	// (through another TURN server); "" before ICE connects.
	Path string `json:"path"`
	// SendPath is how the server writes the media it forwards to this
	// participant: "direct" (sealed by the server and batched into the
	// media port's socket), or "pion: " and why the direct path does not
	// apply (ICE-TCP, DTLS not up yet...).
	SendPath string `json:"sendPath"`
	// BandwidthEstimateBps is the server's estimate of the bandwidth
	// towards this participant (from its transport-wide congestion
	// feedback), shared out among its subscriptions; 0 without feedback.
	BandwidthEstimateBps int                `json:"bandwidthEstimateBps"`
	Negotiation          []NegotiationEvent `json:"negotiation"`
	Published            []PublishedTrack   `json:"published"`
	Subscriptions        []Subscription     `json:"subscriptions"`
	// RawStats is the path of pion's GetStats of this PeerConnection.
	RawStats string `json:"rawStats"`
}

// States are the PeerConnection's state machines, as the W3C names them.
type States struct {
	PeerConnection string `json:"peerConnection"`
	ICE            string `json:"ice"`
	DTLS           string `json:"dtls"`
	Signaling      string `json:"signaling"`
}

// CandidatePair is the ICE candidate pair media flows on.
type CandidatePair struct {
	Local  Candidate `json:"local"`
	Remote Candidate `json:"remote"`
	RTTMs  float64   `json:"rttMs"` // current round-trip time (STUN)
}

// Candidate is one end of the pair.
type Candidate struct {
	Address  string `json:"address"` // host:port
	Protocol string `json:"protocol"`
	Type     string `json:"type"` // host, srflx, prflx, relay
}

// NegotiationEvent is one step of the negotiation history, oldest first.
type NegotiationEvent struct {
	At   time.Time `json:"at"`
	What string    `json:"what"`
}

// PublishedTrack is a track the participant sends, as the server receives it.
type PublishedTrack struct {
	ID          string  `json:"id"`
	Kind        string  `json:"kind"`
	Mid         string  `json:"mid"`
	Codec       string  `json:"codec"`
	Muted       bool    `json:"muted"`
	Subscribers int     `json:"subscribers"`
	BitrateBps  int     `json:"bitrateBps"` // all layers, RTP headers included
	Packets     uint64  `json:"packets"`
	Bytes       uint64  `json:"bytes"`
	Lost        int64   `json:"lost"`     // packets never received (RFC 3550)
	JitterMs    float64 `json:"jitterMs"` // the highest of the layers'
	PLIsSent    uint64  `json:"plisSent"` // keyframe requests to the publisher
	Layers      []Layer `json:"layers"`
}

// Layer is one simulcast layer (or the only stream) of a published track.
type Layer struct {
	RID        string  `json:"rid"` // "" without simulcast
	SSRC       uint32  `json:"ssrc"`
	Active     bool    `json:"active"` // a packet arrived within the last second
	BitrateBps int     `json:"bitrateBps"`
	Packets    uint64  `json:"packets"`
	Bytes      uint64  `json:"bytes"`
	Lost       int64   `json:"lost"`
	JitterMs   float64 `json:"jitterMs"`
	PLIsSent   uint64  `json:"plisSent"`
}

// Subscription is a track forwarded to the participant.
type Subscription struct {
	Track      string `json:"track"`
	Publisher  string `json:"publisher"` // participant id, the msid stream id
	Kind       string `json:"kind"`
	Layer      string `json:"layer"`      // rid forwarded; "" without simulcast
	BitrateBps int    `json:"bitrateBps"` // RTP payload
	Packets    uint64 `json:"packets"`
	Bytes      uint64 `json:"bytes"` // RTP payload
	// From the subscriber:
	NACKsReceived uint64 `json:"nacksReceived"`
	PLIsReceived  uint64 `json:"plisReceived"`
	// Answers to its NACKs: packets sent again, and packets asked for that
	// were no longer cached.
	Retransmitted uint64 `json:"retransmitted"`
	NACKMisses    uint64 `json:"nackMisses"`
}

func (s *Server) serveRooms(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.snapshot(r.Context()))
}

// snapshot describes every room. Rooms and participants that go away while
// it is taken are left out.
func (s *Server) snapshot(ctx context.Context) Snapshot {
	now := time.Now()
	t := s.cfg.Engine.Totals()
	snap := Snapshot{
		At: now,
		Server: ServerState{
			UptimeMs: now.Sub(s.started).Milliseconds(), Sessions: s.cfg.Signaling.Sessions(),
			Peers: t.Peers, Tracks: t.Tracks, Subscriptions: t.Subscriptions,
		},
		Rooms: []RoomDetail{},
	}
	for _, info := range s.cfg.Rooms.Rooms(ctx) {
		parts, err := s.cfg.Rooms.Participants(ctx, info.Name)
		if err != nil {
			continue // closed meanwhile
		}
		room := RoomDetail{Name: info.Name, MaxParticipants: info.MaxParticipants, Participants: make([]ParticipantDetail, 0, len(parts)), Recording: info.Recording}
		if s.cfg.Recorder != nil {
			for _, ri := range s.cfg.Recorder.Recordings() {
				if ri.Room == info.Name {
					room.Recordings = append(room.Recordings, ri)
				}
			}
		}
		for _, p := range parts {
			room.Participants = append(room.Participants, s.participantDetail(info.Name, p, now))
		}
		snap.Rooms = append(snap.Rooms, room)
	}
	if s.cfg.Cluster != nil {
		v, err := s.cfg.Cluster(ctx)
		cs := &ClusterSnapshot{ClusterView: v, Rooms: []RoomSummary{}}
		if err != nil {
			cs.Error = err.Error()
		}
		for _, info := range v.Rooms {
			cs.Rooms = append(cs.Rooms, roomSummary(info))
		}
		snap.Cluster = cs
	}
	return snap
}

func (s *Server) participantDetail(room string, p *rooms.Participant, now time.Time) ParticipantDetail {
	st := p.Peer().Stats()
	d := ParticipantDetail{
		ID: p.ID(), Name: p.Name(), Via: p.Via(), Watching: watching(p), JoinedAt: p.JoinedAt(), InCallMs: now.Sub(p.JoinedAt()).Milliseconds(),
		Connection:           States{PeerConnection: st.Connection, ICE: st.ICE, DTLS: st.DTLS, Signaling: st.Signaling},
		BandwidthEstimateBps: st.Estimate,
		Negotiation:          make([]NegotiationEvent, len(st.Negotiation)),
		Published:            make([]PublishedTrack, len(st.Published)),
		Subscriptions:        make([]Subscription, len(st.Subscribed)),
		RawStats:             "/debug/participants/" + url.PathEscape(room) + "/" + url.PathEscape(p.ID()) + "/stats",
	}
	d.Path, d.SendPath = st.Path, st.SendPath
	if st.Path == "relay" && s.cfg.Relay != nil {
		if transport, ok := s.cfg.Relay(st.RemoteAddr); ok {
			d.Path = "relay-" + transport
		}
	}
	if st.LocalCandidate != "" || st.RemoteCandidate != "" {
		d.CandidatePair = &CandidatePair{
			Local: parseCandidate(st.LocalCandidate), Remote: parseCandidate(st.RemoteCandidate),
			RTTMs: ms(st.RTT),
		}
	}
	for i, ev := range st.Negotiation {
		d.Negotiation[i] = NegotiationEvent{At: ev.At, What: ev.What}
	}
	for i, u := range st.Published {
		d.Published[i] = publishedTrack(u)
	}
	for i, sub := range st.Subscribed {
		d.Subscriptions[i] = Subscription{
			Track: sub.Track, Publisher: sub.Publisher, Kind: sub.Kind, Layer: sub.Layer,
			BitrateBps: sub.Bitrate, Packets: sub.Packets, Bytes: sub.Bytes,
			NACKsReceived: sub.NACKs, PLIsReceived: sub.PLIs,
			Retransmitted: sub.Retransmitted, NACKMisses: sub.NACKMisses,
		}
	}
	return d
}

func publishedTrack(u sfu.UpTrackStats) PublishedTrack {
	t := PublishedTrack{
		ID: u.ID, Kind: u.Kind, Mid: u.Mid, Codec: u.Codec, Muted: u.Muted, Subscribers: u.Subscribers,
		Layers: make([]Layer, len(u.Layers)),
	}
	for i, l := range u.Layers {
		t.Layers[i] = Layer{
			RID: l.RID, SSRC: l.SSRC, Active: l.Active, BitrateBps: l.Bitrate,
			Packets: l.Packets, Bytes: l.Bytes, Lost: l.Lost, JitterMs: ms(l.Jitter), PLIsSent: l.PLIs,
		}
		t.BitrateBps += l.Bitrate
		t.Packets += l.Packets
		t.Bytes += l.Bytes
		t.Lost += l.Lost
		t.PLIsSent += l.PLIs
		t.JitterMs = max(t.JitterMs, ms(l.Jitter))
	}
	return t
}

// parseCandidate reads the sfu's "address:port protocol type" form.
func parseCandidate(s string) Candidate {
	f := strings.Fields(s)
	var c Candidate
	if len(f) > 0 {
		c.Address = f[0]
		if i := strings.LastIndexByte(f[0], ':'); i > 0 {
			if _, err := strconv.Atoi(f[0][i+1:]); err == nil {
				c.Address = net.JoinHostPort(f[0][:i], f[0][i+1:])
			}
		}
	}
	if len(f) > 1 {
		c.Protocol = f[1]
	}
	if len(f) > 2 {
		c.Type = f[2]
	}
	return c
}

// ms renders a duration in milliseconds, to the microsecond.
func ms(d time.Duration) float64 {
	return float64(d.Microseconds()) / 1000
}

// watching is what a WHEP viewer plays (ParticipantDetail.Watching).
func watching(p *rooms.Participant) string {
	if p.Via() != rooms.ViaWHEP {
		return ""
	}
	if w := p.Watched(); w != "" {
		return w
	}
	return "speaker"
}
