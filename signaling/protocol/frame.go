package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Code is a protocol error code.
type Code string

// The protocol's error codes.
const (
	CodeBadRequest    Code = "bad-request"
	CodeNotJoined     Code = "not-joined"
	CodeAlreadyJoined Code = "already-joined"
	CodeUnauthorized  Code = "unauthorized"
	CodeRoomNotFound  Code = "room-not-found"
	CodeRoomFull      Code = "room-full"
	CodeBadSDP        Code = "bad-sdp"
	CodeNotFound      Code = "not-found"
	CodeForbidden     Code = "forbidden"
	CodeInternal      Code = "internal"
	CodeUnavailable   Code = "unavailable"
)

// Codes lists every error code.
var Codes = []Code{
	CodeBadRequest, CodeNotJoined, CodeAlreadyJoined, CodeUnauthorized, CodeRoomNotFound,
	CodeRoomFull, CodeBadSDP, CodeNotFound, CodeForbidden, CodeInternal, CodeUnavailable,
}

// ErrBadRequest is wrapped by every error of Decode and Validate: the frame
// is not a valid message (the protocol's bad-request).
var ErrBadRequest = errors.New("bad request")

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
}

// Encode renders m as a frame: {"type": m.Type(), "id": id, ...m's fields}
// (no id when empty).
func Encode(id string, m Message) ([]byte, error) {
	if m == nil {
		return nil, errors.New("protocol: no message to encode")
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode %s: %w", m.Type(), err)
	}
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("protocol: %s does not encode as an object", m.Type())
	}
	var b bytes.Buffer
	b.Grow(len(body) + len(id) + 32)
	b.WriteString(`{"type":`)
	t, _ := json.Marshal(m.Type())
	b.Write(t)
	if id != "" {
		b.WriteString(`,"id":`)
		q, _ := json.Marshal(id)
		b.Write(q)
	}
	if len(body) > 2 {
		b.WriteByte(',')
	}
	b.Write(body[1:])
	return b.Bytes(), nil
}

// MaxIDBytes bounds a request's id.
const MaxIDBytes = 128

// Decode parses a frame into one of the messages of known (ClientMessages
// on the server, ServerMessages in a client) and the frame's id. Errors
// wrap ErrBadRequest; when the id could be read it is returned with the
// error, so that a reply can echo it.
func Decode(data []byte, known map[string]func() Message) (string, Message, error) {
	var head struct {
		Type *string         `json:"type"`
		ID   json.RawMessage `json:"id"`
	}
	if err := json.Unmarshal(data, &head); err != nil {
		return "", nil, badRequest("frame is not a JSON object: %v", jsonError(err))
	}
	id := ""
	if len(head.ID) > 0 && !bytes.Equal(head.ID, []byte("null")) {
		if err := json.Unmarshal(head.ID, &id); err != nil {
			return "", nil, badRequest("id must be a string")
		}
		if len(id) > MaxIDBytes {
			return "", nil, badRequest("id is longer than %d bytes", MaxIDBytes)
		}
	}
	if head.Type == nil {
		return id, nil, badRequest("missing type")
	}
	newMsg, ok := known[*head.Type]
	if !ok {
		return id, nil, badRequest("unknown message type %.32q", *head.Type)
	}
	m := newMsg()
	if err := json.Unmarshal(data, m); err != nil {
		return id, nil, badRequest("%s: %v", *head.Type, jsonError(err))
	}
	return id, m, nil
}

// jsonError words encoding/json's errors for a client.
func jsonError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("field %q must be %s, not %s", te.Field, jsonKind(te.Type.Kind().String()), te.Value)
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice":
		return "an array"
	case "ptr", "struct":
		return "an object"
	}
	return k
}
