package signaling

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/tessera-rtc/tessera/rooms"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

// Code is a protocol error code (signaling/protocol).
type Code = protocol.Code

// The protocol's error codes.
const (
	CodeBadRequest    = protocol.CodeBadRequest
	CodeNotJoined     = protocol.CodeNotJoined
	CodeAlreadyJoined = protocol.CodeAlreadyJoined
	CodeUnauthorized  = protocol.CodeUnauthorized
	CodeRoomNotFound  = protocol.CodeRoomNotFound
	CodeRoomFull      = protocol.CodeRoomFull
	CodeBadSDP        = protocol.CodeBadSDP
	CodeNotFound      = protocol.CodeNotFound
	CodeForbidden     = protocol.CodeForbidden
	CodeInternal      = protocol.CodeInternal
	CodeUnavailable   = protocol.CodeUnavailable
)

// Codes lists every error code.
var Codes = protocol.Codes

// Errors of the protocol layer itself.
var (
	errBadRequest    = protocol.ErrBadRequest
	errNotJoined     = errors.New("join first")
	errAlreadyJoined = errors.New("already joined")
	errUnauthorized  = errors.New("unauthorized")
	errRateLimited   = errors.New("rate limit")
	// Of HTTP requests (WHIP):
	errMediaType = fmt.Errorf("%w: unsupported media type", errBadRequest)
	errTooLarge  = fmt.Errorf("%w: request too large", errBadRequest)
)

func badRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errBadRequest, fmt.Sprintf(format, args...))
}

// codeOf maps an error to its protocol code: the one place where the
// sentinel errors of every layer meet the protocol.
func codeOf(err error) Code {
	switch {
	case errors.Is(err, errBadRequest), errors.Is(err, rooms.ErrInvalid), errors.Is(err, sfu.ErrBadCandidate):
		return CodeBadRequest
	case errors.Is(err, errNotJoined), errors.Is(err, rooms.ErrLeft):
		return CodeNotJoined
	case errors.Is(err, errAlreadyJoined):
		return CodeAlreadyJoined
	case errors.Is(err, errUnauthorized), errors.Is(err, rooms.ErrUnauthorized):
		return CodeUnauthorized
	case errors.Is(err, rooms.ErrRoomNotFound):
		return CodeRoomNotFound
	case errors.Is(err, rooms.ErrRoomFull):
		return CodeRoomFull
	case errors.Is(err, sfu.ErrBadSDP), errors.Is(err, sfu.ErrNoPendingOffer):
		return CodeBadSDP
	case errors.Is(err, rooms.ErrNotFound):
		return CodeNotFound
	case errors.Is(err, rooms.ErrUnavailable), errors.Is(err, rooms.ErrMoved):
		return CodeUnavailable
	case errors.Is(err, rooms.ErrForbidden), errors.Is(err, sfu.ErrTooManyTracks), errors.Is(err, errRateLimited),
		errors.Is(err, rooms.ErrRoomLimit), errors.Is(err, sfu.ErrNotAllowed), errors.Is(err, rooms.ErrStillConnected):
		return CodeForbidden
	}
	return CodeInternal
}

// httpStatus maps an error of an HTTP request (WHIP) to its status, by
// the error's protocol code where HTTP has no closer one.
func httpStatus(err error) int {
	switch {
	case errors.Is(err, errMediaType):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, errTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errRateLimited):
		return http.StatusTooManyRequests
	case errors.Is(err, rooms.ErrShutdown):
		return http.StatusServiceUnavailable
	}
	switch codeOf(err) {
	case CodeBadRequest, CodeBadSDP:
		return http.StatusBadRequest
	case CodeUnauthorized:
		return http.StatusUnauthorized
	case CodeForbidden:
		return http.StatusForbidden
	case CodeRoomNotFound, CodeNotFound:
		return http.StatusNotFound
	case CodeRoomFull, CodeUnavailable:
		return http.StatusServiceUnavailable
	case CodeNotJoined, CodeAlreadyJoined:
		return http.StatusConflict
	}
	return http.StatusInternalServerError
}
