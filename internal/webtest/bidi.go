package webtest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// A small WebDriver BiDi client (https://w3c.github.io/webdriver-bidi/):
// commands are JSON objects {id, method, params} sent over one WebSocket;
// the browser answers each with {type: "success"|"error", id, ...} and
// sends events as {type: "event", method, params}.

// bidiConn is one WebSocket connection to a browser's BiDi server. One
// goroutine reads it: it hands each response to the caller waiting for that
// id, and each event to onEvent. It ends when the connection closes.
type bidiConn struct {
	ws      *websocket.Conn
	onEvent func(method string, params json.RawMessage) // runs on the reader: must return quickly
	done    chan struct{}                               // closed when the reader has ended

	writeMu sync.Mutex // one writer at a time, as gorilla/websocket requires

	mu      sync.Mutex
	nextID  int64                     // guarded by mu
	pending map[int64]chan bidiResult // callers waiting, by command id; guarded by mu
	err     error                     // why the reader ended; guarded by mu, set before done closes
}

type bidiResult struct {
	result json.RawMessage
	err    error
}

// bidiError is an error response of the browser to a command.
type bidiError struct {
	Method  string // the command
	Code    string // e.g. "no such frame", "invalid argument"
	Message string
}

func (e *bidiError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Method, e.Code, e.Message)
}

// errBiDiClosed is the error of commands on a closed connection.
var errBiDiClosed = errors.New("webdriver bidi connection closed")

// dialBiDi connects to url (ws://host:port/session), retrying while the
// port refuses connections, until ctx is done.
func dialBiDi(ctx context.Context, url string, onEvent func(string, json.RawMessage)) (*bidiConn, error) {
	dialer := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	var ws *websocket.Conn
	for {
		var resp *http.Response
		var err error
		ws, resp, err = dialer.DialContext(ctx, url, nil)
		if resp != nil && resp.Body != nil {
			_ = resp.Body.Close()
		}
		if err == nil {
			break
		}
		if resp != nil { // the server answered, but not with a WebSocket
			return nil, fmt.Errorf("dial %s: %s: %w", url, resp.Status, err)
		}
		// Not listening yet: the only place this client polls.
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("dial %s: %w (last: %w)", url, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	c := &bidiConn{
		ws:      ws,
		onEvent: onEvent,
		done:    make(chan struct{}),
		pending: map[int64]chan bidiResult{},
	}
	go c.read()
	return c, nil
}

// read dispatches messages until the connection fails or closes, then fails
// every waiting call.
func (c *bidiConn) read() {
	var err error
	defer func() {
		c.mu.Lock()
		c.err = err
		pending := c.pending
		c.pending = nil
		c.mu.Unlock()
		for _, ch := range pending {
			ch <- bidiResult{err: fmt.Errorf("%w: %w", errBiDiClosed, err)}
		}
		close(c.done)
	}()
	for {
		var data []byte
		if _, data, err = c.ws.ReadMessage(); err != nil {
			return
		}
		var msg struct {
			Type    string          `json:"type"`
			ID      *int64          `json:"id"`
			Method  string          `json:"method"`
			Params  json.RawMessage `json:"params"`
			Result  json.RawMessage `json:"result"`
			Error   string          `json:"error"`
			Message string          `json:"message"`
		}
		if jerr := json.Unmarshal(data, &msg); jerr != nil {
			continue // not for us to understand; the caller times out
		}
		switch {
		case msg.Type == "event":
			if c.onEvent != nil {
				c.onEvent(msg.Method, msg.Params)
			}
		case msg.ID != nil:
			c.mu.Lock()
			ch := c.pending[*msg.ID]
			delete(c.pending, *msg.ID)
			c.mu.Unlock()
			if ch == nil {
				continue // its caller gave up
			}
			if msg.Type == "error" {
				ch <- bidiResult{err: &bidiError{Code: msg.Error, Message: msg.Message}}
			} else {
				ch <- bidiResult{result: msg.Result}
			}
		}
	}
}

// call sends a command and waits, until ctx is done, for its response,
// which it decodes into result (unless nil).
func (c *bidiConn) call(ctx context.Context, method string, params, result any) error {
	if params == nil {
		params = struct{}{}
	}
	ch := make(chan bidiResult, 1) // the reader never blocks on it
	c.mu.Lock()
	if c.pending == nil {
		err := c.err
		c.mu.Unlock()
		return fmt.Errorf("%s: %w: %w", method, errBiDiClosed, err)
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()
	forget := func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}

	data, err := json.Marshal(struct {
		ID     int64  `json:"id"`
		Method string `json:"method"`
		Params any    `json:"params"`
	}{id, method, params})
	if err != nil {
		forget()
		return fmt.Errorf("%s: %w", method, err)
	}
	if err := c.write(ctx, data); err != nil {
		forget()
		return fmt.Errorf("%s: %w", method, err)
	}
	select {
	case r := <-ch:
		var berr *bidiError
		if errors.As(r.err, &berr) {
			berr.Method = method
			return berr
		}
		if r.err != nil {
			return fmt.Errorf("%s: %w", method, r.err)
		}
		if result != nil {
			if err := json.Unmarshal(r.result, result); err != nil {
				return fmt.Errorf("%s: decoding %s: %w", method, r.result, err)
			}
		}
		return nil
	case <-ctx.Done():
		forget()
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

func (c *bidiConn) write(ctx context.Context, data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	if err := c.ws.SetWriteDeadline(deadline); err != nil {
		return err
	}
	return c.ws.WriteMessage(websocket.TextMessage, data)
}

// close closes the connection and waits for the reader to end. Safe to
// call more than once.
func (c *bidiConn) close() {
	_ = c.ws.Close()
	<-c.done
}
