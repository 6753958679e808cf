package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/pion/webrtc/v4"
)

// Participant is a participant as the server describes it.
type Participant struct {
	ID     string  `json:"id"`
	Name   string  `json:"name"`
	Tracks []Track `json:"tracks"`
}

// Track is a published track as the server describes it.
type Track struct {
	ID          string   `json:"id"`
	Participant string   `json:"participant"`
	Kind        string   `json:"kind"`
	Layers      []string `json:"layers"`
	Muted       bool     `json:"muted"`
	Codec       string   `json:"codec"`
	Mid         string   `json:"mid"`
}

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
	Error        *Error                   // error
}

func parseEvent(data []byte) (Event, error) {
	var raw struct {
		Type         string                   `json:"type"`
		ID           string                   `json:"id"`
		SDP          string                   `json:"sdp"`
		Candidate    *webrtc.ICECandidateInit `json:"candidate"`
		Participant  json.RawMessage          `json:"participant"`
		Participants json.RawMessage          `json:"participants"`
		Track        json.RawMessage          `json:"track"`
		Muted        bool                     `json:"muted"`
		Active       []string                 `json:"active"`
		ResumeToken  string                   `json:"resumeToken"`
		ICEServers   []webrtc.ICEServer       `json:"iceServers"`
		Code         string                   `json:"code"`
		Codec        string                   `json:"codec"`
		Message      string                   `json:"message"`
		Expires      int64                    `json:"expires"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return Event{}, err
	}
	ev := Event{Type: raw.Type, ID: raw.ID, SDP: raw.SDP, Candidate: raw.Candidate, Muted: raw.Muted, Active: raw.Active, ResumeToken: raw.ResumeToken, Codec: raw.Codec, ICEServers: raw.ICEServers, Expires: raw.Expires}
	var err error
	switch raw.Type {
	case "joined":
		var self struct{ ID, Name string }
		err = errors.Join(json.Unmarshal(raw.Participant, &self), json.Unmarshal(raw.Participants, &ev.Participants))
		ev.Self = Participant{ID: self.ID, Name: self.Name}
	case "resumed":
		err = errors.Join(json.Unmarshal(raw.Participant, &ev.Participant), json.Unmarshal(raw.Participants, &ev.Participants))
		ev.Self = ev.Participant
	case "participant-joined":
		err = json.Unmarshal(raw.Participant, &ev.Participant)
	case "participant-left":
		err = json.Unmarshal(raw.Participant, &ev.LeftID)
	case "track-published", "track-updated":
		err = json.Unmarshal(raw.Track, &ev.Track)
	case "track-unpublished", "track-muted", "layers", "track-unsupported":
		err = json.Unmarshal(raw.Track, &ev.TrackID)
	case "speakers":
		err = json.Unmarshal(raw.Participants, &ev.Speakers)
	case "error":
		ev.Error = &Error{Code: raw.Code, Message: raw.Message}
	}
	return ev, err
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
