package signaling

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/rooms"
)

// WHIP (RFC 9725): an encoder (OBS, a hardware box, a pion program)
// publishes into a room with one HTTP request. POST /whip/{room} carries
// its offer and gets the answer, with the server's candidates in it, and
// the session's URL in Location; PATCH on that URL adds the encoder's
// candidates (trickle ICE) or restarts ICE; DELETE ends the session. The
// publisher is a participant like any other for the room, marked
// rooms.ViaWHIP: it is sent nothing and never renegotiated.

const (
	sdpType     = "application/sdp"
	sdpFragType = "application/trickle-ice-sdpfrag"
	// gatherWait bounds how long an answer waits for the server's
	// candidates: WHIP has no way to send them later.
	gatherWait = 3 * time.Second
)

// whipSession is one WHIP publisher: the participant's connection, which
// has nowhere to send room events, and collects the server's candidates
// for the answer.
type whipSession struct {
	h        *Handler
	id       string // the resource's id: random, known only to the encoder
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

// Send implements rooms.Conn. Room events have no way to the encoder;
// only the server's candidates are kept, for the answer.
func (s *whipSession) Send(ev rooms.Event) {
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
func (s *whipSession) Close(reason error) {
	s.part.Logger().Info("whip session ended by the server", "reason", reason)
	s.h.endWHIP(s)
}

// newGathering starts collecting the candidates of a negotiation.
func (s *whipSession) newGathering() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cands = nil
	s.gathered = make(chan struct{})
	return s.gathered
}

// candidates waits for gathering to complete (or gatherWait) and returns
// the candidates.
func (s *whipSession) candidates(ctx context.Context, gathered chan struct{}) []string {
	t := time.NewTimer(gatherWait)
	defer t.Stop()
	select {
	case <-gathered:
	case <-t.C:
		s.part.Logger().Warn("whip answer sent before candidate gathering completed", "waited", gatherWait)
	case <-ctx.Done():
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.cands...)
}

// WHIP returns the handler of /whip/{room} and of the sessions' URLs
// below it; mount it at /whip/.
func (h *Handler) WHIP() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /whip/{room}", h.whipPost)
	mux.HandleFunc("PATCH /whip/{room}/{session}", h.whipPatch)
	mux.HandleFunc("DELETE /whip/{room}/{session}", h.whipDelete)
	mux.HandleFunc("OPTIONS /whip/", h.whipOptions)
	return whipCORS(mux)
}

// whipCORS lets browser-based encoders use the endpoint from any page: the
// token travels in Authorization, which no page sends on a user's behalf.
func whipCORS(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Access-Control-Allow-Origin", "*")
		hd.Set("Access-Control-Expose-Headers", "Location, Link, ETag, Accept-Patch")
		next.ServeHTTP(w, r)
	})
}

func (h *Handler) whipOptions(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	hd.Set("Access-Control-Allow-Methods", "POST, PATCH, DELETE, OPTIONS")
	hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, If-Match")
	hd.Set("Accept-Post", sdpType)
	w.WriteHeader(http.StatusNoContent)
}

// whipError answers a refused request with the status of the error's
// protocol code, and counts it with the socket's errors.
func (h *Handler) whipError(w http.ResponseWriter, err error) {
	code := codeOf(err)
	h.errors[code].Add(1)
	msg := err.Error()
	if code == CodeInternal && !errors.Is(err, rooms.ErrShutdown) {
		h.log.Error("whip request failed", "err", err)
		msg = "internal error"
	} else {
		h.log.Debug("whip request refused", "code", string(code), "err", err)
	}
	status := httpStatus(err)
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="tessera"`)
	}
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "5")
	}
	http.Error(w, msg, status)
}

// bearer returns the request's bearer token ("" without Authorization).
func bearer(r *http.Request) (string, error) {
	a := r.Header.Get("Authorization")
	if a == "" {
		return "", nil
	}
	scheme, token, ok := strings.Cut(a, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
		return "", fmt.Errorf("%w: Authorization must be a Bearer token", errUnauthorized)
	}
	return strings.TrimSpace(token), nil
}

// readBody reads a request body of the given content type, bounded by
// MaxMessageBytes.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, want string) (string, error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != want {
		return "", fmt.Errorf("%w: Content-Type must be %s", errMediaType, want)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxMessageBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return "", fmt.Errorf("%w: body over %d bytes", errTooLarge, h.cfg.MaxMessageBytes)
	}
	if err != nil {
		return "", badRequest("reading the body: %v", err)
	}
	return string(b), nil
}

func (h *Handler) whipPost(w http.ResponseWriter, r *http.Request) {
	room := r.PathValue("room")
	if err := rooms.ValidName(room); err != nil {
		h.whipError(w, err)
		return
	}
	token, err := bearer(r)
	if err != nil {
		h.whipError(w, err)
		return
	}
	offer, err := h.readBody(w, r, sdpType)
	if err != nil {
		h.whipError(w, err)
		return
	}
	if h.redirectWHIP(w, r, room) {
		return
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		name = "WHIP"
	}

	key := h.clientKey(r)
	if err := h.reserve(key); err != nil {
		h.whipError(w, err)
		return
	}
	s := &whipSession{h: h, id: newSessionID(), room: room, token: token, clientIP: key, gathered: make(chan struct{})}
	s.etag = `"` + newSessionID() + `"`
	p, err := h.reg.Join(r.Context(), rooms.JoinRequest{Room: room, Name: name, Conn: s, Token: token, Via: rooms.ViaWHIP})
	if err != nil {
		h.release(key)
		h.whipError(w, err)
		return
	}
	s.part = p
	if !h.addWHIP(s) {
		p.Leave()
		h.release(key)
		h.whipError(w, rooms.ErrShutdown)
		return
	}
	gathered := s.gathered
	var answer string
	err = p.Peer().HandleOffer(offer, func(a string) { answer = a })
	if err != nil {
		h.endWHIP(s)
		p.Leave()
		h.whipError(w, err)
		return
	}
	answer, err = withCandidates(answer, s.candidates(r.Context(), gathered))
	if err != nil {
		h.endWHIP(s)
		p.Leave()
		h.whipError(w, err)
		return
	}
	p.Logger().Info("whip publisher joined", "remote", key)
	hd := w.Header()
	for _, l := range iceLinks(h.iceServers(p.ID(), r.Host)) {
		hd.Add("Link", l)
	}
	hd.Set("Location", "/whip/"+url.PathEscape(room)+"/"+s.id)
	hd.Set("Content-Type", sdpType)
	hd.Set("ETag", s.etag)
	hd.Set("Accept-Patch", sdpFragType)
	w.WriteHeader(http.StatusCreated)
	_, _ = io.WriteString(w, answer)
}

// session finds the session a PATCH or DELETE names, checking its token.
func (h *Handler) whipSession(r *http.Request) (*whipSession, error) {
	h.mu.Lock()
	s := h.whips[r.PathValue("session")]
	h.mu.Unlock()
	if s == nil || s.room != r.PathValue("room") {
		return nil, fmt.Errorf("%w: no such WHIP session", rooms.ErrNotFound)
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

func (h *Handler) whipDelete(w http.ResponseWriter, r *http.Request) {
	s, err := h.whipSession(r)
	if err != nil {
		h.whipError(w, err)
		return
	}
	h.endWHIP(s)
	s.part.Logger().Info("whip publisher left")
	s.part.Leave()
	w.WriteHeader(http.StatusOK)
}

func (h *Handler) whipPatch(w http.ResponseWriter, r *http.Request) {
	s, err := h.whipSession(r)
	if err != nil {
		h.whipError(w, err)
		return
	}
	body, err := h.readBody(w, r, sdpFragType)
	if err != nil {
		h.whipError(w, err)
		return
	}
	frag, err := parseFrag(body)
	if err != nil {
		h.whipError(w, err)
		return
	}
	peer := s.part.Peer()
	current := peer.RemoteDescription()
	if frag.ufrag != "" && frag.ufrag != iceUfrag(current) {
		h.whipRestart(w, r, s, frag, current)
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
			h.whipError(w, err)
			return
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// whipRestart restarts ICE (RFC 9725 section 4.3.2): the encoder's new
// credentials take the place of the old ones in its description, which is
// offered again; the answer's credentials and candidates go back as a
// fragment.
func (h *Handler) whipRestart(w http.ResponseWriter, r *http.Request, s *whipSession, frag sdpFrag, current string) {
	if r.Header.Get("If-Match") != "*" {
		http.Error(w, "an ICE restart needs If-Match: *", http.StatusPreconditionRequired)
		return
	}
	if frag.pwd == "" {
		h.whipError(w, badRequest("an ICE restart needs ice-pwd with ice-ufrag"))
		return
	}
	offer, err := restartOffer(current, frag)
	if err != nil {
		h.whipError(w, err)
		return
	}
	gathered := s.newGathering()
	var answer string
	if err := s.part.Peer().HandleOffer(offer, func(a string) { answer = a }); err != nil {
		h.whipError(w, err)
		return
	}
	out, err := answerFrag(answer, s.candidates(r.Context(), gathered))
	if err != nil {
		h.whipError(w, err)
		return
	}
	s.mu.Lock()
	s.etag = `"` + newSessionID() + `"`
	etag := s.etag
	s.mu.Unlock()
	s.part.Logger().Info("whip ice restart")
	w.Header().Set("Content-Type", sdpFragType)
	w.Header().Set("ETag", etag)
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, out)
}

// redirectWHIP sends the encoder to the node hosting room, in a cluster,
// when that is another one (RFC 9725 section 4.5); it reports whether it
// did.
func (h *Handler) redirectWHIP(w http.ResponseWriter, r *http.Request, room string) bool {
	rt := h.cfg.Router
	if rt == nil || rt.Relayed(r) {
		return false
	}
	route, err := rt.RouteJoin(r.Context(), room)
	if err != nil {
		h.whipError(w, err)
		return true
	}
	if route.URL == "" {
		return false
	}
	u, err := url.Parse(route.URL)
	if err != nil {
		h.whipError(w, fmt.Errorf("node %s: %w", route.Node, err))
		return true
	}
	switch u.Scheme {
	case "wss":
		u.Scheme = "https"
	default:
		u.Scheme = "http"
	}
	u.Path, u.RawPath = "/whip/"+room, ""
	u.RawQuery = r.URL.RawQuery
	http.Redirect(w, r, u.String(), http.StatusTemporaryRedirect)
	return true
}

func (h *Handler) addWHIP(s *whipSession) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	h.whips[s.id] = s
	return true
}

// endWHIP forgets a session (once) and releases its address's count.
func (h *Handler) endWHIP(s *whipSession) {
	s.mu.Lock()
	ended := s.ended
	s.ended = true
	s.mu.Unlock()
	if ended {
		return
	}
	h.mu.Lock()
	delete(h.whips, s.id)
	h.mu.Unlock()
	h.release(s.clientIP)
}

// WHIPSessions counts the WHIP publishers connected here.
func (h *Handler) WHIPSessions() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.whips)
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
