package rooms

import "errors"

// Sentinel errors; the signaling package maps each to a protocol error code.
var (
	ErrRoomNotFound = errors.New("room not found")
	ErrRoomFull     = errors.New("room is full")
	ErrNotFound     = errors.New("not found")
	ErrForbidden    = errors.New("forbidden")
	ErrInvalid      = errors.New("invalid request")
	ErrLeft         = errors.New("participant has left")
	ErrShutdown     = errors.New("server shutting down")
)
