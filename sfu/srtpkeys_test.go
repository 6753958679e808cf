package sfu_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/pion/srtp/v3"
	"github.com/pion/webrtc/v4"
	st "github.com/tessera-rtc/tessera/internal/signalingtest"
	"github.com/tessera-rtc/tessera/internal/testutil"
	"github.com/tessera-rtc/tessera/sfu"
	"github.com/tessera-rtc/tessera/signaling/client"
)

// TestSRTPKeysMatchPion: the SRTP keys the server derives from its DTLS
// hooks are those of pion's own session. What pion sent a subscriber, as
// captured on the (virtual) network, decrypts with them into the payloads
// the publisher sent, and encrypting that again gives the very bytes pion
// put on the wire.
func TestSRTPKeysMatchPion(t *testing.T) {
	ctx := testutil.Context(t)
	vn := st.NewVNet(t)
	srv := st.NewServer(t, st.Options{SFU: sfu.Config{Net: vn.Host("10.0.0.1")}})
	pub := srv.Join(ctx, "keys", client.Options{API: vn.API(vn.Host("10.0.0.2"))})
	wire := vn.Capture("10.0.0.3")
	sub := srv.Join(ctx, "keys", client.Options{API: vn.API(vn.Host("10.0.0.3"))})
	st.Publish(ctx, t, pub, "video")
	var tr *webrtc.TrackRemote
	select {
	case tr = <-sub.Tracks():
	case <-ctx.Done():
		t.Fatal("the subscriber got no track")
	}
	recv := st.Receive(tr)
	testutil.Eventually(t, 10*time.Second, "media arrives", func() bool { return recv.Packets.Load() > 100 })

	part, err := srv.Registry.Participant(ctx, "keys", sub.Self.ID)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := sfu.SRTPConfig(part.Peer())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("profile %v", cfg.Profile)
	// pion peers negotiate RFC 9335 (a=cryptex): header extensions are
	// encrypted too. The keys are the session's either way.
	cryptex := srtp.Cryptex(srtp.CryptexModeEnabled)
	dec, err := srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, cfg.Profile, cryptex)
	if err != nil {
		t.Fatal(err)
	}
	enc, err := srtp.CreateContext(cfg.Keys.LocalMasterKey, cfg.Keys.LocalMasterSalt, cfg.Profile, cryptex)
	if err != nil {
		t.Fatal(err)
	}
	sent := wire.Packets(uint32(tr.SSRC()))
	if len(sent) < 100 {
		t.Fatalf("captured %d packets of the subscriber's stream", len(sent))
	}
	for i, ciphertext := range sent {
		plain, err := dec.DecryptRTP(nil, ciphertext, nil)
		if err != nil {
			t.Fatalf("packet %d does not decrypt with the derived keys: %v", i, err)
		}
		var p rtp.Packet
		if err := p.Unmarshal(plain); err != nil {
			t.Fatalf("packet %d: %v", i, err)
		}
		if _, err := client.ReadStamp(p.Payload, true); err != nil && len(p.Payload) > 0 {
			t.Fatalf("packet %d (seq %d): the payload is not the publisher's: %v", i, p.SequenceNumber, err)
		}
		again, err := enc.EncryptRTP(nil, plain, nil)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, ciphertext) {
			t.Fatalf("packet %d (seq %d): encrypted with the derived keys, it differs from what pion sent", i, p.SequenceNumber)
		}
	}

	// The publisher's session, whose offer the server answered as the DTLS
	// server too, has its keys as well.
	late, err := srv.Registry.Participant(ctx, "keys", pub.Self.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sfu.SRTPConfig(late.Peer()); err != nil {
		t.Errorf("the publisher's keys: %v", err)
	}
}
