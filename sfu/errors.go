package sfu

import "errors"

// Sentinel errors; callers check them with errors.Is.
var (
	// ErrBadSDP wraps every problem with a description a client sent.
	ErrBadSDP = errors.New("bad sdp")
	// ErrOfferCollision reports a client offer ignored because the server's
	// own offer is outstanding (the server is the impolite peer).
	ErrOfferCollision = errors.New("offer collides with the server's outstanding offer")
	// ErrNoPendingOffer reports an answer when no server offer is outstanding.
	ErrNoPendingOffer = errors.New("no offer is outstanding")
	// ErrBadCandidate reports an ICE candidate that cannot be applied.
	ErrBadCandidate = errors.New("bad ice candidate")
	// ErrClosed reports an operation on a closed peer.
	ErrClosed = errors.New("peer closed")
	// ErrICETimeout reports a peer whose ICE did not connect in time.
	ErrICETimeout = errors.New("ice did not connect in time")
	// ErrICEFailed reports a peer whose ICE connection failed.
	ErrICEFailed = errors.New("ice failed")
	// ErrRemoteClosed reports a peer whose client closed its
	// PeerConnection (DTLS close_notify): it will not send or receive again.
	ErrRemoteClosed = errors.New("the client closed its PeerConnection")
	// ErrTooManyTracks reports an offer publishing more tracks than allowed.
	ErrTooManyTracks = errors.New("too many published tracks")
	// ErrNotAllowed reports an offer publishing from a peer that may not
	// publish (PeerConfig.NoPublish).
	ErrNotAllowed = errors.New("not allowed")
)
