package signaling

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/rooms"
)

// The HTTP sessions of WHIP (RFC 9725, whip.go) and WHEP (whep.go): one
// POST carries the client's offer and gets the answer, with the server's
// candidates in it, and the session's URL in Location; PATCH on that URL
// adds the client's candidates (trickle ICE) or restarts ICE; DELETE ends
// the session. The client is a participant like any other for the room,
// marked by its Via: it is never renegotiated, and sent no room events.

const (
	sdpType     = "application/sdp"
	sdpFragType = "application/trickle-ice-sdpfrag"
	// gatherWait bounds how long an answer waits for the server's
	// candidates: WHIP has no way to send them later.
	gatherWait = 3 * time.Second
)

// httpSession is one WHIP publisher or WHEP viewer: the participant's
// connection, which has nowhere to send room events, and collects the
// server's candidates for the answer.
type httpSession struct {
	h        *Handler
	via      string // rooms.ViaWHIP or rooms.ViaWHEP
	id       string // the resource's id: random, known only to the client
	room     string
	token    string // presented at POST; required again on PATCH and DELETE
	clientIP string // counted against ConnectionsPerIP while the session lives
	part     *rooms.Participant

	mu       sync.Mutex
	cands    []string      // the server's candidates of the current negotiation
	gathered chan struct{} // closed when they are complete
	etag     string        // names the ICE session; a restart makes a new one
	ended    bool
}

// Send implements rooms.Conn. Room events have no way to the client; only
// the server's candidates are kept, for the answer.
func (s *httpSession) Send(ev rooms.Event) {
	c, ok := ev.(rooms.Candidate)
	if !ok {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.Candidate == nil {
		select {
		case <-s.gathered:
		default:
			close(s.gathered)
		}
		return
	}
	s.cands = append(s.cands, c.Candidate.Candidate)
}

// Close implements rooms.Conn: the server removed the publisher.
func (s *httpSession) Close(reason error) {
	s.part.Logger().Info(s.via+" session ended by the server", "reason", reason)
	s.h.endSession(s)
}

// newGathering starts collecting the candidates of a negotiation.
func (s *httpSession) newGathering() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cands = nil
	s.gathered = make(chan struct{})
	return s.gathered
}

// candidates waits for gathering to complete (or gatherWait) and returns
// the candidates.
func (s *httpSession) candidates(ctx context.Context, gathered chan struct{}) []string {
	t := time.NewTimer(gatherWait)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		s.part.Logger().Warn("answer sent before candidate gathering completed", "waited", gatherWait)
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cands...)
}

// sessionSpec is what tells a WHEP request from a WHIP one.
type sessionSpec struct {
	via   string // rooms.ViaWHIP or rooms.ViaWHEP
	name  string // the display name without ?name=
	watch string // a viewer's watched participant
	// started runs once the answer is made, before it is sent.
	started func(ctx context.Context, p *rooms.Participant) error
}

// startSession serves a POST: the room is joined, the offer answered with
// the server's candidates, and the session's URL returned.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, spec sessionSpec) {
	room := r.PathValue("room")
	if err := rooms.ValidName(room); err != nil {
		h.httpError(w, err)
		return
	}
	token, err := bearer(r)
	if err != nil {
		h.httpError(w, err)
		return
	}
	offer, err := h.readBody(w, r, sdpType)
	if err != nil {
		h.httpError(w, err)
		return
	}
	if h.redirectSession(w, r, room) {
		return
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		name = spec.name
	}

	key := h.clientKey(r)
	if err := h.reserve(key); err != nil {
		h.httpError(w, err)
		return
	}
	s := &httpSession{h: h, via: spec.via, id: newSessionID(), room: room, token: token, clientIP: key, gathered: make(chan struct{})}
	s.etag = `"` + newSessionID() + `"`
	p, err := h.reg.Join(r.Context(), rooms.JoinRequest{Room: room, Name: name, Conn: s, Token: token, Via: spec.via, Watch: spec.watch})
	if err != nil {
		h.release(key)
		h.httpError(w, err)
		return
	}
	s.part = p
	if !h.addSession(s) {
		p.Leave()
		h.release(key)
		h.httpError(w, rooms.ErrShutdown)
		return
	}
	fail := func(err error) {
		h.endSession(s)
		p.Leave()
		h.httpError(w, err)
	}
	gathered := s.gathered
	var answer string
	if err := p.Peer().HandleOffer(offer, func(a string) { answer = a }); err != nil {
		fail(err)
		return
	}
	if answer, err = withCandidates(answer, s.candidates(r.Context(), gathered)); err != nil {
		fail(err)
		return
	}
	if spec.started != nil {
		if err := spec.started(r.Context(), p); err != nil {
			fail(err)
			return
		}
	}
	p.Logger().Info(spec.via+" session started", "remote", key)
	hd := w.Header()
	for _, l := range iceLinks(h.iceServers(p.ID(), r.Host)) {
		hd.Add("Link", l)
	}
	hd.Set("Location", s.url())
	hd.Set("Content-Type", sdpType)
	hd.Set("ETag", s.etag)
	hd.Set("Accept-Patch", sdpFragType)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// url is the session's resource: /whip/{room}/{id}, /whep/{room}/session/{id}.
func (s *httpSession) url() string {
	if s.via == rooms.ViaWHEP {
		return "/whep/" + url.PathEscape(s.room) + "/session/" + s.id
	}
	return "/whip/" + url.PathEscape(s.room) + "/" + s.id
}

// lookupSession finds the session a PATCH or DELETE names, checking its
// kind and token.
func (h *Handler) lookupSession(r *http.Request, via string) (*httpSession, error) {
	h.mu.Lock()
	s := h.hsessions[r.PathValue("session")]
	h.mu.Unlock()
	if s == nil || s.room != r.PathValue("room") || s.via != via {
		return nil, fmt.Errorf("%w: no such %s session", rooms.ErrNotFound, strings.ToUpper(via))
	}
	token, err := bearer(r)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(token), []byte(s.token)) != 1 {
		return nil, fmt.Errorf("%w: not the session's token", errUnauthorized)
	}
	return s, nil
}

// sessionDelete serves DELETE on a session of the kind via.
func (h *Handler) sessionDelete(via string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := h.lookupSession(r, via)
		if err != nil {
			h.httpError(w, err)
			return
		}
		h.endSession(s)
		s.part.Logger().Info(via + " session ended by the client")
		s.part.Leave()
		w.WriteHeader(http.StatusOK)
	}
}

// sessionPatch serves PATCH on a session of the kind via.
func (h *Handler) sessionPatch(via string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, err := h.lookupSession(r, via)
		if err != nil {
			h.httpError(w, err)
			return
		}
		h.patch(w, r, s)
	}
}

func (h *Handler) patch(w http.ResponseWriter, r *http.Request, s *httpSession) {
	body, err := h.readBody(w, r, sdpFragType)
	if err != nil {
		h.httpError(w, err)
		return
	}
	frag, err := parseFrag(body)
	if err != nil {
		h.httpError(w, err)
		return
	}
	peer := s.part.Peer()
	current := peer.RemoteDescription()
	if frag.ufrag != "" && frag.ufrag != iceUfrag(current) {
		h.restartICE(w, r, s, frag, current)
		return
	}
	s.mu.Lock()
	etag := s.etag
	s.mu.Unlock()
	if m := r.Header.Get("If-Match"); m != "" && m != "*" && m != etag {
		http.Error(w, "not the current ICE session", http.StatusPreconditionFailed)
		return
	}
	for _, c := range frag.cands {
		if err := peer.AddCandidate(&webrtc.ICECandidateInit{Candidate: c.line, SDPMid: &c.mid}); err != nil {
			h.httpError(w, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// restartICE restarts ICE (RFC 9725 section 4.3.2): the client's new
// credentials take the place of the old ones in its description, which is
// offered again; the answer's credentials and candidates go back as a
// fragment.
func (h *Handler) restartICE(w http.ResponseWriter, r *http.Request, s *httpSession, frag sdpFrag, current string) {
	if r.Header.Get("If-Match") != "*" {
		http.Error(w, "an ICE restart needs If-Match: *", http.StatusPreconditionRequired)
		return
	}
	if frag.pwd == "" {
		h.httpError(w, badRequest("an ICE restart needs ice-pwd with ice-ufrag"))
		return
	}
	offer, err := restartOffer(current, frag)
	if err != nil {
		h.httpError(w, err)
		return
	}
	gathered := s.newGathering()
	var answer string
	if err := s.part.Peer().HandleOffer(offer, func(a string) { answer = a }); err != nil {
		h.httpError(w, err)
		return
	}
	out, err := answerFrag(answer, s.candidates(r.Context(), gathered))
	if err != nil {
		h.httpError(w, err)
		return
	}
	s.mu.Lock()
	s.etag = `"` + newSessionID() + `"`
	etag := s.etag
	s.mu.Unlock()
	s.part.Logger().Info(s.via + " ice restart")
	w.Header().Set("Content-Type", sdpFragType)
	w.Header().Set("ETag", etag)
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, out)
}

// redirectSession sends the client to the node hosting room, in a
// cluster, when that is another one (RFC 9725 section 4.5), at the same
// path; it reports whether it did.
func (h *Handler) redirectSession(w http.ResponseWriter, r *http.Request, room string) bool {
	rt := h.cfg.Router
	if rt == nil || rt.Relayed(r) {
		return false
	}
	route, err := rt.RouteJoin(r.Context(), room)
	if err != nil {
		h.httpError(w, err)
		return true
	}
	if route.URL == "" {
		return false
	}
	u, err := url.Parse(route.URL)
	if err != nil {
		h.httpError(w, fmt.Errorf("node %s: %w", route.Node, err))
		return true
	}
	switch u.Scheme {
	case "wss":
		u.Scheme = "https"
	default:
		u.Scheme = "http"
	}
	u.Path, u.RawPath = r.URL.Path, r.URL.RawPath
	u.RawQuery = r.URL.RawQuery
	http.Redirect(w, r, u.String(), http.StatusTemporaryRedirect)
	return true
}

func (h *Handler) addSession(s *httpSession) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.hsessions[s.id] = s
	return true
}

// endSession forgets a session (once) and releases its address's count.
func (h *Handler) endSession(s *httpSession) {
	s.mu.Lock()
	ended := s.ended
	s.ended = true
	s.mu.Unlock()
	if ended {
		return
	}
	h.mu.Lock()
	delete(h.hsessions, s.id)
	h.mu.Unlock()
	h.release(s.clientIP)
}

// countSessions counts the sessions of the kind via.
func (h *Handler) countSessions(via string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, s := range h.hsessions {
		if s.via == via {
			n++
		}
	}
	return n
}

func newSessionID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// iceLinks are the Link headers that hand ICE servers to the encoder
// (RFC 9725 section 4.4).
func iceLinks(servers []ICEServer) []string {
	var out []string
	for _, s := range servers {
		for _, u := range s.URLs {
			l := "<" + u + `>; rel="ice-server"`
			if s.Username != "" {
				l += fmt.Sprintf(`; username=%q; credential=%q; credential-type="password"`, s.Username, s.Credential)
			}
			out = append(out, l)
		}
	}
	return out
}

// withCandidates adds the server's candidates to every media section of
// its answer, ended by end-of-candidates.
func withCandidates(answer string, cands []string) (string, error) {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(answer); err != nil {
		return "", fmt.Errorf("answer: %w", err)
	}
	for _, m := range d.MediaDescriptions {
		for _, c := range cands {
			m.WithValueAttribute("candidate", strings.TrimPrefix(c, "candidate:"))
		}
		m.WithPropertyAttribute("end-of-candidates")
	}
	b, err := d.Marshal()
	if err != nil {
		return "", fmt.Errorf("answer: %w", err)
	}
	return string(b), nil
}
