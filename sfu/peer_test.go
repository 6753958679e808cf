package sfu

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"
)

func TestForwardVP8BetweenTwoPeers(t *testing.T) {
	e := testEngine(t)
	pub := newPair(t, e)
	local, up := pub.publish(webrtc.MimeTypeVP8)
	if up.Kind() != webrtc.RTPCodecTypeVideo || up.PublisherID() != pub.server.ID() {
		t.Fatalf("up track = %+v", up)
	}

	sub := newPair(t, e)
	tr := sub.subscribeVP8(local, up)
	if tr.StreamID() != pub.server.ID() || tr.ID() != up.ID() {
		t.Errorf("msid = %s %s, want %s %s", tr.StreamID(), tr.ID(), pub.server.ID(), up.ID())
	}
	readVP8(t, tr, 100)
	if d, ok := sub.server.DownTrack(up.ID()); !ok || d.Stats().Packets < 100 {
		t.Errorf("subscription counted %+v packets, want at least the 100 read", d.Stats())
	}
	ps := pub.server.Stats()
	if ps.Connection != "connected" || ps.ICE != "connected" || ps.DTLS != "connected" || ps.LocalCandidate == "" || ps.RemoteCandidate == "" {
		t.Errorf("publisher stats: %+v", ps)
	}
	if len(ps.Published) != 1 || ps.Published[0].ID != up.ID() || ps.Published[0].Layers[0].Packets < 100 || ps.Published[0].Subscribers != 1 {
		t.Errorf("published: %+v", ps.Published)
	}
	if len(ps.Negotiation) == 0 {
		t.Error("no negotiation history")
	}
	ss := sub.server.Stats()
	if len(ss.Subscribed) != 1 || ss.Subscribed[0].Track != up.ID() || ss.Subscribed[0].Publisher != pub.server.ID() || ss.Subscribed[0].Packets < 100 {
		t.Errorf("subscribed: %+v", ss.Subscribed)
	}
	if raw := sub.server.RawStats(); len(raw) == 0 {
		t.Error("no pion stats")
	}
	tot := e.Totals()
	if tot.Peers != 2 || tot.Tracks != 1 || tot.Subscriptions != 1 || tot.ForwardedPackets < 100 || tot.ReceivedPackets < tot.ForwardedPackets {
		t.Errorf("totals: %+v", tot)
	}
	_ = sub.server.Close()
	after := e.Totals()
	if after.Subscriptions != 0 || after.ForwardedPackets < tot.ForwardedPackets {
		t.Errorf("totals after the subscriber left: %+v (before %+v): counters must not shrink", after, tot)
	}
}

// TestOfferCollision plays both sides of a collision by hand: the server
// ignores a client offer made while its own is outstanding, and accepts it
// once the client has answered.
func TestOfferCollision(t *testing.T) {
	e := testEngine(t)
	pub := newPair(t, e)
	_, up := pub.publish(webrtc.MimeTypeVP8)

	sub := newPair(t, e)
	sub.manual = true
	if _, err := sub.client.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	if err := sub.offer(); err != nil {
		t.Fatal(err)
	}
	serverOffer := sub.subscribe(up)

	// The client offers too, before answering: the server must ignore it.
	tr := sub.addAudio()
	if err := tr.SetMid("client-a"); err != nil {
		t.Fatal(err)
	}
	clientOffer, err := sub.client.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	replied := false
	err = sub.server.HandleOffer(clientOffer.SDP, func(string) { replied = true })
	if !errors.Is(err, ErrOfferCollision) || replied {
		t.Fatalf("colliding offer: err=%v replied=%v, want ErrOfferCollision and no answer", err, replied)
	}
	if len(sub.published) != 0 {
		t.Fatal("a colliding offer published a track")
	}

	// The client answers the server's offer, then offers again: accepted.
	answer, err := sub.answer(serverOffer)
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.offer(); err != nil {
		t.Fatalf("offer after the collision: %v", err)
	}
	sub.mu.Lock()
	n := len(sub.published)
	sub.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d tracks published after re-offering, want 1", n)
	}

	// A second answer, with no offer outstanding, is refused.
	if err := sub.server.HandleAnswer(answer); !errors.Is(err, ErrNoPendingOffer) {
		t.Fatalf("stray answer: %v, want ErrNoPendingOffer", err)
	}
}

// TestCoalescedOffers: changes made while an offer is outstanding go out
// together in the next offer, never in a second concurrent one.
func TestCoalescedOffers(t *testing.T) {
	e := testEngine(t)
	pub := newPair(t, e)
	var ups []*UpTrack
	for range 3 {
		_, up := pub.publish(webrtc.MimeTypeVP8)
		ups = append(ups, up)
	}
	sub := newPair(t, e)
	sub.manual = true
	if _, err := sub.client.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	if err := sub.offer(); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.server.Subscribe(ups[0]); err != nil {
		t.Fatal(err)
	}
	first := <-sub.offers
	for _, up := range ups[1:] {
		if _, err := sub.server.Subscribe(up); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case o := <-sub.offers:
		t.Fatalf("second offer while the first is outstanding:\n%s", o)
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := sub.answer(first); err != nil {
		t.Fatal(err)
	}
	var second string
	select {
	case second = <-sub.offers:
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting changes were not offered")
	}
	for _, up := range ups {
		if !strings.Contains(second, up.ID()) {
			t.Errorf("the coalesced offer lacks track %s", up.ID())
		}
	}
	if _, err := sub.answer(second); err != nil {
		t.Fatal(err)
	}
}

// TestOfferRightAfterFirstAnswer: a client that answers the server's first
// offer and offers at once (Firefox joining a room) must get an answer with
// the server's ICE credentials unchanged; a changed ufrag is an ICE restart
// the client never asked for, and Firefox refuses the answer.
func TestOfferRightAfterFirstAnswer(t *testing.T) {
	e := testEngine(t)
	pub := newPair(t, e)
	_, up := pub.publish(webrtc.MimeTypeVP8)
	for i := range 5 {
		sub := newPair(t, e)
		sub.manual = true
		serverOffer := sub.subscribe(up)
		if _, err := sub.answer(serverOffer); err != nil {
			t.Fatal(err)
		}
		sub.addAudio()
		if err := sub.offer(); err != nil {
			t.Fatal(err)
		}
		want, got := iceUfrag(serverOffer), iceUfrag(sub.client.RemoteDescription().SDP)
		if want == "" || got != want {
			t.Fatalf("run %d: the server answered with ice-ufrag %q, its offer had %q: an ICE restart nobody asked for", i, got, want)
		}
	}
}

func iceUfrag(sdp string) string {
	for _, l := range strings.Split(sdp, "\r\n") {
		if v, ok := strings.CutPrefix(l, "a=ice-ufrag:"); ok {
			return v
		}
	}
	return ""
}
