package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// WHIP is a WHIP publisher (RFC 9725), as OBS's WHIP output is, or a WHEP
// viewer (WatchWHEP), as a WHEP player is: one PeerConnection negotiated
// with one HTTP request.
type WHIP struct {
	PC *webrtc.PeerConnection
	// Location is the session's URL, from the server's answer.
	Location string
	// Links are the answer's Link headers (ICE servers).
	Links []string
	// Tracks are a viewer's received tracks, as they start (nil for a
	// publisher).
	Tracks chan *webrtc.TrackRemote

	opt WHIPOptions
	mu  sync.Mutex // guards the candidates gathered before the answer
}

// WHIPOptions configure a WHIP publisher.
type WHIPOptions struct {
	// Token is sent as Authorization: Bearer when set.
	Token string
	// Trickle posts the offer at once and sends candidates with PATCH as
	// they are gathered; otherwise the offer carries them all.
	Trickle bool
	// API creates the PeerConnection; nil: DefaultAPI.
	API *webrtc.API
	// Client makes the requests; nil: http.DefaultClient.
	Client *http.Client
}

// HTTPError is a request the server refused.
type HTTPError struct {
	Status int
	Body   string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("HTTP %d: %s", e.Status, strings.TrimSpace(e.Body))
}

// PublishWHIP sends tracks to endpoint (http://host/whip/room) and
// returns once the server answered; ICE and DTLS continue on their own.
func PublishWHIP(ctx context.Context, endpoint string, opt WHIPOptions, tracks ...webrtc.TrackLocal) (*WHIP, error) {
	w, err := newHTTPSession(opt)
	if err != nil {
		return nil, err
	}
	for _, t := range tracks {
		tr, err := w.PC.AddTransceiverFromTrack(t, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err == nil {
			// Only the track's codec, as an encoder offers what it encodes.
			err = offerTrackCodecs(tr, t, true)
		}
		if err != nil {
			_ = w.PC.Close()
			return nil, err
		}
		go drain(tr.Sender())
	}
	if err := w.start(ctx, endpoint); err != nil {
		return nil, err
	}
	return w, nil
}

// WatchWHEP receives audio and video from endpoint
// (http://host/whep/room[/participant]), as a WHEP player does: it offers
// to receive one audio and one video stream, in every codec it has, and
// returns once the server answered. The tracks arrive on Tracks.
func WatchWHEP(ctx context.Context, endpoint string, opt WHIPOptions) (*WHIP, error) {
	w, err := newHTTPSession(opt)
	if err != nil {
		return nil, err
	}
	w.Tracks = make(chan *webrtc.TrackRemote, 2)
	w.PC.OnTrack(func(t *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		select {
		case w.Tracks <- t:
		default:
		}
	})
	for _, k := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := w.PC.AddTransceiverFromKind(k, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			_ = w.PC.Close()
			return nil, err
		}
	}
	if err := w.start(ctx, endpoint); err != nil {
		return nil, err
	}
	return w, nil
}

func newHTTPSession(opt WHIPOptions) (*WHIP, error) {
	if opt.API == nil {
		api, err := DefaultAPI()
		if err != nil {
			return nil, err
		}
		opt.API = api
	}
	if opt.Client == nil {
		opt.Client = http.DefaultClient
	}
	pc, err := opt.API.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return nil, err
	}
	return &WHIP{PC: pc, opt: opt}, nil
}

// start posts the offer and applies the answer; on failure the
// PeerConnection is closed.
func (w *WHIP) start(ctx context.Context, endpoint string) error {
	err := w.post(ctx, endpoint)
	if err != nil {
		_ = w.PC.Close()
	}
	return err
}

func (w *WHIP) post(ctx context.Context, endpoint string) error {
	pc, opt := w.PC, w.opt
	var (
		pending []webrtc.ICECandidateInit // gathered before the answer
		located = make(chan struct{})
	)
	if opt.Trickle {
		pc.OnICECandidate(func(c *webrtc.ICECandidate) {
			if c == nil {
				return
			}
			select {
			case <-located:
				_ = w.Trickle(context.Background(), c.ToJSON())
			default:
				w.mu.Lock()
				pending = append(pending, c.ToJSON())
				w.mu.Unlock()
			}
		})
	}
	offer, err := pc.CreateOffer(nil)
	if err == nil {
		err = pc.SetLocalDescription(offer)
	}
	if err != nil {
		return err
	}
	if !opt.Trickle {
		select {
		case <-webrtc.GatheringCompletePromise(pc):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	resp, body, err := w.do(ctx, http.MethodPost, endpoint, "application/sdp", pc.LocalDescription().SDP, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusCreated {
		return &HTTPError{Status: resp.StatusCode, Body: body}
	}
	loc, err := resp.Request.URL.Parse(resp.Header.Get("Location"))
	if err != nil || resp.Header.Get("Location") == "" {
		return fmt.Errorf("answer without a usable Location: %q", resp.Header.Get("Location"))
	}
	w.Location = loc.String()
	w.Links = resp.Header.Values("Link")
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: body}); err != nil {
		return fmt.Errorf("the server's answer: %w", err)
	}
	close(located)
	w.mu.Lock()
	early := pending
	pending = nil
	w.mu.Unlock()
	for _, c := range early {
		if err := w.Trickle(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

func drain(s *webrtc.RTPSender) {
	buf := make([]byte, 1500)
	for {
		if _, _, err := s.Read(buf); err != nil {
			return
		}
	}
}

// do makes one request with the session's token.
func (w *WHIP) do(ctx context.Context, method, u, contentType, body string, header http.Header) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewBufferString(body))
	if err != nil {
		return nil, "", err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if w.opt.Token != "" {
		req.Header.Set("Authorization", "Bearer "+w.opt.Token)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := w.opt.Client.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp, string(b), err
}

// Trickle sends one candidate to the session (PATCH).
func (w *WHIP) Trickle(ctx context.Context, c webrtc.ICECandidateInit) error {
	mid := "0"
	if c.SDPMid != nil {
		mid = *c.SDPMid
	}
	ufrag, pwd := credentials(w.PC.LocalDescription().SDP)
	frag := fmt.Sprintf("a=ice-ufrag:%s\r\na=ice-pwd:%s\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:%s\r\na=%s\r\n", ufrag, pwd, mid, c.Candidate)
	resp, body, err := w.do(ctx, http.MethodPatch, w.Location, "application/trickle-ice-sdpfrag", frag, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusNoContent {
		return &HTTPError{Status: resp.StatusCode, Body: body}
	}
	return nil
}

// RestartICE restarts ICE through the session (RFC 9725 section 4.3.2):
// new credentials go to the server in a PATCH, and its new credentials and
// candidates come back.
func (w *WHIP) RestartICE(ctx context.Context) error {
	offer, err := w.PC.CreateOffer(&webrtc.OfferOptions{ICERestart: true})
	if err == nil {
		err = w.PC.SetLocalDescription(offer)
	}
	if err != nil {
		return err
	}
	<-webrtc.GatheringCompletePromise(w.PC)
	local := w.PC.LocalDescription().SDP
	ufrag, pwd := credentials(local)
	var frag strings.Builder
	fmt.Fprintf(&frag, "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n", ufrag, pwd)
	for _, line := range strings.Split(local, "\r\n") {
		if strings.HasPrefix(line, "a=candidate:") {
			frag.WriteString(line + "\r\n")
		}
	}
	frag.WriteString("a=end-of-candidates\r\n")
	resp, body, err := w.do(ctx, http.MethodPatch, w.Location, "application/trickle-ice-sdpfrag", frag.String(), http.Header{"If-Match": {"*"}})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		_ = w.PC.SetLocalDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeRollback})
		return &HTTPError{Status: resp.StatusCode, Body: body}
	}
	// The answer in effect, with the server's new credentials and candidates.
	var d sdp.SessionDescription
	if err := d.UnmarshalString(w.PC.CurrentRemoteDescription().SDP); err != nil {
		return err
	}
	sufrag, spwd := credentials(body)
	var cands []string
	for _, line := range strings.Split(body, "\r\n") {
		if v, ok := strings.CutPrefix(line, "a=candidate:"); ok {
			cands = append(cands, v)
		}
	}
	fix := func(attrs []sdp.Attribute) []sdp.Attribute {
		out := attrs[:0]
		for _, a := range attrs {
			switch a.Key {
			case "candidate", "end-of-candidates":
				continue
			case "ice-ufrag":
				a.Value = sufrag
			case "ice-pwd":
				a.Value = spwd
			}
			out = append(out, a)
		}
		return out
	}
	d.Attributes = fix(d.Attributes)
	for _, m := range d.MediaDescriptions {
		m.Attributes = fix(m.Attributes)
		for _, c := range cands {
			m.WithValueAttribute("candidate", c)
		}
	}
	answer, err := d.Marshal()
	if err != nil {
		return err
	}
	return w.PC.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(answer)})
}

// Close ends the session (DELETE) and the PeerConnection.
func (w *WHIP) Close(ctx context.Context) error {
	defer w.PC.Close()
	resp, body, err := w.do(ctx, http.MethodDelete, w.Location, "", "", nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return &HTTPError{Status: resp.StatusCode, Body: body}
	}
	return nil
}

// credentials are the first ice-ufrag and ice-pwd of a description or
// fragment.
func credentials(desc string) (ufrag, pwd string) {
	for _, line := range strings.Split(desc, "\n") {
		line = strings.TrimRight(line, "\r")
		if v, ok := strings.CutPrefix(line, "a=ice-ufrag:"); ok && ufrag == "" {
			ufrag = v
		}
		if v, ok := strings.CutPrefix(line, "a=ice-pwd:"); ok && pwd == "" {
			pwd = v
		}
	}
	return ufrag, pwd
}

// WHIPEndpoint is the WHIP URL of room on the server whose WebSocket URL
// is wsURL (ws://host/ws).
func WHIPEndpoint(wsURL, room string) (string, error) {
	return httpEndpoint(wsURL, "/whip/"+url.PathEscape(room))
}

// WHEPEndpoint is the WHEP URL of room (of one participant of it, when
// participant is not empty) on the server whose WebSocket URL is wsURL.
func WHEPEndpoint(wsURL, room, participant string) (string, error) {
	path := "/whep/" + url.PathEscape(room)
	if participant != "" {
		path += "/" + url.PathEscape(participant)
	}
	return httpEndpoint(wsURL, path)
}

func httpEndpoint(wsURL, path string) (string, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "wss":
		u.Scheme = "https"
	default:
		u.Scheme = "http"
	}
	u.Path = path
	return u.String(), nil
}
