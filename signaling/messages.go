package signaling

import (
	"fmt"

	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

// ICEServer is a STUN/TURN server handed to clients.
type ICEServer = protocol.ICEServer

// request is a decoded client message and the id to echo in the reply.
type request struct {
	id  string
	msg protocol.Message // a *protocol.Join, *protocol.Offer, ...
}

// decode parses and validates one client frame. On error the returned
// request still carries the id when one could be read, so the error reply
// can echo it.
func decode(data []byte) (request, error) {
	id, msg, err := protocol.Decode(data, protocol.ClientMessages)
	if err != nil {
		return request{id: id}, err
	}
	if err := protocol.Validate(msg); err != nil {
		return request{id: id}, err
	}
	return request{id: id, msg: msg}, nil
}

// joinCodecs turns a join's codec list into what the room takes: nil when
// the client did not say.
func joinCodecs(m *protocol.Join) sfu.Codecs {
	if m.Codecs == nil {
		return nil
	}
	out := make(sfu.Codecs, 0, len(m.Codecs))
	for _, c := range m.Codecs {
		out = append(out, webrtc.RTPCodecCapability{MimeType: c.MimeType, SDPFmtpLine: c.SDPFmtpLine})
	}
	return out
}

// render turns a room event into its protocol message, for a session whose
// client reached the server by host; joinID is the id of its join or
// resume request. An event without a message is a bug: it is reported
// rather than sent.
func (h *Handler) render(ev rooms.Event, host, joinID string) (id string, m protocol.Message, err error) {
	switch ev := ev.(type) {
	case rooms.Joined:
		return joinID, protocol.Joined{
			Participant:  protocol.ParticipantRef{ID: ev.Self.ID, Name: ev.Self.Name},
			Participants: participantsOut(ev.Others),
			ICEServers:   h.iceServers(ev.Self.ID, host),
			ResumeToken:  ev.ResumeToken,
			Recording:    ev.Recording,
		}, nil
	case rooms.Resumed:
		return joinID, protocol.Resumed{
			Participant: participantOut(ev.Self), Participants: participantsOut(ev.Others),
			ICEServers: h.iceServers(ev.Self.ID, host), ResumeToken: ev.ResumeToken, Recording: ev.Recording,
		}, nil
	case rooms.ParticipantJoined:
		return "", protocol.ParticipantJoined{Participant: participantOut(ev.Participant)}, nil
	case rooms.ParticipantLeft:
		return "", protocol.ParticipantLeft{Participant: ev.ID}, nil
	case rooms.TrackPublished:
		return "", protocol.TrackPublished{Track: trackOut(ev.Track)}, nil
	case rooms.TrackUpdated:
		return "", protocol.TrackUpdated{Track: trackOut(ev.Track)}, nil
	case rooms.TrackUnsupported:
		return "", protocol.TrackUnsupported{Track: ev.ID, Codec: ev.Codec,
			Message: "the track is sent as " + ev.Codec + ", which this client does not decode, and no codec reaches every subscriber"}, nil
	case rooms.TrackUnpublished:
		return "", protocol.TrackUnpublished{Track: ev.ID}, nil
	case rooms.TrackMuted:
		return "", protocol.TrackMuted{Track: ev.ID, Muted: ev.Muted}, nil
	case rooms.Speakers:
		return "", protocol.Speakers{Participants: ev.IDs}, nil
	case rooms.Recording:
		return "", protocol.Recording{Recording: ev.On}, nil
	case rooms.LayersWanted:
		return "", protocol.Layers{Track: ev.Track, Active: ev.RIDs}, nil
	case rooms.TokenExpiring:
		return "", protocol.TokenExpiring{Expires: ev.Expires.Unix()}, nil
	case rooms.Offer:
		return "", protocol.Offer{SDP: ev.SDP}, nil
	case rooms.Candidate:
		return "", protocol.Candidate{Candidate: ev.Candidate}, nil
	}
	return "", nil, fmt.Errorf("signaling: room event %T has no protocol message", ev)
}

func participantsOut(ps []rooms.ParticipantInfo) []protocol.Participant {
	out := make([]protocol.Participant, len(ps))
	for i, p := range ps {
		out[i] = participantOut(p)
	}
	return out
}

func participantOut(p rooms.ParticipantInfo) protocol.Participant {
	tracks := make([]protocol.Track, len(p.Tracks))
	for i, t := range p.Tracks {
		tracks[i] = trackOut(t)
	}
	return protocol.Participant{ID: p.ID, Name: p.Name, Tracks: tracks, Via: p.Via}
}

func trackOut(t rooms.TrackInfo) protocol.Track {
	layers := t.Layers
	if layers == nil {
		layers = []string{}
	}
	return protocol.Track{ID: t.ID, Participant: t.Participant, Kind: t.Kind, Layers: layers, Muted: t.Muted, Codec: t.Codec, Mid: t.Mid}
}
