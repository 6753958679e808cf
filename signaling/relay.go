package signaling

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/tessera-rtc/tessera/rooms"
)

// Relaying, in a cluster. A socket's first join or resume may name a room
// that another node hosts: the session then opens a WebSocket to that node,
// replays the frame there, and from then on carries frames both ways
// unchanged. The protocol does not change for the client, and its media
// flows to the hosting node directly (that node's candidates are in the
// descriptions it relays). A relayed socket presents the cluster's secret
// (Route.Header) and the client's address, which the hosting node trusts
// for its per-address limit, and is never relayed again.

// Router, in a cluster, says which node a join or a resume goes to.
type Router interface {
	// RouteJoin returns where a join for room goes: an empty Route for
	// this node.
	RouteJoin(ctx context.Context, room string) (Route, error)
	// RouteResume returns where a resume with token goes: an empty Route
	// for this node (which answers not-found for a token it does not know).
	RouteResume(ctx context.Context, token string) (Route, error)
	// Relayed reports whether r is another node relaying a client.
	Relayed(r *http.Request) bool
	// Unreachable reports that the node of a route could not be reached.
	Unreachable(Route)
}

// Route is the node a socket is relayed to.
type Route struct {
	Node   string
	URL    string      // its WebSocket endpoint, ws:// or wss://; empty: this node
	Header http.Header // what it requires of a relaying node
}

// relayClientHeader carries, on a relayed socket, the client's address as
// the relaying node counts it.
const relayClientHeader = "X-Tessera-Client"

// relayBuffers serves the relayed sockets' writes.
var relayBuffers = &sync.Pool{}

// routeJoin relays the session to the node hosting room, when that is not
// this one; it reports whether it did.
func (s *session) routeJoin(room string, frame []byte) (bool, error) {
	r := s.h.cfg.Router
	if r == nil || s.relayed {
		return false, nil
	}
	if err := rooms.ValidName(room); err != nil {
		return false, err // before the directory sees the name
	}
	for range 2 {
		rt, err := r.RouteJoin(s.ctx, room)
		if err != nil || rt.URL == "" {
			return false, err
		}
		if err := s.relay(rt, frame); err != nil {
			s.logger().Warn("the room's node cannot be reached", "room", room, "node", rt.Node, "err", err)
			if !errors.Is(err, errNodeUnreachable) {
				return false, err // it answered: it lives, and keeps its rooms
			}
			r.Unreachable(rt) // the room is placed again
			continue
		}
		return true, nil
	}
	return false, fmt.Errorf("%w: the node hosting room %q cannot be reached", rooms.ErrUnavailable, room)
}

// routeResume relays the session to the node the participant lives on.
func (s *session) routeResume(token string, frame []byte) (bool, error) {
	r := s.h.cfg.Router
	if r == nil || s.relayed {
		return false, nil
	}
	rt, err := r.RouteResume(s.ctx, token)
	if err != nil || rt.URL == "" {
		return false, err
	}
	if err := s.relay(rt, frame); err != nil {
		s.logger().Warn("the participant's node cannot be reached", "node", rt.Node, "err", err)
		if !errors.Is(err, errNodeUnreachable) {
			return false, err
		}
		r.Unreachable(rt)
		// Its node is gone, and the participant with it: the client
		// joins afresh.
		return false, fmt.Errorf("%w: no participant to resume with this token (its node is gone)", rooms.ErrNotFound)
	}
	return true, nil
}

// errNodeUnreachable: no WebSocket could be opened to the node (no
// connection, no answer). A node that answered with an HTTP error lives.
var errNodeUnreachable = errors.New("the node cannot be reached")

// relay connects the session to another node and hands it frame.
func (s *session) relay(rt Route, frame []byte) error {
	hdr := rt.Header.Clone()
	if hdr == nil {
		hdr = http.Header{}
	}
	hdr.Set(relayClientHeader, s.clientKey)
	d := websocket.Dialer{HandshakeTimeout: 5 * time.Second, WriteBufferPool: relayBuffers}
	ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
	defer cancel()
	up, resp, err := d.DialContext(ctx, rt.URL, hdr)
	if err != nil {
		if resp != nil {
			return fmt.Errorf("%w: the room's node refused the socket (HTTP %s)", rooms.ErrUnavailable, resp.Status)
		}
		return fmt.Errorf("%w: %v", errNodeUnreachable, err)
	}
	_ = up.SetWriteDeadline(time.Now().Add(s.h.cfg.WriteTimeout))
	if err := up.WriteMessage(websocket.TextMessage, frame); err != nil {
		_ = up.Close()
		return fmt.Errorf("%w: %v", errNodeUnreachable, err)
	}
	s.upstream = up
	s.relaying.Store(true)
	s.joined.Store(true)
	s.logp.Store(s.logger().With("relayed-to", rt.Node))
	s.logger().Info("socket relayed to the room's node")
	go s.fromUpstream(up)
	return nil
}

// fromUpstream queues what the hosting node sends for the client, until
// that node closes the socket (its close frame is passed on) or is gone.
func (s *session) fromUpstream(up *websocket.Conn) {
	// The hosting node pings every ping interval: two missed mean it is gone.
	ping := s.h.cfg.PingInterval
	_ = up.SetReadDeadline(time.Now().Add(2 * ping))
	up.SetPingHandler(func(data string) error {
		_ = up.SetReadDeadline(time.Now().Add(2 * ping))
		return up.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(s.h.cfg.WriteTimeout))
	})
	for {
		_, data, err := up.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			switch {
			case s.ctx.Err() != nil: // the client went first
			case errors.As(err, &ce) && ce.Code != websocket.CloseAbnormalClosure && ce.Code != websocket.CloseNoStatusReceived:
				s.closeWith(ce.Code, ce.Text)
			default:
				// Not a final code: the client reconnects, and its resume
				// or join finds where the room went.
				s.logger().Warn("the room's node is gone: client sent to reconnect", "err", err)
				s.closeWith(websocket.CloseServiceRestart, "the room's node is gone")
			}
			return
		}
		_ = up.SetReadDeadline(time.Now().Add(2 * ping))
		s.enqueue(outgoing{raw: data})
	}
}

// toUpstream passes a client frame on. Called by the reader only.
func (s *session) toUpstream(frame []byte) {
	_ = s.upstream.SetWriteDeadline(time.Now().Add(s.h.cfg.WriteTimeout))
	if err := s.upstream.WriteMessage(websocket.TextMessage, frame); err != nil {
		s.logger().Warn("the room's node is gone: client sent to reconnect", "err", err)
		s.closeWith(websocket.CloseServiceRestart, "the room's node is gone")
	}
}

// endUpstream closes the relayed socket as the client closed its own: with
// a close frame when the client left cleanly, abruptly otherwise (the
// hosting node then keeps the participant for a resume).
func (s *session) endUpstream(clean bool) {
	up := s.upstream
	if up == nil {
		return
	}
	if clean {
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
		_ = up.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second))
		_ = up.SetReadDeadline(time.Now().Add(time.Second))
		// fromUpstream sees the hosting node's close and returns.
		time.AfterFunc(time.Second, func() { _ = up.Close() })
		return
	}
	_ = up.NetConn().Close()
}
