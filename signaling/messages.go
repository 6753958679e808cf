package signaling

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/sfu"
)

// Client-to-server messages, one type each.
type (
	joinMsg struct {
		Room          string `json:"room"`
		Name          string `json:"name"`
		Token         string `json:"token"`
		AutoSubscribe *bool  `json:"autoSubscribe"`
		// Codecs lists what the client decodes (RTCRtpReceiver.getCapabilities);
		// absent: anything.
		Codecs []codecJSON `json:"codecs"`
	}
	offerMsg struct {
		SDP string `json:"sdp"`
	}
	answerMsg struct {
		SDP string `json:"sdp"`
	}
	candidateMsg struct {
		// nil: the end of the client's candidates.
		Candidate *webrtc.ICECandidateInit `json:"candidate"`
	}
	subscribeMsg struct {
		Tracks []string `json:"tracks"`
	}
	unsubscribeMsg struct {
		Tracks []string `json:"tracks"`
	}
	layerMsg struct {
		Track string `json:"track"`
		RID   string `json:"rid"`
	}
	muteMsg struct {
		Track string `json:"track"`
		Muted *bool  `json:"muted"`
	}
	leaveMsg  struct{}
	resumeMsg struct {
		Token string `json:"token"`
	}
	// refreshMsg presents a fresh join token before the session's one expires.
	refreshMsg struct {
		Token string `json:"token"`
	}
)

// Limits on fields, beyond the frame size limit.
const (
	maxSDPBytes     = 128 << 10
	maxTracksPerMsg = 256
	maxIDBytes      = 128
)

// request is a decoded client message and the id to echo in the reply.
type request struct {
	id  string
	msg any // one of the *xxxMsg types
}

// decode parses and validates one client frame. On error the returned
// request still carries the id when one could be read, so the error reply
// can echo it.
func decode(data []byte) (request, error) {
	var head struct {
		Type *string         `json:"type"`
		ID   json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return request{}, badRequest("frame is not a JSON object: %v", jsonError(err))
	}
	var req request
	if len(head.ID) > 0 && !bytes.Equal(head.ID, []byte("null")) {
		if err := json.Unmarshal(head.ID, &req.id); err != nil {
			return request{}, badRequest("id must be a string")
		}
		if len(req.id) > maxIDBytes {
			req.id = ""
			return req, badRequest("id is longer than %d bytes", maxIDBytes)
		}
	}
	if head.Type == nil {
		return req, badRequest("missing type")
	}
	var msg any
	switch *head.Type {
	case "join":
		msg = &joinMsg{}
	case "offer":
		msg = &offerMsg{}
	case "answer":
		msg = &answerMsg{}
	case "candidate":
		msg = &candidateMsg{}
	case "subscribe":
		msg = &subscribeMsg{}
	case "unsubscribe":
		msg = &unsubscribeMsg{}
	case "layer":
		msg = &layerMsg{}
	case "mute":
		msg = &muteMsg{}
	case "leave":
		msg = &leaveMsg{}
	case "resume":
		msg = &resumeMsg{}
	case "refresh":
		msg = &refreshMsg{}
	default:
		return req, badRequest("unknown message type %.32q", *head.Type)
	}
	if err := json.Unmarshal(data, msg); err != nil {
		return req, badRequest("%s: %v", *head.Type, jsonError(err))
	}
	if v, ok := msg.(interface{ validate() error }); ok {
		if err := v.validate(); err != nil {
			return req, fmt.Errorf("%s: %w", *head.Type, err)
		}
	}
	req.msg = msg
	return req, nil
}

// jsonError words encoding/json's errors for a client.
func jsonError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "ptr", "struct":
		return "an object"
	}
	return k
}

func (m *joinMsg) validate() error {
	switch {
	case m.Room == "":
		return badRequest("room is required")
	case m.Name == "":
		return badRequest("name is required")
	case len(m.Token) > maxTokenBytes:
		return badRequest("token is too long")
	case len(m.Codecs) > maxCodecs:
		return badRequest("codecs lists more than %d codecs", maxCodecs)
	}
	for _, c := range m.Codecs {
		kind, name, ok := strings.Cut(c.MimeType, "/")
		switch {
		case !ok || (kind != "audio" && kind != "video") || name == "" || len(c.MimeType) > 64:
			return badRequest("codec mimeType %.64q is not audio/... or video/...", c.MimeType)
		case len(c.SDPFmtpLine) > 512:
			return badRequest("codec sdpFmtpLine is longer than 512 bytes")
		}
	}
	return nil
}

// maxCodecs bounds the codecs a client may list (browsers list about 30).
const maxCodecs = 128

// codecJSON is a codec as RTCRtpReceiver.getCapabilities lists it.
type codecJSON struct {
	MimeType    string `json:"mimeType"`
	SDPFmtpLine string `json:"sdpFmtpLine,omitempty"`
}

// decodes turns a join's codec list into what the room takes: nil when the
// client did not say.
func (m *joinMsg) decodes() sfu.Codecs {
	if m.Codecs == nil {
		return nil
	}
	out := make(sfu.Codecs, 0, len(m.Codecs))
	for _, c := range m.Codecs {
		out = append(out, webrtc.RTPCodecCapability{MimeType: c.MimeType, SDPFmtpLine: c.SDPFmtpLine})
	}
	return out
}

func validSDP(sdp string) error {
	switch {
	case sdp == "":
		return badRequest("sdp is required")
	case len(sdp) > maxSDPBytes:
		return badRequest("sdp is larger than %d bytes", maxSDPBytes)
	}
	return nil
}

func (m *offerMsg) validate() error  { return validSDP(m.SDP) }
func (m *answerMsg) validate() error { return validSDP(m.SDP) }

func validTracks(ids []string) error {
	switch {
	case len(ids) == 0:
		return badRequest("tracks must list at least one track id")
	case len(ids) > maxTracksPerMsg:
		return badRequest("tracks lists more than %d ids", maxTracksPerMsg)
	}
	for _, id := range ids {
		if id == "" || len(id) > maxIDBytes {
			return badRequest("track ids must be 1-%d bytes", maxIDBytes)
		}
	}
	return nil
}

func (m *subscribeMsg) validate() error   { return validTracks(m.Tracks) }
func (m *unsubscribeMsg) validate() error { return validTracks(m.Tracks) }

func (m *layerMsg) validate() error {
	switch {
	case m.Track == "":
		return badRequest("track is required")
	case m.RID == "":
		return badRequest("rid is required")
	}
	return nil
}

func (m *resumeMsg) validate() error {
	if m.Token == "" || len(m.Token) > 128 {
		return badRequest("token must be 1-128 characters")
	}
	return nil
}

// maxTokenBytes bounds a join token.
const maxTokenBytes = 4096

func (m *refreshMsg) validate() error {
	if m.Token == "" || len(m.Token) > maxTokenBytes {
		return badRequest("token must be 1-%d characters", maxTokenBytes)
	}
	return nil
}

func (m *muteMsg) validate() error {
	switch {
	case m.Track == "":
		return badRequest("track is required")
	case m.Muted == nil:
		return badRequest("muted is required (true or false)")
	}
	return nil
}

// Server-to-client messages.

type participantRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

type participantJSON struct {
	ID     string      `json:"id"`
	Name   string      `json:"name"`
	Tracks []trackJSON `json:"tracks"`
}

type trackJSON struct {
	ID          string   `json:"id"`
	Participant string   `json:"participant"`
	Kind        string   `json:"kind"`
	Layers      []string `json:"layers"`
	Muted       bool     `json:"muted"`
	Codec       string   `json:"codec,omitempty"`
	Mid         string   `json:"mid,omitempty"`
}

// ICEServer is a STUN/TURN server handed to clients.
type ICEServer struct {
	URLs       []string `json:"urls"`
	Username   string   `json:"username,omitempty"`
	Credential string   `json:"credential,omitempty"`
}

type (
	joinedOut struct {
		Type         string            `json:"type"`
		ID           string            `json:"id,omitempty"`
		Participant  participantRef    `json:"participant"`
		Participants []participantJSON `json:"participants"`
		ICEServers   []ICEServer       `json:"iceServers"`
		ResumeToken  string            `json:"resumeToken,omitempty"`
	}
	resumedOut struct {
		Type         string            `json:"type"`
		ID           string            `json:"id,omitempty"`
		Participant  participantJSON   `json:"participant"`
		Participants []participantJSON `json:"participants"`
		ICEServers   []ICEServer       `json:"iceServers"`
		ResumeToken  string            `json:"resumeToken,omitempty"`
	}
	sdpOut struct {
		Type string `json:"type"`
		ID   string `json:"id,omitempty"`
		SDP  string `json:"sdp"`
	}
	candidateOut struct {
		Type      string                   `json:"type"`
		Candidate *webrtc.ICECandidateInit `json:"candidate"`
	}
	participantJoinedOut struct {
		Type        string          `json:"type"`
		Participant participantJSON `json:"participant"`
	}
	participantLeftOut struct {
		Type        string `json:"type"`
		Participant string `json:"participant"`
	}
	trackPublishedOut struct {
		Type  string    `json:"type"`
		Track trackJSON `json:"track"`
	}
	trackUnpublishedOut struct {
		Type  string `json:"type"`
		Track string `json:"track"`
	}
	trackUnsupportedOut struct {
		Type    string `json:"type"`
		Track   string `json:"track"`
		Codec   string `json:"codec"`
		Message string `json:"message"`
	}
	trackMutedOut struct {
		Type  string `json:"type"`
		Track string `json:"track"`
		Muted bool   `json:"muted"`
	}
	layersOut struct {
		Type   string   `json:"type"`
		Track  string   `json:"track"`
		Active []string `json:"active"`
	}
	speakersOut struct {
		Type         string   `json:"type"`
		Participants []string `json:"participants"`
	}
	// refreshedOut answers refresh: the session's new end.
	refreshedOut struct {
		Type    string `json:"type"`
		ID      string `json:"id,omitempty"`
		Expires int64  `json:"expires"` // seconds since 1970
	}
	tokenExpiringOut struct {
		Type    string `json:"type"`
		Expires int64  `json:"expires"`
	}
	errorOut struct {
		Type    string `json:"type"`
		ID      string `json:"id,omitempty"`
		Code    Code   `json:"code"`
		Message string `json:"message"`
	}
)
