// Package protocoltest holds what tests on either side of the signaling
// protocol share: one message of every type.
package protocoltest

import (
	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

// Samples holds one message of every type, with every field set, as a
// sender would fill it.
func Samples() []protocol.Message {
	yes := true
	mid, idx := "0", uint16(0)
	track := protocol.Track{ID: "t1", Participant: "p1", Kind: "video", Layers: []string{"q", "h"}, Muted: true, Codec: "video/VP8", Mid: "1"}
	part := protocol.Participant{ID: "p1", Name: "Ann", Tracks: []protocol.Track{track}, Via: "whip"}
	ice := []protocol.ICEServer{{URLs: []string{"turn:h:3478"}, Username: "u", Credential: "c"}}
	return []protocol.Message{
		&protocol.Join{Room: "r", Name: "Ann", Token: "a.b.c", AutoSubscribe: &yes, Codecs: []protocol.Codec{{MimeType: "video/VP8", SDPFmtpLine: "x=1"}}},
		&protocol.Offer{SDP: "v=0\r\n"},
		&protocol.Answer{SDP: "v=0\r\n"},
		&protocol.Candidate{Candidate: &webrtc.ICECandidateInit{Candidate: "candidate:1 1 udp 1 1.2.3.4 5 typ host", SDPMid: &mid, SDPMLineIndex: &idx}},
		&protocol.Subscribe{Tracks: []string{"t1", "t2"}},
		&protocol.Unsubscribe{Tracks: []string{"t1"}},
		&protocol.Layer{Track: "t1", RID: "q"},
		&protocol.Mute{Track: "t1", Muted: &yes},
		&protocol.Leave{},
		&protocol.Resume{Token: "tok"},
		&protocol.Refresh{Token: "a.b.c"},
		&protocol.Joined{Participant: protocol.ParticipantRef{ID: "p2", Name: "Bob"}, Participants: []protocol.Participant{part}, ICEServers: ice, ResumeToken: "rt", Recording: true},
		&protocol.Resumed{Participant: part, Participants: []protocol.Participant{}, ICEServers: ice, ResumeToken: "rt2", Recording: true},
		&protocol.ParticipantJoined{Participant: part},
		&protocol.ParticipantLeft{Participant: "p1"},
		&protocol.TrackPublished{Track: track},
		&protocol.TrackUpdated{Track: track},
		&protocol.TrackUnpublished{Track: "t1"},
		&protocol.TrackUnsupported{Track: "t1", Codec: "video/AV1", Message: "no"},
		&protocol.TrackMuted{Track: "t1", Muted: true},
		&protocol.Speakers{Participants: []string{"p1", "p2"}},
		&protocol.Layers{Track: "t1", Active: []string{"q"}},
		&protocol.Recording{Recording: true},
		&protocol.TokenExpiring{Expires: 1767225600},
		&protocol.Refreshed{Expires: 1767229200},
		&protocol.Error{Code: protocol.CodeRoomFull, Message: "full"},
	}
}
