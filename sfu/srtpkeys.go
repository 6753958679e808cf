package sfu

import (
	"bytes"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/pion/dtls/v3"
	"github.com/pion/dtls/v3/pkg/crypto/prf"
	"github.com/pion/dtls/v3/pkg/protocol/extension"
	"github.com/pion/dtls/v3/pkg/protocol/handshake"
	"github.com/pion/srtp/v3"
)

// dtlsSecrets learns, from pion's DTLS hooks on one peer's SettingEngine,
// what that peer's SRTP keys derive from: the master secret and the client
// random (the key log), the server random, the cipher suite and the SRTP
// profile (the server hello the server sends). With them it is the RFC
// 5705 exporter of the DTLS connection, and gives the same SRTP keys as
// pion's own session (RFC 5764), for a send path of the server's own.
//
// The key log is pion's debugging hook (it warns that using it "compromises
// security"): here it goes to this struct only, in the memory of the
// process that holds the session's keys anyway, and is never written out.
//
// It knows the server hello only when the server is the DTLS server, which
// it is with browsers: it answers offers as the DTLS server, and browsers
// answer its offers as the DTLS client. Otherwise it has no keys.
type dtlsSecrets struct {
	mu           sync.Mutex
	clientRandom []byte // from the key log
	master       []byte
	serverRandom []byte // from the server hello
	suite        dtls.CipherSuiteID
	profile      srtp.ProtectionProfile
}

// errNoDTLSSecrets: the handshake is not done, or the server was not the
// DTLS server.
var errNoDTLSSecrets = errors.New("sfu: the DTLS secrets of this session are not known")

// Write takes the key log (NSS format: "CLIENT_RANDOM <client random>
// <master secret>", hex), one line per handshake.
func (s *dtlsSecrets) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(p, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) != 3 || string(f[0]) != "CLIENT_RANDOM" {
			continue
		}
		cr, err1 := hex.DecodeString(string(f[1]))
		ms, err2 := hex.DecodeString(string(f[2]))
		if err1 != nil || err2 != nil || len(cr) != handshake.RandomLength {
			continue
		}
		s.mu.Lock()
		s.clientRandom, s.master = cr, ms
		s.mu.Unlock()
	}
	return len(p), nil
}

// serverHello records the server hello the server sends, unchanged.
func (s *dtlsSecrets) serverHello(m handshake.MessageServerHello) handshake.Message {
	random := m.Random.MarshalFixed()
	s.mu.Lock()
	s.serverRandom = random[:]
	if m.CipherSuiteID != nil {
		s.suite = dtls.CipherSuiteID(*m.CipherSuiteID)
	}
	for _, e := range m.Extensions {
		if u, ok := e.(*extension.UseSRTP); ok && len(u.ProtectionProfiles) > 0 {
			s.profile = srtp.ProtectionProfile(u.ProtectionProfiles[0])
		}
	}
	s.mu.Unlock()
	return &m
}

// ExportKeyingMaterial is the DTLS 1.2 exporter (RFC 5705), as pion's
// dtls.State computes it: the suite's PRF of the master secret over the
// label and client random || server random.
func (s *dtlsSecrets) ExportKeyingMaterial(label string, context []byte, length int) ([]byte, error) {
	if len(context) != 0 {
		return nil, errors.New("sfu: exporter contexts are not supported")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.master == nil || s.serverRandom == nil {
		return nil, errNoDTLSSecrets
	}
	seed := make([]byte, 0, len(label)+2*handshake.RandomLength)
	seed = append(append(append(seed, label...), s.clientRandom...), s.serverRandom...)
	return prf.PHash(s.master, seed, length, prfHash(s.suite))
}

// prfHash is the hash of a cipher suite's TLS 1.2 PRF: SHA-384 for the
// SHA384 suites, SHA-256 for every other suite pion offers.
func prfHash(id dtls.CipherSuiteID) func() hash.Hash {
	switch id {
	case dtls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, dtls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384:
		return sha512.New384
	}
	return sha256.New
}

// srtpConfig is the SRTP configuration of the session as the server (the
// DTLS server) sees it: its own keys are Local, the client's Remote.
func (s *dtlsSecrets) srtpConfig() (*srtp.Config, error) {
	s.mu.Lock()
	profile := s.profile
	s.mu.Unlock()
	if profile == 0 {
		return nil, errNoDTLSSecrets
	}
	c := &srtp.Config{Profile: profile}
	if err := c.ExtractSessionKeysFromDTLS(s, false); err != nil {
		return nil, fmt.Errorf("sfu: srtp keys: %w", err)
	}
	return c, nil
}
