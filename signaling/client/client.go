// Package client is a Go client of the signaling protocol: one WebSocket,
// one pion PeerConnection, negotiation as the polite peer. The integration
// tests and the load tool use it; it is also a reference for other clients.
//
// pion cannot roll back a local offer, so the client is polite differently
// from a browser: it sends an offer without applying it, and applies it only
// when the server's answer arrives. An offer from the server in the meantime
// means the server ignored ours: the client drops it, answers, and offers
// again.
package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtcp"
	"github.com/pion/transport/v5"
	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

// Options configure a client.
type Options struct {
	Room          string
	Name          string
	Token         string
	AutoSubscribe *bool // nil: the server's default (true)
	// Header is sent with the WebSocket handshake (e.g. Origin).
	Header http.Header
	// API creates the PeerConnection; nil uses DefaultAPI.
	API *webrtc.API
	// OnRTCP, when set, receives the RTCP the server sends about the
	// client's published tracks (from the goroutine reading it).
	OnRTCP func(s *webrtc.RTPSender, pkts []rtcp.Packet)
	// Codecs, when set, tells the server what the client decodes (the
	// join's codecs): tracks come in one of them, or a track-unsupported
	// event says why not.
	Codecs []webrtc.RTPCodecCapability
	// OnlyTrackCodecs makes Publish offer only the codecs of the track's
	// mime type, as an application calling setCodecPreferences with them
	// alone; by default they come first, and the others follow.
	OnlyTrackCodecs bool
	// Relay, when set ("udp", "tcp" or "tls"), sends all media through
	// the TURN server `joined` names, reached over that transport: the
	// PeerConnection gets those servers and relay-only ICE once joined.
	Relay string
}

// Client is one participant.
type Client struct {
	url string
	pc  *webrtc.PeerConnection
	opt Options

	writeMu sync.Mutex      // serializes writes to ws
	ws      *websocket.Conn // guarded by writeMu (replaced by Resume)

	negMu        sync.Mutex // serializes negotiation
	pendingOffer *webrtc.SessionDescription
	needOffer    bool
	remoteCands  []webrtc.ICECandidateInit

	nextID     atomic.Int64
	nextMid    atomic.Int64
	collisions atomic.Int64

	// Self is the participant this client joined as.
	Self Participant
	// Others are the participants present at join time.
	Others []Participant

	// ResumeToken, from joined, lets a new socket take the participant over.
	ResumeToken string

	events *eventLog
	tracks chan *webrtc.TrackRemote
	done   atomic.Pointer[chan struct{}] // closed when the current socket's reader ends
	err    atomic.Pointer[error]
}

// DefaultAPI returns an API with pion's default codecs and interceptors,
// offering loopback candidates (the server may be on the same machine).
func DefaultAPI() (*webrtc.API, error) { return NewAPI(nil) }

// NewAPI is DefaultAPI on the network n (nil: the operating system's), e.g.
// a host of pion's virtual network.
func NewAPI(n transport.Net) (*webrtc.API, error) {
	return NewAPIWith(APIOptions{Net: n})
}

// Dial connects to the server's WebSocket URL (ws://host/ws) and joins.
// It returns once `joined` arrived; a refused join returns the *Error.
func Dial(ctx context.Context, url string, opt Options) (*Client, error) {
	c, err := Connect(ctx, url, opt)
	if err != nil {
		return nil, err
	}
	if err := c.Join(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// Connect opens the socket and the PeerConnection without joining; tests
// use it to send messages before `join`.
func Connect(ctx context.Context, url string, opt Options) (*Client, error) {
	api := opt.API
	if api == nil {
		var err error
		if api, err = DefaultAPI(); err != nil {
			return nil, err
		}
	}
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, url, opt.Header)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	pc, err := api.NewPeerConnection(webrtc.Configuration{BundlePolicy: webrtc.BundlePolicyMaxBundle})
	if err != nil {
		_ = ws.Close()
		return nil, err
	}
	c := &Client{
		url: url, ws: ws, pc: pc, opt: opt,
		events: newEventLog(),
		tracks: make(chan *webrtc.TrackRemote, 64),
	}
	pc.OnICECandidate(func(cand *webrtc.ICECandidate) {
		var init *webrtc.ICECandidateInit
		if cand != nil {
			j := cand.ToJSON()
			init = &j
		}
		_ = c.send("", protocol.Candidate{Candidate: init})
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		select {
		case c.tracks <- tr:
		default:
		}
	})
	c.start(ws)
	return c, nil
}

// start runs the reader of socket ws.
func (c *Client) start(ws *websocket.Conn) {
	done := make(chan struct{})
	c.done.Store(&done)
	go c.read(ws, done)
}

// Join sends `join` and waits for `joined` (or an error).
func (c *Client) Join(ctx context.Context) error {
	id := c.id()
	msg := protocol.Join{Room: c.opt.Room, Name: c.opt.Name, Token: c.opt.Token, AutoSubscribe: c.opt.AutoSubscribe}
	if c.opt.Codecs != nil {
		msg.Codecs = make([]protocol.Codec, 0, len(c.opt.Codecs))
		for _, cc := range c.opt.Codecs {
			msg.Codecs = append(msg.Codecs, protocol.Codec{MimeType: cc.MimeType, SDPFmtpLine: cc.SDPFmtpLine})
		}
	}
	if err := c.send(id, msg); err != nil {
		return err
	}
	ev, err := c.events.wait(ctx, 0, func(e Event) bool {
		return (e.Type == "joined" || e.Type == "error") && e.ID == id
	})
	if err != nil {
		return err
	}
	if ev.Type == "error" {
		return ev.Error
	}
	c.Self, c.Others, c.ResumeToken = ev.Self, ev.Participants, ev.ResumeToken
	if c.opt.Relay != "" {
		return c.useRelay(ev.ICEServers)
	}
	return nil
}

// useRelay keeps the TURN URLs of the chosen transport and makes ICE use
// relay candidates only.
func (c *Client) useRelay(servers []webrtc.ICEServer) error {
	var keep []webrtc.ICEServer
	for _, s := range servers {
		var urls []string
		for _, u := range s.URLs {
			if relayTransport(u) == c.opt.Relay {
				urls = append(urls, u)
			}
		}
		if len(urls) > 0 {
			s.URLs = urls
			keep = append(keep, s)
		}
	}
	if len(keep) == 0 {
		return fmt.Errorf("relay %s: joined names no such TURN server (%v)", c.opt.Relay, servers)
	}
	cfg := c.pc.GetConfiguration()
	cfg.ICEServers, cfg.ICETransportPolicy = keep, webrtc.ICETransportPolicyRelay
	return c.pc.SetConfiguration(cfg)
}

// relayTransport is how a TURN URL reaches its server: "udp", "tcp" or
// "tls" ("" for STUN).
func relayTransport(u string) string {
	switch {
	case strings.HasPrefix(u, "turns:"):
		return "tls"
	case !strings.HasPrefix(u, "turn:"):
		return ""
	case strings.HasSuffix(u, "?transport=tcp"):
		return "tcp"
	}
	return "udp"
}

// DropSocket breaks the socket the way a network failure would: no close
// frame, no leave. The server keeps the participant for its grace period.
func (c *Client) DropSocket() {
	c.writeMu.Lock()
	ws := c.ws
	c.writeMu.Unlock()
	_ = ws.UnderlyingConn().Close()
	<-c.Done()
}

// Resume breaks the socket (as DropSocket) and opens a new one that takes
// the participant over with its resume token; the PeerConnection is kept.
// It returns the `resumed` event, or the server's error.
func (c *Client) Resume(ctx context.Context) (Event, error) {
	c.DropSocket()
	ws, _, err := websocket.DefaultDialer.DialContext(ctx, c.url, c.opt.Header)
	if err != nil {
		return Event{}, fmt.Errorf("dial %s: %w", c.url, err)
	}
	c.writeMu.Lock()
	c.ws = ws
	c.writeMu.Unlock()
	c.err.Store(nil)
	mark := c.events.reopen()
	c.start(ws)
	id := c.id()
	if err := c.send(id, protocol.Resume{Token: c.ResumeToken}); err != nil {
		return Event{}, err
	}
	ev, err := c.events.wait(ctx, mark, func(e Event) bool {
		return (e.Type == "resumed" || e.Type == "error") && e.ID == id
	})
	if err != nil {
		return Event{}, err
	}
	if ev.Type == "error" {
		return ev, ev.Error
	}
	c.ResumeToken = ev.ResumeToken // each token resumes once
	return ev, nil
}

// ResumeAt is Resume through another server: the client's next sockets go
// to url (in a cluster, another node, as a load balancer would send it).
func (c *Client) ResumeAt(ctx context.Context, url string) (Event, error) {
	c.url = url
	return c.Resume(ctx)
}

// Collisions counts the client's offers dropped because the server's offer
// crossed them.
func (c *Client) Collisions() int64 { return c.collisions.Load() }

// PC is the client's PeerConnection.
func (c *Client) PC() *webrtc.PeerConnection { return c.pc }

// Tracks delivers the remote tracks as they start.
func (c *Client) Tracks() <-chan *webrtc.TrackRemote { return c.tracks }

// Done is closed when the socket has closed.
func (c *Client) Done() <-chan struct{} { return *c.done.Load() }

// CloseError returns the close frame the server sent, if any.
func (c *Client) CloseError() *websocket.CloseError {
	if p := c.err.Load(); p != nil {
		var ce *websocket.CloseError
		if errors.As(*p, &ce) {
			return ce
		}
	}
	return nil
}

func (c *Client) id() string { return strconv.FormatInt(c.nextID.Add(1), 10) }

// send writes message m with request id (none when empty).
func (c *Client) send(id string, m protocol.Message) error {
	data, err := protocol.Encode(id, m)
	if err != nil {
		return err
	}
	return c.SendRaw(websocket.TextMessage, data)
}

// SendRaw writes one frame as is (tests use it for malformed input).
func (c *Client) SendRaw(frameType int, data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return c.ws.WriteMessage(frameType, data)
}

// Request sends a message with a fresh id and returns the id.
func (c *Client) Request(msg protocol.Message) (string, error) {
	id := c.id()
	return id, c.send(id, msg)
}

// Call sends a request and waits for an `error` reply echoing its id, or
// for wait to pass without one (the request was accepted).
func (c *Client) Call(ctx context.Context, msg protocol.Message, wait time.Duration) error {
	mark := c.events.mark()
	id, err := c.Request(msg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	ev, err := c.events.wait(ctx, mark, func(e Event) bool { return e.Type == "error" && e.ID == id })
	if err != nil {
		return nil // no error within wait: accepted
	}
	return ev.Error
}

// Refresh presents a fresh join token before the session's one expires,
// and returns the session's new end (from `refreshed`).
func (c *Client) Refresh(ctx context.Context, token string) (time.Time, error) {
	mark := c.events.mark()
	id, err := c.Request(protocol.Refresh{Token: token})
	if err != nil {
		return time.Time{}, err
	}
	ev, err := c.events.wait(ctx, mark, func(e Event) bool {
		return (e.Type == "refreshed" || e.Type == "error") && e.ID == id
	})
	switch {
	case err != nil:
		return time.Time{}, err
	case ev.Error != nil:
		return time.Time{}, ev.Error
	}
	return time.Unix(ev.Expires, 0), nil
}

func (c *Client) read(ws *websocket.Conn, done chan struct{}) {
	defer close(done)
	for {
		_, data, err := ws.ReadMessage()
		if err != nil {
			c.err.Store(&err)
			c.events.close()
			return
		}
		ev, err := parseEvent(data)
		if err != nil {
			continue
		}
		switch ev.Type {
		case "offer":
			c.handleOffer(ev.SDP)
		case "answer":
			c.handleAnswer(ev.SDP)
		case "candidate":
			c.handleCandidate(ev.Candidate)
		}
		c.events.add(ev)
	}
}

// Leave sends `leave`; the server removes the participant and closes the socket.
func (c *Client) Leave() error { return c.send("", protocol.Leave{}) }

// Close closes the socket and the PeerConnection abruptly, without `leave`.
func (c *Client) Close() {
	c.writeMu.Lock()
	ws := c.ws
	c.writeMu.Unlock()
	_ = ws.Close()
	_ = c.pc.Close()
	<-c.Done()
}

// WaitFor waits for an event matching f among those received since mark
// (0: since the start).
func (c *Client) WaitFor(ctx context.Context, mark int, f func(Event) bool) (Event, error) {
	return c.events.wait(ctx, mark, f)
}

// Mark returns a position in the event log, for WaitFor.
func (c *Client) Mark() int { return c.events.mark() }

// Events returns a copy of every event received so far.
func (c *Client) Events() []Event { return c.events.all() }
