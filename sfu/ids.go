package sfu

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/binary"
)

var idEncoding = base32.NewEncoding("abcdefghijkmnpqrstuvwxyz23456789").WithPadding(base32.NoPadding)

// NewID returns a random identifier with the given prefix, e.g. "t-k3m9x2q7ab5c".
// 60 random bits: unique enough for tracks and participants of one server.
func NewID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:]) // never fails (crypto/rand documents it)
	return prefix + idEncoding.EncodeToString(b[:])[:12]
}

// randUint32 returns a random SSRC.
func randUint32() uint32 {
	var b [4]byte
	_, _ = rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}
