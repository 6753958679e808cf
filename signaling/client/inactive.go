package client

import (
	"github.com/pion/sdp/v3"
)

// pion stops a transceiver whenever a remote offer marks its m-line
// inactive, receiver included, and a stopped receiver never starts again
// (pion/webrtc#2226). The server marks the m-line of an ended subscription
// inactive in every offer until it reuses the transceiver for another
// track; from the second such offer on, pion has stopped the fresh
// receiver it made after the first, and the reused transceiver's track
// never arrives (no OnTrack).
//
// So the client applies the server's offer with those m-lines as sendonly
// (the server sends nothing there: they have no SSRC) and tells the server
// they are inactive in its answer, which is what the server offered.

// unstopInactive returns offer with its inactive audio and video m-lines
// made sendonly, and their mids. An offer that does not parse is returned
// as it is, for SetRemoteDescription to refuse.
func unstopInactive(offer string) (string, map[string]bool) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return offer, nil
	}
	var mids map[string]bool
	for _, m := range d.MediaDescriptions {
		if m.MediaName.Media != "audio" && m.MediaName.Media != "video" {
			continue
		}
		mid, _ := m.Attribute(sdp.AttrKeyMID)
		for i, a := range m.Attributes {
			if a.Key == sdp.AttrKeyInactive {
				m.Attributes[i].Key = sdp.AttrKeySendOnly
				if mids == nil {
					mids = map[string]bool{}
				}
				mids[mid] = true
			}
		}
	}
	if mids == nil {
		return offer, nil
	}
	out, err := d.Marshal()
	if err != nil {
		return offer, nil
	}
	return string(out), mids
}

// answerInactive returns answer with the m-lines of mids inactive.
func answerInactive(answer string, mids map[string]bool) string {
	if len(mids) == 0 {
		return answer
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(answer); err != nil {
		return answer
	}
	for _, m := range d.MediaDescriptions {
		if mid, _ := m.Attribute(sdp.AttrKeyMID); !mids[mid] {
			continue
		}
		for i, a := range m.Attributes {
			switch a.Key {
			case sdp.AttrKeySendRecv, sdp.AttrKeySendOnly, sdp.AttrKeyRecvOnly:
				m.Attributes[i].Key = sdp.AttrKeyInactive
			}
		}
	}
	out, err := d.Marshal()
	if err != nil {
		return answer
	}
	return string(out)
}
