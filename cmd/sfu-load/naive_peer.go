// One participant of the naive SFU (naive.go): its socket, its
// PeerConnection and the negotiation of docs/protocol.md, as far as
// sfu-load's participants need it. A reference, not a product.

package main

import (
	"fmt"
	"sync"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

// naivePeer is one participant. Its loop (run) handles its messages and
// owns the negotiation; the server (never holding its lock) and pion's
// callbacks only send on its socket and kick it.
type naivePeer struct {
	sfu  *naiveSFU
	ws   *websocket.Conn
	kick chan struct{} // capacity 1: tracks to subscribe to may have appeared

	writeMu sync.Mutex // serializes writes to ws

	// Set by join before the peer is known to the server or to pion's
	// callbacks; read-only after.
	id, name      string
	autoSubscribe bool
	pc            *webrtc.PeerConnection

	mu        sync.Mutex                // guards published; taken before the server's
	published map[string]protocol.Track // the participant's tracks, by mid (read by OnTrack)

	// Owned by run.
	sent       map[*naiveTrack]bool      // tracks added to pc
	serverMids map[string]bool           // sections pc made to send on
	offering   bool                      // an offer of ours awaits its answer
	needOffer  bool                      // offer again once it is answered
	cands      []webrtc.ICECandidateInit // the client's, before a remote description
}

// naiveFrame is a decoded client message.
type naiveFrame struct {
	id  string
	msg protocol.Message
	err error // the frame was not a valid message
}

func newNaivePeer(s *naiveSFU, ws *websocket.Conn) *naivePeer {
	return &naivePeer{
		sfu: s, ws: ws, kick: make(chan struct{}, 1),
		published: map[string]protocol.Track{},
		sent:      map[*naiveTrack]bool{}, serverMids: map[string]bool{},
	}
}

// run handles the socket's messages until it closes or the participant
// leaves, then removes the participant.
func (p *naivePeer) run() {
	in := make(chan naiveFrame)
	done := make(chan struct{})
	go p.read(in, done)
	defer func() {
		close(done)
		_ = p.ws.Close()
		if p.pc != nil {
			p.sfu.leave(p)
			_ = p.pc.Close() // ends the readers of its tracks
		}
	}()
	for {
		select {
		case f, ok := <-in:
			if !ok || !p.handle(f) {
				return
			}
		case <-p.kick:
			p.subscribe()
		}
	}
}

// read decodes the socket's frames into in until the socket or done
// closes.
func (p *naivePeer) read(in chan<- naiveFrame, done <-chan struct{}) {
	defer close(in)
	for {
		_, data, err := p.ws.ReadMessage()
		if err != nil {
			return
		}
		id, m, err := protocol.Decode(data, protocol.ClientMessages)
		if err == nil {
			err = protocol.Validate(m)
		}
		select {
		case in <- naiveFrame{id: id, msg: m, err: err}:
		case <-done:
			return
		}
	}
}

// handle handles one message; false ends the session.
func (p *naivePeer) handle(f naiveFrame) bool {
	if f.err != nil {
		p.fail(f.id, protocol.CodeBadRequest, f.err.Error())
		return true
	}
	if _, ok := f.msg.(*protocol.Join); !ok && p.pc == nil {
		p.fail(f.id, protocol.CodeNotJoined, "join first")
		return true
	}
	switch m := f.msg.(type) {
	case *protocol.Join:
		p.join(f.id, m)
	case *protocol.Offer:
		p.answer(f.id, m.SDP)
	case *protocol.Answer:
		p.answered(f.id, m.SDP)
	case *protocol.Candidate:
		p.candidate(f.id, m.Candidate)
	case *protocol.Leave:
		_ = p.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
		return false
	default:
		p.fail(f.id, protocol.CodeBadRequest, fmt.Sprintf("the naive reference SFU does not implement %q", f.msg.Type()))
	}
	return true
}

// join makes the PeerConnection (the example's: a default configuration),
// answers joined and subscribes to what is already published.
func (p *naivePeer) join(id string, m *protocol.Join) {
	if p.pc != nil {
		p.fail(id, protocol.CodeAlreadyJoined, "already joined")
		return
	}
	pc, err := p.sfu.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		p.fail(id, protocol.CodeInternal, err.Error())
		return
	}
	pc.OnICECandidate(func(c *webrtc.ICECandidate) {
		if c == nil {
			return // as the example: no end-of-candidates
		}
		init := c.ToJSON()
		p.send("", protocol.Candidate{Candidate: &init})
	})
	pc.OnConnectionStateChange(func(st webrtc.PeerConnectionState) {
		if st == webrtc.PeerConnectionStateFailed {
			_ = pc.Close()
		}
	})
	pc.OnTrack(func(remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) { p.onTrack(pc, remote, recv) })
	p.pc, p.id, p.name = pc, p.sfu.newID("p-"), m.Name
	p.autoSubscribe = m.AutoSubscribe == nil || *m.AutoSubscribe
	others := p.sfu.join(p)
	p.send(id, protocol.Joined{
		Participant:  protocol.ParticipantRef{ID: p.id, Name: p.name},
		Participants: others, ICEServers: []protocol.ICEServer{},
	})
	p.subscribe()
}

// onTrack forwards a published track from its first packet to its end.
func (p *naivePeer) onTrack(pc *webrtc.PeerConnection, remote *webrtc.TrackRemote, recv *webrtc.RTPReceiver) {
	mid := ""
	for _, tr := range pc.GetTransceivers() {
		if tr.Receiver() == recv {
			mid = tr.Mid()
		}
	}
	p.mu.Lock()
	info, ok := p.published[mid]
	p.mu.Unlock()
	if !ok {
		return
	}
	local, err := webrtc.NewTrackLocalStaticRTP(remote.Codec().RTPCodecCapability, info.ID, info.Participant)
	if err != nil {
		return
	}
	info.Mid = ""
	t := &naiveTrack{info: info, local: local, pub: pc, ssrc: uint32(remote.SSRC())}
	p.sfu.addTrack(t)
	defer p.sfu.removeTrack(t)
	t.forward(remote)
}

// kickSubscribe tells run to look for new tracks; it never blocks.
func (p *naivePeer) kickSubscribe() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// subscribe adds every track of the others not added yet (with
// autoSubscribe) and offers them; each publisher gets a PLI, as the
// example's dispatchKeyFrame after a renegotiation. As in the example,
// the senders' RTCP is never read.
func (p *naivePeer) subscribe() {
	if !p.autoSubscribe || p.pc == nil {
		return
	}
	var added []*naiveTrack
	for _, t := range p.sfu.tracksFor(p) {
		if p.sent[t] {
			continue
		}
		if _, err := p.pc.AddTrack(t.local); err != nil {
			continue
		}
		p.sent[t] = true
		added = append(added, t)
	}
	if len(added) == 0 {
		return
	}
	p.offer()
	for _, t := range added {
		t.keyframe()
	}
}

// offer sends an offer, or, with one outstanding, one more after it.
func (p *naivePeer) offer() {
	if p.offering {
		p.needOffer = true
		return
	}
	p.needOffer = false
	o, err := p.pc.CreateOffer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(o)
	}
	if err != nil {
		p.fail("", protocol.CodeInternal, "offer: "+err.Error())
		return
	}
	for _, tr := range p.pc.GetTransceivers() {
		if tr.Sender() != nil && tr.Sender().Track() != nil {
			p.serverMids[tr.Mid()] = true
		}
	}
	p.offering = true
	p.send("", protocol.Offer{SDP: o.SDP})
}

// answer answers a client's offer and announces the tracks it publishes.
func (p *naivePeer) answer(id, offer string) {
	if p.offering {
		return // the offers crossed: the protocol's server ignores the client's
	}
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeOffer, SDP: offer}); err != nil {
		p.fail(id, protocol.CodeBadSDP, err.Error())
		return
	}
	ans, err := p.pc.CreateAnswer(nil)
	if err == nil {
		err = p.pc.SetLocalDescription(ans)
	}
	if err != nil {
		p.fail(id, protocol.CodeBadSDP, err.Error())
		return
	}
	p.addCandidates()
	tracks := p.publications(offer)
	p.send(id, protocol.Answer{SDP: ans.SDP})
	for _, t := range tracks {
		p.sfu.announce(p, t)
	}
	if p.needOffer {
		p.offer()
	}
}

// publications records the new tracks of an offer: its audio and video
// sections the client sends on, except those the server made.
func (p *naivePeer) publications(offer string) []protocol.Track {
	var d sdp.SessionDescription
	if err := d.UnmarshalString(offer); err != nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []protocol.Track
	for _, m := range d.MediaDescriptions {
		kind := m.MediaName.Media
		mid, _ := m.Attribute(sdp.AttrKeyMID)
		_, recvonly := m.Attribute(sdp.AttrKeyRecvOnly)
		_, inactive := m.Attribute(sdp.AttrKeyInactive)
		_, known := p.published[mid]
		if (kind != "audio" && kind != "video") || recvonly || inactive || known || p.serverMids[mid] {
			continue
		}
		t := protocol.Track{ID: p.sfu.newID("t-"), Participant: p.id, Kind: kind, Layers: []string{}, Mid: mid}
		p.published[mid] = t
		out = append(out, t)
	}
	return out
}

// answered applies the client's answer to the outstanding offer.
func (p *naivePeer) answered(id, answer string) {
	if !p.offering {
		p.fail(id, protocol.CodeBadSDP, "no offer outstanding")
		return
	}
	p.offering = false
	if err := p.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: answer}); err != nil {
		p.fail(id, protocol.CodeBadSDP, err.Error())
		return
	}
	p.addCandidates()
	if p.needOffer {
		p.offer()
	}
}

// candidate applies a client's candidate, or keeps it until there is a
// remote description.
func (p *naivePeer) candidate(id string, c *webrtc.ICECandidateInit) {
	if c == nil || c.Candidate == "" {
		return
	}
	if p.pc.RemoteDescription() == nil {
		p.cands = append(p.cands, *c)
		return
	}
	if err := p.pc.AddICECandidate(*c); err != nil {
		p.fail(id, protocol.CodeBadRequest, "candidate: "+err.Error())
	}
}

func (p *naivePeer) addCandidates() {
	for _, c := range p.cands {
		_ = p.pc.AddICECandidate(c)
	}
	p.cands = nil
}

// send writes m to the socket. A failed write closes the socket, which
// ends the session at its reader.
func (p *naivePeer) send(id string, m protocol.Message) {
	data, err := protocol.Encode(id, m)
	if err != nil {
		return
	}
	p.writeMu.Lock()
	defer p.writeMu.Unlock()
	_ = p.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if err := p.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		_ = p.ws.Close()
	}
}

func (p *naivePeer) fail(id string, code protocol.Code, msg string) {
	p.send(id, protocol.Error{Code: code, Message: msg})
}
