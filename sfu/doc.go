// Package sfu is the media plane: one webrtc.API shared by every peer, one
// PeerConnection per participant (Peer), a reader per published track
// (UpTrack) and a forwarder per subscription (DownTrack) that rewrites SSRC,
// payload type, sequence numbers and timestamps so each subscriber sees one
// continuous stream.
//
// The package knows nothing of WebSockets, JSON or rooms: a Peer talks to the
// outside through the Handler it is given, and callers drive negotiation
// with HandleOffer, HandleAnswer and AddCandidate.
//
// Forwarding allocates nothing per packet and takes no lock per packet per
// subscriber: the subscriber list of an UpTrack is a copy-on-write slice, and
// the per-subscriber rewrite state is owned by whichever goroutine forwards
// that track (serialized by one per-track mutex, uncontended unless the track
// has several simulcast layers).
package sfu
