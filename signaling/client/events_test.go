package client

import (
	"reflect"
	"testing"

	"github.com/tessera-rtc/tessera/internal/protocoltest"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

// TestParseEveryServerMessage: every server message the client reads keeps
// its type, id and decoded message, and its fields land in the Event's
// flattened fields the client's callers read.
func TestParseEveryServerMessage(t *testing.T) {
	seen := map[string]bool{}
	for _, m := range protocoltest.Samples() {
		if protocol.ServerMessages[m.Type()] == nil {
			continue
		}
		seen[m.Type()] = true
		frame, err := protocol.Encode("8", m)
		if err != nil {
			t.Fatal(err)
		}
		ev, err := parseEvent(frame)
		if err != nil {
			t.Errorf("parseEvent(%s): %v", frame, err)
			continue
		}
		if ev.Type != m.Type() || ev.ID != "8" || !reflect.DeepEqual(ev.Msg, m) {
			t.Errorf("parseEvent(%s) = %q %q %#v", frame, ev.Type, ev.ID, ev.Msg)
		}
		var ok bool
		switch m := m.(type) {
		case *protocol.Joined:
			ok = ev.Self.ID == m.Participant.ID && ev.Self.Name == m.Participant.Name &&
				reflect.DeepEqual(ev.Participants, m.Participants) && ev.ResumeToken == m.ResumeToken &&
				len(ev.ICEServers) == len(m.ICEServers) && ev.ICEServers[0].URLs[0] == m.ICEServers[0].URLs[0] &&
				ev.ICEServers[0].Username == m.ICEServers[0].Username && ev.ICEServers[0].Credential == m.ICEServers[0].Credential &&
				ev.Recording == m.Recording
		case *protocol.Resumed:
			ok = reflect.DeepEqual(ev.Self, m.Participant) && reflect.DeepEqual(ev.Participant, m.Participant) &&
				reflect.DeepEqual(ev.Participants, m.Participants) && ev.ResumeToken == m.ResumeToken && len(ev.ICEServers) == len(m.ICEServers) &&
				ev.Recording == m.Recording
		case *protocol.Offer:
			ok = ev.SDP == m.SDP
		case *protocol.Answer:
			ok = ev.SDP == m.SDP
		case *protocol.Candidate:
			ok = reflect.DeepEqual(ev.Candidate, m.Candidate)
		case *protocol.ParticipantJoined:
			ok = reflect.DeepEqual(ev.Participant, m.Participant)
		case *protocol.ParticipantLeft:
			ok = ev.LeftID == m.Participant
		case *protocol.TrackPublished:
			ok = reflect.DeepEqual(ev.Track, m.Track)
		case *protocol.TrackUpdated:
			ok = reflect.DeepEqual(ev.Track, m.Track)
		case *protocol.TrackUnpublished:
			ok = ev.TrackID == m.Track
		case *protocol.TrackMuted:
			ok = ev.TrackID == m.Track && ev.Muted == m.Muted
		case *protocol.TrackUnsupported:
			ok = ev.TrackID == m.Track && ev.Codec == m.Codec
		case *protocol.Layers:
			ok = ev.TrackID == m.Track && reflect.DeepEqual(ev.Active, m.Active)
		case *protocol.Recording:
			ok = ev.Recording == m.Recording
		case *protocol.Speakers:
			ok = reflect.DeepEqual(ev.Speakers, m.Participants)
		case *protocol.TokenExpiring:
			ok = ev.Expires == m.Expires
		case *protocol.Refreshed:
			ok = ev.Expires == m.Expires
		case *protocol.Error:
			ok = ev.Error != nil && ev.Error.Code == string(m.Code) && ev.Error.Message == m.Message
		default:
			t.Errorf("%q: the test does not know where its fields go", m.Type())
			continue
		}
		if !ok {
			t.Errorf("%q: the event's fields do not hold the message's: %+v", m.Type(), ev)
		}
	}
	for typ := range protocol.ServerMessages {
		if !seen[typ] {
			t.Errorf("no sample of server message %q", typ)
		}
	}
}
