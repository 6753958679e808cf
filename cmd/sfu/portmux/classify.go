// Package portmux shares one TCP port between everything a client may need
// of the server: HTTP(S) and the WebSocket, TURN over TCP, TURN over TLS and
// ICE over TCP. Each connection is told apart by its first bytes: a TLS
// ClientHello, an HTTP request line, a STUN message (TURN over TCP,
// RFC 8656), or a STUN message behind a two-byte length (ICE-TCP framing,
// RFC 4571). Inside TLS, the ALPN protocol decides ("stun.turn" is TURN,
// RFC 7443), and failing that the first decrypted bytes do.
//
// A connection must say what it is within a deadline, and only so many may
// be undecided at once, per address and in total: a client that sends
// nothing, or half a header, holds a slot for the deadline and no more.
package portmux

import "encoding/binary"

// Kind is what a connection carries.
type Kind int

const (
	Unknown Kind = iota // nothing the server speaks: the connection is closed
	HTTP                // an HTTP/1.x request line
	TLS                 // a TLS handshake record
	STUN                // a STUN message: TURN over TCP (or, inside TLS, over TLS)
	ICETCP              // a STUN message framed by a 16-bit length (RFC 4571)
)

func (k Kind) String() string {
	switch k {
	case HTTP:
		return "http"
	case TLS:
		return "tls"
	case STUN:
		return "stun"
	case ICETCP:
		return "ice-tcp"
	}
	return "unknown"
}

// ClassifyLen is the most bytes Classify needs to decide.
const ClassifyLen = 10

const stunMagicCookie = 0x2112a442

// Classify reports what a connection that starts with b carries. decided
// is false while more bytes are needed; once decided, more bytes do not
// change the answer.
func Classify(b []byte) (k Kind, decided bool) {
	if len(b) == 0 {
		return Unknown, false
	}
	switch c := b[0]; {
	case c == 0x16: // TLS handshake record, then the major version 3
		if len(b) < 2 {
			return Unknown, false
		}
		if b[1] == 0x03 {
			return TLS, true
		}
		return Unknown, true
	case c >= 'A' && c <= 'Z': // a method: GET, POST, OPTIONS...
		return HTTP, true
	case c&0xc0 != 0:
		return Unknown, true
	}
	// The first two bits are zero: a STUN message type, or the high byte
	// of a frame length. The magic cookie tells them apart: it sits at
	// offset 4 of a STUN message, at offset 6 of a framed one.
	if len(b) >= 8 && binary.BigEndian.Uint32(b[4:8]) == stunMagicCookie {
		return STUN, true
	}
	if len(b) < ClassifyLen {
		if len(b) >= 8 && !cookiePrefix(b[6:8]) {
			return Unknown, true
		}
		return Unknown, false
	}
	if b[2]&0xc0 == 0 && binary.BigEndian.Uint32(b[6:10]) == stunMagicCookie {
		return ICETCP, true
	}
	return Unknown, true
}

// cookiePrefix reports whether b could begin the magic cookie.
func cookiePrefix(b []byte) bool {
	var c [4]byte
	binary.BigEndian.PutUint32(c[:], stunMagicCookie)
	for i, x := range b {
		if x != c[i] {
			return false
		}
	}
	return true
}
