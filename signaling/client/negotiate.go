package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pion/rtcp"
	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

// Negotiation: the client is the polite peer. Its offers wait for their
// answer before they are applied; a server offer that crosses one drops it
// and it is made again once the server's is answered.

// Renegotiate makes the client offer (after adding or removing transceivers).
func (c *Client) Renegotiate() error {
	c.negMu.Lock()
	defer c.negMu.Unlock()
	return c.offerLocked()
}

func (c *Client) offerLocked() error {
	if c.pendingOffer != nil || c.pc.SignalingState() != webrtc.SignalingStateStable {
		c.needOffer = true
		return nil
	}
	c.needOffer = false
	offer, err := c.pc.CreateOffer(nil)
	if err != nil {
		return err
	}
	c.pendingOffer = &offer
	return c.send(c.id(), protocol.Offer{SDP: offer.SDP})
}

func (c *Client) handleAnswer(sdp string) {
	c.negMu.Lock()
	defer c.negMu.Unlock()
	if c.pendingOffer == nil {
		return
	}
	offer := *c.pendingOffer
	c.pendingOffer = nil
	if err := c.pc.SetLocalDescription(offer); err != nil {
		c.events.add(Event{Type: "client-error", Error: &Error{Code: "client", Message: "apply own offer: " + err.Error()}})
		return
	}
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: sdp}); err != nil {
		c.events.add(Event{Type: "client-error", Error: &Error{Code: "client", Message: "apply answer: " + err.Error()}})
		return
	}
	c.applyCandidates()
	if c.needOffer {
		_ = c.offerLocked()
	}
}

func (c *Client) handleOffer(sdp string) {
	c.negMu.Lock()
	defer c.negMu.Unlock()
	if c.pendingOffer != nil {
		// Collision: the server ignored our offer. Drop it and offer again later.
		c.collisions.Add(1)
		c.pendingOffer = nil
		c.needOffer = true
	}
	sdp, inactive := unstopInactive(sdp)
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: sdp}); err != nil {
		c.events.add(Event{Type: "client-error", Error: &Error{Code: "client", Message: "apply offer: " + err.Error()}})
		return
	}
	answer, err := c.pc.CreateAnswer(nil)
	if err == nil {
		err = c.pc.SetLocalDescription(answer)
	}
	if err != nil {
		c.events.add(Event{Type: "client-error", Error: &Error{Code: "client", Message: "answer: " + err.Error()}})
		return
	}
	c.applyCandidates()
	_ = c.send("", protocol.Answer{SDP: answerInactive(answer.SDP, inactive)})
	if c.needOffer {
		_ = c.offerLocked()
	}
}

func (c *Client) handleCandidate(init *webrtc.ICECandidateInit) {
	if init == nil || init.Candidate == "" {
		return
	}
	c.negMu.Lock()
	defer c.negMu.Unlock()
	if c.pc.RemoteDescription() == nil {
		c.remoteCands = append(c.remoteCands, *init)
		return
	}
	_ = c.pc.AddICECandidate(*init)
}

func (c *Client) applyCandidates() {
	for _, cand := range c.remoteCands {
		_ = c.pc.AddICECandidate(cand)
	}
	c.remoteCands = nil
}

// Publish adds track as a sendonly transceiver, negotiates, and returns the
// server's id for it once `track-published` names its mid.
func (c *Client) Publish(ctx context.Context, track webrtc.TrackLocal, init ...webrtc.RTPTransceiverInit) (string, *webrtc.RTPTransceiver, error) {
	ti := webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}
	if len(init) > 0 {
		ti = init[0]
	}
	mark := c.events.mark()
	tr, err := c.pc.AddTransceiverFromTrack(track, ti)
	if err != nil {
		return "", nil, err
	}
	c.drainRTCP(tr.Sender())
	if err := offerTrackCodecs(tr, track, c.opt.OnlyTrackCodecs); err != nil {
		return "", nil, err
	}
	// pion assigns mids when it creates an offer, and an offer dropped in a
	// collision cannot give them back: numeric mids could then clash with
	// the ones the server assigns. The client's own mids are not numeric.
	if err := tr.SetMid(fmt.Sprintf("c%d", c.nextMid.Add(1))); err != nil {
		return "", nil, err
	}
	if err := c.Renegotiate(); err != nil {
		return "", nil, err
	}
	ev, err := c.events.wait(ctx, mark, func(e Event) bool {
		return e.Type == "track-published" && e.Track.Mid != "" && e.Track.Mid == tr.Mid()
	})
	if err != nil {
		return "", nil, fmt.Errorf("waiting for track-published: %w", err)
	}
	return ev.Track.ID, tr, nil
}

// PublishSimulcast publishes one video track as several simulcast layers,
// one local track per layer (each made with webrtc.WithRTPStreamID), lowest
// quality first.
func (c *Client) PublishSimulcast(ctx context.Context, layers ...webrtc.TrackLocal) (string, *webrtc.RTPTransceiver, error) {
	if len(layers) == 0 {
		return "", nil, errors.New("no layers")
	}
	mark := c.events.mark()
	tr, err := c.pc.AddTransceiverFromTrack(layers[0], webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
	if err != nil {
		return "", nil, err
	}
	c.drainRTCP(tr.Sender())
	if err := offerTrackCodecs(tr, layers[0], c.opt.OnlyTrackCodecs); err != nil {
		return "", nil, err
	}
	if err := tr.SetMid(fmt.Sprintf("c%d", c.nextMid.Add(1))); err != nil {
		return "", nil, err
	}
	for _, l := range layers[1:] {
		if err := tr.Sender().AddEncoding(l); err != nil {
			return "", nil, err
		}
	}
	if err := c.Renegotiate(); err != nil {
		return "", nil, err
	}
	ev, err := c.events.wait(ctx, mark, func(e Event) bool {
		return e.Type == "track-published" && e.Track.Mid == tr.Mid()
	})
	if err != nil {
		return "", nil, fmt.Errorf("waiting for track-published: %w", err)
	}
	return ev.Track.ID, tr, nil
}

// offerTrackCodecs makes tr offer first the codecs track can be sent with
// (only those, with only set). pion offers every codec of the kind in the
// media engine's order and the server answers with the first it forwards:
// a track of another codec (H264 where VP8 comes first) could then not be
// bound to what was negotiated. The codecs of the track's mime type come
// first, those with its format parameters before the others, each followed
// by its retransmission format; then the rest, as a browser application's
// setCodecPreferences does to prefer a codec. The transceiver is left
// alone when pion's order is that already.
func offerTrackCodecs(tr *webrtc.RTPTransceiver, track webrtc.TrackLocal, only bool) error {
	ct, ok := track.(interface {
		Codec() webrtc.RTPCodecCapability
	})
	if !ok {
		return nil
	}
	want := ct.Codec()
	all := tr.Sender().GetParameters().Codecs
	if len(all) == 0 {
		return nil
	}
	var exact, other, rest []webrtc.RTPCodecParameters
	for _, c := range all {
		switch {
		case strings.EqualFold(c.MimeType, webrtc.MimeTypeRTX):
		case !strings.EqualFold(c.MimeType, want.MimeType):
			if !only {
				rest = append(rest, c)
			}
		case sameFmtp(c.SDPFmtpLine, want.SDPFmtpLine):
			exact = append(exact, c)
		default:
			other = append(other, c)
		}
	}
	if len(exact)+len(other) == 0 {
		return fmt.Errorf("%w: no %s among the negotiable codecs", webrtc.ErrUnsupportedCodec, want.MimeType)
	}
	var prefs []webrtc.RTPCodecParameters
	for _, c := range slices.Concat(exact, other, rest) {
		prefs = append(prefs, c)
		apt := fmt.Sprintf("apt=%d", c.PayloadType)
		for _, r := range all {
			if strings.EqualFold(r.MimeType, webrtc.MimeTypeRTX) && strings.TrimSpace(r.SDPFmtpLine) == apt {
				prefs = append(prefs, r)
			}
		}
	}
	if !only && slices.EqualFunc(prefs, all, func(a, b webrtc.RTPCodecParameters) bool { return a.PayloadType == b.PayloadType }) {
		return nil
	}
	return tr.SetCodecPreferences(prefs)
}

// sameFmtp reports whether two fmtp lines carry the same parameters, in
// any order.
func sameFmtp(a, b string) bool {
	parse := func(l string) map[string]string {
		m := map[string]string{}
		for _, kv := range strings.Split(l, ";") {
			if k, v, _ := strings.Cut(strings.TrimSpace(kv), "="); k != "" {
				m[strings.ToLower(k)] = v
			}
		}
		return m
	}
	return maps.Equal(parse(a), parse(b))
}

// drainRTCP reads a sender's RTCP, so that pion's interceptors answer the
// server's NACKs; with OnRTCP set the packets are also handed over.
func (c *Client) drainRTCP(s *webrtc.RTPSender) {
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := s.Read(buf)
			if err != nil {
				return
			}
			if f := c.opt.OnRTCP; f != nil {
				if pkts, err := rtcp.Unmarshal(buf[:n]); err == nil {
					f(s, pkts)
				}
			}
		}
	}()
}
