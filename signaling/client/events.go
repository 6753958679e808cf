package client

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

// Participant is a participant as the server describes it.
type Participant = protocol.Participant

// Track is a published track as the server describes it.
type Track = protocol.Track

// Error is an `error` message from the server.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return fmt.Sprintf("%s: %s", e.Code, e.Message) }

// Event is any message from the server, with the fields of its type set.
type Event struct {
	Type string
	ID   string
	Msg  protocol.Message // the message, decoded with the protocol's types

	SDP          string                   // offer, answer
	Candidate    *webrtc.ICECandidateInit // candidate
	Self         Participant              // joined
	Participants []Participant            // joined (the others)
	Participant  Participant              // participant-joined
	LeftID       string                   // participant-left
	Track        Track                    // track-published, track-updated
	TrackID      string                   // track-unpublished, track-muted, track-unsupported
	Codec        string                   // track-unsupported
	Muted        bool                     // track-muted
	Speakers     []string                 // speakers
	ResumeToken  string                   // joined, resumed
	ICEServers   []webrtc.ICEServer       // joined, resumed
	Active       []string                 // layers
	Expires      int64                    // token-expiring, refreshed (seconds since 1970)
	Recording    bool                     // joined, resumed, recording: the room is being recorded
	Error        *Error                   // error
}

// parseEvent decodes a server frame with the protocol's types.
func parseEvent(data []byte) (Event, error) {
	id, m, err := protocol.Decode(data, protocol.ServerMessages)
	if err != nil {
		return Event{}, err
	}
	ev := Event{Type: m.Type(), ID: id, Msg: m}
	switch m := m.(type) {
	case *protocol.Joined:
		ev.Self = Participant{ID: m.Participant.ID, Name: m.Participant.Name}
		ev.Participants, ev.ResumeToken, ev.ICEServers = m.Participants, m.ResumeToken, iceServers(m.ICEServers)
		ev.Recording = m.Recording
	case *protocol.Resumed:
		ev.Participant, ev.Self = m.Participant, m.Participant
		ev.Participants, ev.ResumeToken, ev.ICEServers = m.Participants, m.ResumeToken, iceServers(m.ICEServers)
		ev.Recording = m.Recording
	case *protocol.Recording:
		ev.Recording = m.Recording
	case *protocol.Offer:
		ev.SDP = m.SDP
	case *protocol.Answer:
		ev.SDP = m.SDP
	case *protocol.Candidate:
		ev.Candidate = m.Candidate
	case *protocol.ParticipantJoined:
		ev.Participant = m.Participant
	case *protocol.ParticipantLeft:
		ev.LeftID = m.Participant
	case *protocol.TrackPublished:
		ev.Track = m.Track
	case *protocol.TrackUpdated:
		ev.Track = m.Track
	case *protocol.TrackUnpublished:
		ev.TrackID = m.Track
	case *protocol.TrackMuted:
		ev.TrackID, ev.Muted = m.Track, m.Muted
	case *protocol.TrackUnsupported:
		ev.TrackID, ev.Codec = m.Track, m.Codec
	case *protocol.Layers:
		ev.TrackID, ev.Active = m.Track, m.Active
	case *protocol.Speakers:
		ev.Speakers = m.Participants
	case *protocol.TokenExpiring:
		ev.Expires = m.Expires
	case *protocol.Refreshed:
		ev.Expires = m.Expires
	case *protocol.Error:
		ev.Error = &Error{Code: string(m.Code), Message: m.Message}
	}
	return ev, nil
}

func iceServers(in []protocol.ICEServer) []webrtc.ICEServer {
	out := make([]webrtc.ICEServer, len(in))
	for i, s := range in {
		out[i] = webrtc.ICEServer{URLs: s.URLs, Username: s.Username, Credential: s.Credential}
	}
	return out
}

// eventLog keeps every event so that tests can wait for one that may
// already have arrived.
type eventLog struct {
	mu     sync.Mutex
	events []Event
	closed bool
	notify chan struct{} // closed and replaced on every change
}

func newEventLog() *eventLog { return &eventLog{notify: make(chan struct{})} }

func (l *eventLog) add(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, ev)
	close(l.notify)
	l.notify = make(chan struct{})
}

func (l *eventLog) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	close(l.notify)
	l.notify = make(chan struct{})
}

// reopen makes the log wait for events again after its socket was
// replaced; it returns the position from which new events count.
func (l *eventLog) reopen() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = false
	return len(l.events)
}

func (l *eventLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

func (l *eventLog) all() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.events...)
}

// errClosed reports a wait on a client whose socket closed.
var errClosed = errors.New("socket closed")

func (l *eventLog) wait(ctx context.Context, from int, f func(Event) bool) (Event, error) {
	for {
		l.mu.Lock()
		for i := from; i < len(l.events); i++ {
			if f(l.events[i]) {
				ev := l.events[i]
				l.mu.Unlock()
				return ev, nil
			}
		}
		from = len(l.events)
		closed, notify := l.closed, l.notify
		l.mu.Unlock()
		if closed {
			return Event{}, errClosed
		}
		select {
		case <-notify:
		case <-ctx.Done():
			return Event{}, ctx.Err()
		}
	}
}
