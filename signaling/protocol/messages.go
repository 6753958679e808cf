// Package protocol defines the messages of the signaling protocol
// (docs/protocol.md), once, for the server (package signaling) and the Go
// client (signaling/client): their JSON shapes, how a frame is encoded and
// decoded, and the limits every client message must keep.
package protocol

import "github.com/pion/webrtc/v4"

// Message is one message of the protocol; Type is its "type".
type Message interface{ Type() string }

// Client to server.
type (
	// Join must come first: it joins (or creates) a room. Reply: Joined.
	Join struct {
		Room  string `json:"room"`
		Name  string `json:"name"`
		Token string `json:"token,omitempty"`
		// AutoSubscribe: nil is the default, true.
		AutoSubscribe *bool `json:"autoSubscribe,omitempty"`
		// Codecs lists what the client decodes (RTCRtpReceiver.getCapabilities);
		// nil: anything.
		Codecs []Codec `json:"codecs,omitempty"`
	}
	// Subscribe subscribes to tracks; the server renegotiates.
	Subscribe struct {
		Tracks []string `json:"tracks"`
	}
	// Unsubscribe ends subscriptions; the server renegotiates.
	Unsubscribe struct {
		Tracks []string `json:"tracks"`
	}
	// Layer is the highest simulcast layer the client wants of a track.
	Layer struct {
		Track string `json:"track"`
		RID   string `json:"rid"`
	}
	// Mute mutes or unmutes a track.
	Mute struct {
		Track string `json:"track"`
		Muted *bool  `json:"muted"` // required
	}
	// Leave removes the participant; the server closes the socket.
	Leave struct{}
	// Resume, instead of Join, takes over the participant whose socket
	// dropped. Reply: Resumed.
	Resume struct {
		Token string `json:"token"`
	}
	// Refresh presents a fresh join token before the session's one
	// expires. Reply: Refreshed.
	Refresh struct {
		Token string `json:"token"`
	}
)

// Both ways.
type (
	// Offer is an SDP offer, from the client (reply: Answer) or the server.
	Offer struct {
		SDP string `json:"sdp"`
	}
	// Answer is an SDP answer.
	Answer struct {
		SDP string `json:"sdp"`
	}
	// Candidate is a trickled ICE candidate; nil ends the sender's candidates.
	Candidate struct {
		Candidate *webrtc.ICECandidateInit `json:"candidate"`
	}
)

// Server to client.
type (
	// Joined answers Join.
	Joined struct {
		Participant  ParticipantRef `json:"participant"`
		Participants []Participant  `json:"participants"` // the others
		ICEServers   []ICEServer    `json:"iceServers"`
		ResumeToken  string         `json:"resumeToken,omitempty"`
		Recording    bool           `json:"recording,omitempty"` // the room is being recorded
	}
	// Resumed answers Resume: the room as it is now.
	Resumed struct {
		Participant  Participant   `json:"participant"` // with its tracks
		Participants []Participant `json:"participants"`
		ICEServers   []ICEServer   `json:"iceServers"`
		ResumeToken  string        `json:"resumeToken,omitempty"` // the next one
		Recording    bool          `json:"recording,omitempty"`   // the room is being recorded
	}
	// ParticipantJoined announces a newcomer.
	ParticipantJoined struct {
		Participant Participant `json:"participant"`
	}
	// ParticipantLeft announces a departure.
	ParticipantLeft struct {
		Participant string `json:"participant"` // its id
	}
	// TrackPublished announces a track (to its publisher too, with Mid).
	TrackPublished struct {
		Track Track `json:"track"`
	}
	// TrackUpdated announces a track whose codec changed.
	TrackUpdated struct {
		Track Track `json:"track"`
	}
	// TrackUnpublished announces the end of a track.
	TrackUnpublished struct {
		Track string `json:"track"` // its id
	}
	// TrackUnsupported: the client cannot be sent this track.
	TrackUnsupported struct {
		Track   string `json:"track"`
		Codec   string `json:"codec"`
		Message string `json:"message"`
	}
	// TrackMuted announces a mute or an unmute.
	TrackMuted struct {
		Track string `json:"track"`
		Muted bool   `json:"muted"`
	}
	// Speakers lists who speaks, loudest first.
	Speakers struct {
		Participants []string `json:"participants"`
	}
	// Recording says the room's recording started or stopped.
	Recording struct {
		Recording bool `json:"recording"`
	}
	// Layers tells a publisher which layers of its simulcast track are needed.
	Layers struct {
		Track  string   `json:"track"`
		Active []string `json:"active"`
	}
	// TokenExpiring warns that the join token runs out at Expires.
	TokenExpiring struct {
		Expires int64 `json:"expires"` // seconds since 1970
	}
	// Refreshed answers Refresh: the session's new end.
	Refreshed struct {
		Expires int64 `json:"expires"` // seconds since 1970
	}
	// Error refuses a request (echoing its id) or reports a problem.
	Error struct {
		Code    Code   `json:"code"`
		Message string `json:"message"`
	}
)

// ParticipantRef names a participant.
type ParticipantRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// Participant is a participant and what it publishes.
type Participant struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Tracks []Track `json:"tracks"`
	// Via is "whip" for a publisher that joined over WHIP (RFC 9725);
	// absent for a client of this socket.
	Via string `json:"via,omitempty"`
}

// Track is a published track.
type Track struct {
	ID          string   `json:"id"`
	Participant string   `json:"participant"`
	Kind        string   `json:"kind"` // "audio" or "video"
	Layers      []string `json:"layers"`
	Muted       bool     `json:"muted"`
	Codec       string   `json:"codec,omitempty"` // the MIME type the publisher sends
	Mid         string   `json:"mid,omitempty"`   // to its publisher only
}

// ICEServer is a STUN/TURN server handed to clients.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

// Codec is a codec as RTCRtpReceiver.getCapabilities lists it.
type Codec struct {
	MimeType    string `json:"mimeType"`
	SDPFmtpLine string `json:"sdpFmtpLine,omitempty"`
}

func (Join) Type() string              { return "join" }
func (Subscribe) Type() string         { return "subscribe" }
func (Unsubscribe) Type() string       { return "unsubscribe" }
func (Layer) Type() string             { return "layer" }
func (Mute) Type() string              { return "mute" }
func (Leave) Type() string             { return "leave" }
func (Resume) Type() string            { return "resume" }
func (Refresh) Type() string           { return "refresh" }
func (Offer) Type() string             { return "offer" }
func (Answer) Type() string            { return "answer" }
func (Candidate) Type() string         { return "candidate" }
func (Joined) Type() string            { return "joined" }
func (Resumed) Type() string           { return "resumed" }
func (ParticipantJoined) Type() string { return "participant-joined" }
func (ParticipantLeft) Type() string   { return "participant-left" }
func (TrackPublished) Type() string    { return "track-published" }
func (TrackUpdated) Type() string      { return "track-updated" }
func (TrackUnpublished) Type() string  { return "track-unpublished" }
func (TrackUnsupported) Type() string  { return "track-unsupported" }
func (TrackMuted) Type() string        { return "track-muted" }
func (Speakers) Type() string          { return "speakers" }
func (Layers) Type() string            { return "layers" }
func (Recording) Type() string         { return "recording" }
func (TokenExpiring) Type() string     { return "token-expiring" }
func (Refreshed) Type() string         { return "refreshed" }
func (Error) Type() string             { return "error" }

// ClientMessages and ServerMessages list, for each message type a client
// (or the server) may send, a function returning a new empty one to decode
// into.
var (
	ClientMessages = map[string]func() Message{
		"join": func() Message { return &Join{} }, "offer": func() Message { return &Offer{} },
		"answer": func() Message { return &Answer{} }, "candidate": func() Message { return &Candidate{} },
		"subscribe": func() Message { return &Subscribe{} }, "unsubscribe": func() Message { return &Unsubscribe{} },
		"layer": func() Message { return &Layer{} }, "mute": func() Message { return &Mute{} },
		"leave": func() Message { return &Leave{} }, "resume": func() Message { return &Resume{} },
		"refresh": func() Message { return &Refresh{} },
	}
	ServerMessages = map[string]func() Message{
		"joined": func() Message { return &Joined{} }, "resumed": func() Message { return &Resumed{} },
		"offer": func() Message { return &Offer{} }, "answer": func() Message { return &Answer{} },
		"candidate":          func() Message { return &Candidate{} },
		"participant-joined": func() Message { return &ParticipantJoined{} },
		"participant-left":   func() Message { return &ParticipantLeft{} },
		"track-published":    func() Message { return &TrackPublished{} },
		"track-updated":      func() Message { return &TrackUpdated{} },
		"track-unpublished":  func() Message { return &TrackUnpublished{} },
		"track-unsupported":  func() Message { return &TrackUnsupported{} },
		"track-muted":        func() Message { return &TrackMuted{} },
		"speakers":           func() Message { return &Speakers{} },
		"layers":             func() Message { return &Layers{} },
		"recording":          func() Message { return &Recording{} },
		"token-expiring":     func() Message { return &TokenExpiring{} },
		"refreshed":          func() Message { return &Refreshed{} },
		"error":              func() Message { return &Error{} },
	}
)

// NewMute is the Mute of track, muted or not.
func NewMute(track string, muted bool) Mute { return Mute{Track: track, Muted: &muted} }
