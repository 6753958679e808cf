// Package signaling serves the WebSocket protocol (docs/protocol.md): it
// decodes and validates client messages, dispatches them to the room
// registry and the participant's Peer, and writes the server's replies and
// room events.
//
// Per socket there is one reader goroutine, which owns the session and
// handles messages in order, and one writer goroutine, the only one writing
// data frames, each with a deadline; it also pings. Room events are queued
// without blocking: a client too slow to read them is disconnected instead
// of stalling its room.
//
// WHIP (RFC 9725, docs/broadcast.md) is the other way in: an encoder
// publishes with one HTTP request (whip.go), as a participant whose
// session is never renegotiated.
package signaling
