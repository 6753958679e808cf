// Package rooms keeps the registry of rooms and participants and the pub-sub
// map: who publishes which track and who is subscribed to which. It enforces
// room limits, creates rooms on demand and removes them when empty, and fans
// room events out to participants.
//
// Each room is owned by one goroutine: every change to its membership or
// pub-sub map runs there, in order, so every participant sees events in the
// same order and no lock is held while calling out. A participant's
// connection to its client is the Conn interface, which the signaling
// package implements; the media side is an sfu.Peer.
package rooms
