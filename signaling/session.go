package signaling

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

// Close codes the server uses besides the standard ones.
const (
	// CloseRemoved: the server removed the participant (ICE failure, an
	// operator's decision); the reason says why.
	CloseRemoved = 4000
	// CloseTooSlow: the client did not read its messages fast enough.
	CloseTooSlow = 4001
	// CloseJoinTimeout: the client did not join in time.
	CloseJoinTimeout = 4002
)

// session is one WebSocket. Its goroutines: run (the reader, which also
// owns the session state and dispatches every client message in order) and
// writer (the only one writing data frames, with a deadline, and pinging).
type session struct {
	h      *Handler
	ws     *websocket.Conn
	logp   atomic.Pointer[slog.Logger] // the reader sets it on join; every goroutine logs with it
	remote string
	host   string          // the Host the client reached the server by
	ctx    context.Context // ends with the session
	cancel context.CancelFunc

	out        chan *outgoing // to the writer (pointers: a queue of QueueSize costs 8 bytes a slot while empty)
	closing    chan struct{}  // closed by closeWith
	closeOnce  sync.Once
	closeCode  int    // written once, before closing is closed
	closeText  string // idem
	writerDone chan struct{}

	joinID atomic.Pointer[string] // id of the join request, echoed in `joined`
	joined atomic.Bool            // a join or resume succeeded

	probeMu sync.Mutex
	probes  []chan struct{} // Alive calls waiting for the client to answer

	clientKey string      // the client's address, as per-address limits count it
	relayed   bool        // another node relays this socket: it is not relayed again
	relaying  atomic.Bool // this socket is relayed to another node (relay.go)

	// Owned by run:
	part     *rooms.Participant
	upstream *websocket.Conn // in a cluster, the room's node this socket is relayed to (relay.go)
}

// outgoing is one frame for the writer: a reply to a request, or a room
// event (rendered when written, with what the session knows then).
type outgoing struct {
	id    string           // the request a reply answers
	reply protocol.Message // or
	event rooms.Event      // or
	raw   []byte           // a frame of the node this socket is relayed to
}

func newSession(h *Handler, ws *websocket.Conn, r *http.Request) *session {
	ctx, cancel := context.WithCancel(context.Background())
	s := &session{
		h: h, ws: ws, ctx: ctx, cancel: cancel, remote: r.RemoteAddr, host: r.Host,
		out:        make(chan *outgoing, h.cfg.QueueSize),
		closing:    make(chan struct{}),
		writerDone: make(chan struct{}),
	}
	s.logp.Store(h.log.With("remote", r.RemoteAddr))
	return s
}

// logger is the session's logger: with room and participant once joined.
func (s *session) logger() *slog.Logger { return s.logp.Load() }

// run serves the socket until it closes, then removes the participant.
func (s *session) run() {
	go s.writer()
	joinTimer := time.AfterFunc(s.h.cfg.JoinTimeout, func() {
		if !s.joined.Load() {
			s.logger().Info("socket closed: no join in time", "timeout", s.h.cfg.JoinTimeout.String())
			s.closeWith(CloseJoinTimeout, "join timeout")
			_ = s.ws.SetReadDeadline(time.Now()) // the reader may wait on a silent client
		}
	})
	clean := s.read()
	joinTimer.Stop()
	s.cancel()
	s.endUpstream(clean)
	if s.part != nil {
		// A close frame means the client is gone for good; a socket that
		// just broke may come back and resume.
		s.part.Disconnected(s, clean)
	}
	s.closeWith(websocket.CloseNormalClosure, "")
	s.wait()
}

// wait lets the writer finish (it sends the close frame), then closes the
// socket. It first reads whatever the client still sends, for up to a
// second, so that closing does not reset a connection with unread bytes in
// it: a reset can destroy the close frame before the client reads why.
func (s *session) wait() {
	<-s.writerDone
	if s.closeCode != websocket.CloseAbnormalClosure {
		conn := s.ws.NetConn()
		_ = conn.SetReadDeadline(time.Now().Add(time.Second))
		_, _ = io.Copy(io.Discard, io.LimitReader(conn, drainLimit))
	}
	_ = s.ws.Close()
}

// drainLimit bounds what wait reads from a closing socket.
const drainLimit = 1 << 20

// read serves the socket's frames; it reports whether the client closed it
// cleanly (a close frame, or leave).
func (s *session) read() (clean bool) {
	ping := s.h.cfg.PingInterval
	limiter := newRateLimiter(s.h.cfg.MessagesPerSecond)
	s.ws.SetReadLimit(s.h.cfg.MaxMessageBytes)
	_ = s.ws.SetReadDeadline(time.Now().Add(2 * ping))
	s.ws.SetPongHandler(func(string) error {
		s.answered()
		return s.ws.SetReadDeadline(time.Now().Add(2 * ping))
	})
	for {
		typ, data, err := s.ws.ReadMessage()
		if err != nil {
			if errors.Is(err, websocket.ErrReadLimit) {
				s.logger().Warn("frame over the size limit: socket closed", "limit", s.h.cfg.MaxMessageBytes)
			} else {
				s.logger().Debug("socket closed", "err", err)
			}
			return websocket.IsCloseError(err, websocket.CloseNormalClosure, websocket.CloseGoingAway)
		}
		_ = s.ws.SetReadDeadline(time.Now().Add(2 * ping))
		s.answered()
		switch limiter.take(time.Now()) {
		case rateOK:
		case rateOver:
			s.replyError("", fmt.Errorf("%w: more than %d messages a second", errRateLimited, s.h.cfg.MessagesPerSecond))
			continue
		case rateFlood:
			s.logger().Warn("socket closed: flooding", "limit", s.h.cfg.MessagesPerSecond)
			s.closeWith(websocket.ClosePolicyViolation, "too many messages")
			return false
		}
		if typ != websocket.TextMessage {
			s.replyError("", badRequest("binary frames are not part of the protocol"))
			continue
		}
		if done := s.handle(data); done {
			return true
		}
	}
}

// handle dispatches one client frame; it reports whether the session ends.
func (s *session) handle(data []byte) bool {
	if s.upstream != nil {
		s.toUpstream(data)
		return false
	}
	req, err := decode(data)
	if err != nil {
		s.replyError(req.id, err)
		return false
	}
	switch req.msg.(type) {
	case *protocol.Join, *protocol.Resume:
	default:
		if s.part == nil {
			s.replyError(req.id, errNotJoined)
			return false
		}
	}
	switch m := req.msg.(type) {
	case *protocol.Join:
		err = s.join(req.id, m, data)
	case *protocol.Resume:
		err = s.resume(req.id, m, data)
	case *protocol.Offer:
		err = s.offer(req.id, m)
	case *protocol.Answer:
		err = s.part.Peer().HandleAnswer(m.SDP)
	case *protocol.Candidate:
		err = s.part.Peer().AddCandidate(m.Candidate)
	case *protocol.Subscribe:
		err = s.part.Subscribe(s.ctx, m.Tracks)
	case *protocol.Unsubscribe:
		err = s.part.Unsubscribe(s.ctx, m.Tracks)
	case *protocol.Layer:
		err = s.part.SetLayer(s.ctx, m.Track, m.RID)
	case *protocol.Mute:
		err = s.part.Mute(s.ctx, m.Track, *m.Muted)
	case *protocol.Refresh:
		var exp time.Time
		if exp, err = s.part.Refresh(s.ctx, m.Token); err == nil {
			s.reply(req.id, protocol.Refreshed{Expires: exp.Unix()})
		}
	case *protocol.Leave:
		s.part.Leave()
		s.part = nil
		s.closeWith(websocket.CloseNormalClosure, "left")
		return true
	}
	if err != nil {
		s.replyError(req.id, err)
	}
	return false
}

func (s *session) join(id string, m *protocol.Join, frame []byte) error {
	if s.part != nil {
		return errAlreadyJoined
	}
	if relayed, err := s.routeJoin(m.Room, frame); relayed || err != nil {
		return err
	}
	auto := m.AutoSubscribe == nil || *m.AutoSubscribe
	s.joinID.Store(&id)
	p, err := s.h.reg.Join(s.ctx, rooms.JoinRequest{Room: m.Room, Name: m.Name, AutoSubscribe: auto, Conn: s, Token: m.Token, Codecs: joinCodecs(m)})
	if err != nil {
		return err
	}
	s.attach(p)
	return nil
}

// attach makes p the session's participant, after a join or a resume.
func (s *session) attach(p *rooms.Participant) {
	s.part = p
	s.joined.Store(true)
	s.logp.Store(p.Logger().With("remote", s.remote))
}

func (s *session) resume(id string, m *protocol.Resume, frame []byte) error {
	if s.part != nil {
		return errAlreadyJoined
	}
	if relayed, err := s.routeResume(m.Token, frame); relayed || err != nil {
		return err
	}
	s.joinID.Store(&id)
	p, err := s.h.reg.Resume(s.ctx, m.Token, s)
	if err != nil {
		return err
	}
	s.attach(p)
	return nil
}

func (s *session) offer(id string, m *protocol.Offer) error {
	err := s.part.Peer().HandleOffer(m.SDP, func(answer string) {
		s.reply(id, protocol.Answer{SDP: answer})
	})
	if errors.Is(err, sfu.ErrOfferCollision) {
		// The client is the polite peer: it drops its offer, answers the
		// server's, and offers again.
		s.logger().Debug("client offer ignored: collides with the server's")
		return nil
	}
	return err
}

func (s *session) replyError(id string, err error) {
	code := codeOf(err)
	s.h.errors[code].Add(1)
	msg := err.Error()
	if code == CodeInternal {
		s.logger().Error("request failed", "err", err)
		msg = "internal error"
		if errors.Is(err, rooms.ErrShutdown) {
			msg = err.Error()
		}
	} else {
		s.logger().Debug("request refused", "code", string(code), "err", err)
	}
	s.reply(id, protocol.Error{Code: code, Message: msg})
}

// reply queues the answer to request id.
func (s *session) reply(id string, m protocol.Message) { s.enqueue(outgoing{id: id, reply: m}) }

// probeTimeout is how long Alive waits for the client's pong.
const probeTimeout = 2 * time.Second

// Alive implements rooms.Prober: it pings the client and reports whether
// it answers (a pong, or any frame) within probeTimeout. A socket left
// half-open by a network change does not.
func (s *session) Alive(ctx context.Context) bool {
	answer := make(chan struct{})
	s.probeMu.Lock()
	s.probes = append(s.probes, answer)
	s.probeMu.Unlock()
	if err := s.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.h.cfg.WriteTimeout)); err != nil {
		return false
	}
	t := time.NewTimer(probeTimeout)
	defer t.Stop()
	select {
	case <-answer:
		return true
	case <-t.C:
	case <-ctx.Done():
	case <-s.ctx.Done(): // the reader ended: the socket is gone
	}
	return false
}

// answered wakes the Alive calls waiting: the client answered. Called by
// the reader.
func (s *session) answered() {
	s.probeMu.Lock()
	probes := s.probes
	s.probes = nil
	s.probeMu.Unlock()
	for _, c := range probes {
		close(c)
	}
}

// Send implements rooms.Conn: it queues the event without blocking.
func (s *session) Send(ev rooms.Event) { s.enqueue(outgoing{event: ev}) }

// Close implements rooms.Conn: the server ends the session.
func (s *session) Close(reason error) {
	if errors.Is(reason, rooms.ErrShutdown) {
		s.closeWith(websocket.CloseGoingAway, "server shutting down")
		return
	}
	if errors.Is(reason, rooms.ErrMoved) {
		// Not a final code: the client reconnects, and joins again on the
		// room's new node.
		s.closeWith(websocket.CloseServiceRestart, "moved: "+reason.Error())
		return
	}
	text := "removed"
	if reason != nil {
		text = "removed: " + reason.Error()
	}
	s.closeWith(CloseRemoved, text)
}

// enqueue hands a message to the writer. A client too slow to take its
// messages is disconnected: blocking here would stall its whole room.
func (s *session) enqueue(m outgoing) {
	select {
	case <-s.closing:
		return
	default:
	}
	select {
	case s.out <- &m:
	default:
		s.logger().Warn("client not reading: socket closed", "queued", len(s.out))
		s.closeWith(CloseTooSlow, "too slow")
	}
}

// closeWith makes the writer flush what is queued, send a close frame and stop.
func (s *session) closeWith(code int, text string) {
	s.closeOnce.Do(func() {
		s.closeCode, s.closeText = code, text
		close(s.closing)
	})
}

func (s *session) writer() {
	defer close(s.writerDone)
	ping := time.NewTicker(s.h.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case m := <-s.out:
			if err := s.write(*m); err != nil {
				s.logger().Debug("write failed", "err", err)
				s.closeWith(websocket.CloseAbnormalClosure, "")
				_ = s.ws.Close() // unblocks the reader
				return
			}
		case <-ping.C:
			if err := s.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(s.h.cfg.WriteTimeout)); err != nil {
				s.closeWith(websocket.CloseAbnormalClosure, "")
				_ = s.ws.Close()
				return
			}
		case <-s.closing:
			s.flush()
			return
		}
	}
}

// flush writes what is still queued, then the close frame, and gives the
// reader a moment to see the client's reply before the socket is closed.
func (s *session) flush() {
	for {
		select {
		case m := <-s.out:
			if err := s.write(*m); err != nil {
				return
			}
			continue
		default:
		}
		break
	}
	if s.closeCode != websocket.CloseAbnormalClosure {
		msg := websocket.FormatCloseMessage(s.closeCode, s.closeText)
		_ = s.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(s.h.cfg.WriteTimeout))
	}
	_ = s.ws.SetReadDeadline(time.Now().Add(time.Second))
}

// write sends one frame. A room event without a protocol message is a bug,
// logged and not sent.
func (s *session) write(o outgoing) error {
	if o.raw != nil {
		_ = s.ws.SetWriteDeadline(time.Now().Add(s.h.cfg.WriteTimeout))
		return s.ws.WriteMessage(websocket.TextMessage, o.raw)
	}
	frame, err := s.frame(o)
	if err != nil {
		s.logger().Error("message not sent", "err", err)
		return nil
	}
	_ = s.ws.SetWriteDeadline(time.Now().Add(s.h.cfg.WriteTimeout))
	return s.ws.WriteMessage(websocket.TextMessage, frame)
}

// frame renders o as the session's client is sent it.
func (s *session) frame(o outgoing) ([]byte, error) {
	id, m := o.id, o.reply
	if o.event != nil {
		var err error
		if id, m, err = s.h.render(o.event, s.host, s.joinRequestID()); err != nil {
			return nil, err
		}
	}
	return protocol.Encode(id, m)
}

// joinRequestID is the id of the join or resume request, echoed in its reply.
func (s *session) joinRequestID() string {
	if p := s.joinID.Load(); p != nil {
		return *p
	}
	return ""
}
