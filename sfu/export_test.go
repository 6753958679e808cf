package sfu

import "github.com/pion/srtp/v3"

// SRTPConfig exposes, to the package's external tests, the SRTP keys the
// server derives for p's session.
func SRTPConfig(p *Peer) (*srtp.Config, error) { return p.secrets.srtpConfig() }
