package client

import (
	"strings"
	"testing"

	"github.com/pion/sdp/v3"
)

const inactiveOffer = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:96 VP8/90000\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:1\r\na=inactive\r\na=rtpmap:96 VP8/90000\r\n" +
	"m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:2\r\na=inactive\r\n"

func directions(t *testing.T, s string) map[string]string {
	t.Helper()
	var d sdp.SessionDescription
	if err := d.UnmarshalString(s); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range d.MediaDescriptions {
		mid, _ := m.Attribute(sdp.AttrKeyMID)
		for _, a := range m.Attributes {
			switch a.Key {
			case sdp.AttrKeyInactive, sdp.AttrKeySendOnly, sdp.AttrKeyRecvOnly, sdp.AttrKeySendRecv:
				out[mid] = a.Key
			}
		}
	}
	return out
}

// TestUnstopInactive: the client applies an offer's inactive media m-lines
// as sendonly and answers them inactive; nothing else changes.
func TestUnstopInactive(t *testing.T) {
	applied, mids := unstopInactive(inactiveOffer)
	if got := directions(t, applied); got["0"] != "sendonly" || got["1"] != "sendonly" || got["2"] != "inactive" {
		t.Fatalf("applied offer directions %v", got)
	}
	if len(mids) != 1 || !mids["1"] {
		t.Fatalf("mids %v, want only 1", mids)
	}
	answer := strings.NewReplacer("a=sendonly", "a=recvonly").Replace(applied)
	if got := directions(t, answerInactive(answer, mids)); got["0"] != "recvonly" || got["1"] != "inactive" {
		t.Fatalf("answer directions %v", got)
	}
	if s, m := unstopInactive("not sdp"); s != "not sdp" || m != nil {
		t.Fatalf("a malformed offer changed: %q %v", s, m)
	}
}
