package protocol

import "strings"

// Limits on a client message's fields, beyond the frame size limit.
const (
	MaxSDPBytes     = 128 << 10
	MaxTracksPerMsg = 256
	MaxTokenBytes   = 4096 // a join token
	MaxResumeBytes  = 128  // a resume token
	MaxCodecs       = 128  // browsers list about 30
)

// Validate checks what a decoded client message must hold beyond its JSON
// shape: required fields and limits. Errors wrap ErrBadRequest.
func Validate(m Message) error {
	if v, ok := m.(interface{ validate() error }); ok {
		return v.validate()
	}
	return nil
}

func (m *Join) validate() error {
	switch {
	case m.Room == "":
		return badRequest("join: room is required")
	case m.Name == "":
		return badRequest("join: name is required")
	case len(m.Token) > MaxTokenBytes:
		return badRequest("join: token is too long")
	case len(m.Codecs) > MaxCodecs:
		return badRequest("join: codecs lists more than %d codecs", MaxCodecs)
	}
	for _, c := range m.Codecs {
		kind, name, ok := strings.Cut(c.MimeType, "/")
		switch {
		case !ok || (kind != "audio" && kind != "video") || name == "" || len(c.MimeType) > 64:
			return badRequest("join: codec mimeType %.64q is not audio/... or video/...", c.MimeType)
		case len(c.SDPFmtpLine) > 512:
			return badRequest("join: codec sdpFmtpLine is longer than 512 bytes")
		}
	}
	return nil
}

func validSDP(typ, sdp string) error {
	switch {
	case sdp == "":
		return badRequest("%s: sdp is required", typ)
	case len(sdp) > MaxSDPBytes:
		return badRequest("%s: sdp is larger than %d bytes", typ, MaxSDPBytes)
	}
	return nil
}

func (m *Offer) validate() error  { return validSDP("offer", m.SDP) }
func (m *Answer) validate() error { return validSDP("answer", m.SDP) }

func validTracks(typ string, ids []string) error {
	switch {
	case len(ids) == 0:
		return badRequest("%s: tracks must list at least one track id", typ)
	case len(ids) > MaxTracksPerMsg:
		return badRequest("%s: tracks lists more than %d ids", typ, MaxTracksPerMsg)
	}
	for _, id := range ids {
		if id == "" || len(id) > MaxIDBytes {
			return badRequest("%s: track ids must be 1-%d bytes", typ, MaxIDBytes)
		}
	}
	return nil
}

func (m *Subscribe) validate() error   { return validTracks("subscribe", m.Tracks) }
func (m *Unsubscribe) validate() error { return validTracks("unsubscribe", m.Tracks) }

func (m *Layer) validate() error {
	switch {
	case m.Track == "":
		return badRequest("layer: track is required")
	case m.RID == "":
		return badRequest("layer: rid is required")
	}
	return nil
}

func (m *Mute) validate() error {
	switch {
	case m.Track == "":
		return badRequest("mute: track is required")
	case m.Muted == nil:
		return badRequest("mute: muted is required (true or false)")
	}
	return nil
}

func (m *Resume) validate() error {
	if m.Token == "" || len(m.Token) > MaxResumeBytes {
		return badRequest("resume: token must be 1-%d characters", MaxResumeBytes)
	}
	return nil
}

func (m *Refresh) validate() error {
	if m.Token == "" || len(m.Token) > MaxTokenBytes {
		return badRequest("refresh: token must be 1-%d characters", MaxTokenBytes)
	}
	return nil
}
