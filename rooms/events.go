package rooms

import (
	"time"

	"github.com/pion/webrtc/v4"
)

// Event is something a participant's client must be told. Events reach a
// Conn in the order the room produced them.
type Event interface{ isEvent() }

// ParticipantInfo describes a participant and what it publishes.
type ParticipantInfo struct {
	ID     string
	Name   string
	Tracks []TrackInfo
	// Via is ViaWHIP for a WHIP publisher, empty for a client of the
	// signaling socket.
	Via string
}

// TrackInfo describes a published track.
type TrackInfo struct {
	ID          string
	Participant string
	Kind        string // "audio" or "video"
	Layers      []string
	Muted       bool
	// Codec is the MIME type the publisher sends, e.g. "video/VP8".
	Codec string
	// Mid is set only where the publisher itself is told: the mid of the
	// transceiver it published on, so it learns the ids of its tracks.
	Mid string
}

// Joined is the first event of every participant: itself and the others,
// and the secret with which a new connection can resume it.
type Joined struct {
	Self        ParticipantInfo
	Others      []ParticipantInfo
	ResumeToken string
	Recording   bool // the room is being recorded
}

// Resumed is the first event on a connection that resumed a participant:
// the room as it is now, and the participant's next resume token (each
// token resumes once).
type Resumed struct {
	Self        ParticipantInfo
	Others      []ParticipantInfo
	ResumeToken string
	Recording   bool // the room is being recorded
}

// ParticipantJoined announces a newcomer.
type ParticipantJoined struct{ Participant ParticipantInfo }

// ParticipantLeft announces a departure.
type ParticipantLeft struct{ ID string }

// TrackPublished announces a track; the publisher's copy has Track.Mid.
type TrackPublished struct{ Track TrackInfo }

// TrackUnpublished announces the end of a track.
type TrackUnpublished struct{ ID string }

// TrackUpdated announces a track whose codec changed: its publisher
// switched so that more subscribers can decode it.
type TrackUpdated struct{ Track TrackInfo }

// TrackUnsupported tells a participant that it cannot receive a track:
// the publisher sends it in a codec the participant does not decode, and
// none that every subscriber decodes. A TrackUpdated may make it
// receivable later.
type TrackUnsupported struct {
	ID    string
	Codec string
}

// TrackMuted announces a publisher's mute or unmute.
type TrackMuted struct {
	ID    string
	Muted bool
}

// Speakers lists the participants speaking, loudest first.
type Speakers struct{ IDs []string }

// Recording says that the room's recording started (On) or stopped:
// everyone in it is told, as Joined and Resumed tell newcomers.
type Recording struct{ On bool }

// LayersWanted tells a publisher which simulcast layers of its track are
// needed (lowest first); it may stop sending the others.
type LayersWanted struct {
	Track string
	RIDs  []string
}

// TokenExpiring warns a participant that joined with a token that it will
// be removed when the token expires, unless its client presents a fresh one.
type TokenExpiring struct{ Expires time.Time }

// Offer carries a server-initiated SDP offer.
type Offer struct{ SDP string }

// Candidate carries a server ICE candidate; nil ends the candidates.
type Candidate struct{ Candidate *webrtc.ICECandidateInit }

func (Joined) isEvent()            {}
func (Resumed) isEvent()           {}
func (ParticipantJoined) isEvent() {}
func (ParticipantLeft) isEvent()   {}
func (TrackPublished) isEvent()    {}
func (TrackUnpublished) isEvent()  {}
func (TrackUpdated) isEvent()      {}
func (TrackUnsupported) isEvent()  {}
func (TrackMuted) isEvent()        {}
func (Speakers) isEvent()          {}
func (Recording) isEvent()         {}
func (LayersWanted) isEvent()      {}
func (TokenExpiring) isEvent()     {}
func (Offer) isEvent()             {}
func (Candidate) isEvent()         {}
