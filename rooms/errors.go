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
	// ErrUnauthorized: the room needs a token and none was given, or the
	// token is invalid, expired, signed with an unknown key or for another room.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrResumeExpired: a participant whose connection dropped was not
	// resumed within the grace period.
	ErrResumeExpired = errors.New("not resumed in time")
	// ErrStillConnected: a resume for a participant whose connection still
	// answers; only a connection that stopped answering is taken over.
	ErrStillConnected = errors.New("the participant's connection still answers")
	// ErrResumedElsewhere: another connection resumed the participant.
	ErrResumedElsewhere = errors.New("resumed by another connection")
	// ErrTokenExpired: the participant's token expired and no fresh one
	// was presented (Participant.Refresh).
	ErrTokenExpired = errors.New("token expired")
	// ErrRoomLimit: the server hosts as many rooms as it may.
	ErrRoomLimit = errors.New("too many rooms")
	// ErrUnavailable: what the request needs cannot be reached now (the
	// cluster's directory, or the node hosting the room); trying again
	// later may work.
	ErrUnavailable = errors.New("unavailable")
	// ErrMoved: the room is hosted by another node from now on (this one
	// drains, or lost the room's placement): the client should join again.
	ErrMoved = errors.New("the room moved to another node")
)
