// The naive SFU: what --baseline measures the project against. It is a
// reference, not a product: the pattern of pion's sfu-ws example
// (github.com/pion/example-webrtc-applications, sfu-ws/main.go) behind
// this project's signaling protocol, with just what sfu-load's
// participants use. It lives in the load tool's package so that the tool
// can start it as a process of its own (this same binary, with naiveEnv
// set) and measure its CPU and memory exactly as it measures the project.
//
// As the example, it forwards each published track through one
// webrtc.TrackLocalStaticRTP: the publisher's track reader parses every
// packet, strips its header extensions and hands it to WriteRTP, which
// writes it to each subscriber's binding of the track (its own SSRC and
// payload type) in turn, through that subscriber's pion stack: default
// interceptors, one UDP socket per PeerConnection, pion's defaults
// throughout. A PLI goes to every publisher every 3 s and when a
// subscriber is sent a track.
//
// It does not do anything else: one room whatever the join names, no
// tokens or permissions, no limits, no simulcast, no codec choice, no
// bandwidth estimation, no pacing or dropping for slow subscribers, no
// retransmission for subscribers (pion's NACK responder is installed but,
// as in the example, nobody reads the subscribers' RTCP, so it never sees
// a NACK), no participant-left or track-unpublished, no resuming. Messages
// other than join, offer, answer, candidate and leave answer bad-request.

package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/signaling/protocol"
)

// naiveEnv, set to an address, makes sfu-load run the naive SFU on it
// instead of a load; --baseline starts it so.
const naiveEnv = "SFU_LOAD_NAIVE_SFU"

// naiveKeyframeInterval is how often the example asks every publisher for
// a keyframe.
const naiveKeyframeInterval = 3 * time.Second

// naiveMain serves the naive SFU on addr (/ws and /healthz) until SIGTERM
// or SIGINT, and returns the exit status.
func naiveMain(addr string, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := serveNaive(ctx, addr); err != nil {
		fmt.Fprintln(stderr, "naive sfu:", err)
		return 1
	}
	return 0
}

func serveNaive(ctx context.Context, addr string) error {
	api, err := naiveAPI()
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	s := &naiveSFU{api: api, peers: map[*naivePeer]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	mux.Handle("/ws", s)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go s.keyframes(ctx)
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
		_ = srv.Close() // the sockets and PeerConnections end with the process
		return nil
	case err := <-errc:
		return err
	}
}

// naiveAPI is the API webrtc.NewPeerConnection uses, as the example does:
// pion's default codecs and RegisterDefaultInterceptors, which in pion
// v4.2.26 are the NACK generator and responder, RTCP receiver and sender
// reports, the stats interceptor and TWCC feedback for what it receives
// (with the mid, rid and transport-cc header extensions). It adds no
// interceptor. The SettingEngine keeps pion's defaults (a UDP socket of
// its own per PeerConnection, mDNS queries) except for two settings, as
// the project's load.yaml has them: loopback candidates only, over UDP4
// only, so each peer has one candidate and one port; and pion's logs are
// off as in the tool's own peers.
func naiveAPI() (*webrtc.API, error) {
	return defaultAPI(func(ip net.IP) bool { return ip.IsLoopback() })
}

// naiveSFU is the server: every participant is in one room.
type naiveSFU struct {
	api      *webrtc.API
	upgrader websocket.Upgrader

	mu     sync.Mutex // guards the fields below; never held during I/O
	peers  map[*naivePeer]bool
	tracks []*naiveTrack // forwarding: from their first packet to their end
	nextID int
}

// naiveTrack is a published track being forwarded.
type naiveTrack struct {
	info  protocol.Track              // as announced, without the mid
	local *webrtc.TrackLocalStaticRTP // bound once in every subscriber's PeerConnection
	pub   *webrtc.PeerConnection      // the publisher's, for PLIs
	ssrc  uint32                      // the publisher's stream
}

// ServeHTTP serves one participant's socket until it closes.
func (s *naiveSFU) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	newNaivePeer(s, ws).run()
}

// newID returns a fresh participant or track id.
func (s *naiveSFU) newID(prefix string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextID++
	return prefix + strconv.Itoa(s.nextID)
}

// join adds p (its id and name set) and returns the others, then tells
// them of p.
func (s *naiveSFU) join(p *naivePeer) []protocol.Participant {
	s.mu.Lock()
	var others []*naivePeer
	list := []protocol.Participant{}
	for o := range s.peers {
		others = append(others, o)
		part := protocol.Participant{ID: o.id, Name: o.name, Tracks: []protocol.Track{}}
		for _, t := range s.tracks {
			if t.info.Participant == o.id {
				part.Tracks = append(part.Tracks, t.info)
			}
		}
		list = append(list, part)
	}
	s.peers[p] = true
	s.mu.Unlock()
	for _, o := range others {
		o.send("", protocol.ParticipantJoined{Participant: protocol.Participant{ID: p.id, Name: p.name, Tracks: []protocol.Track{}}})
	}
	return list
}

// leave removes p.
func (s *naiveSFU) leave(p *naivePeer) {
	s.mu.Lock()
	delete(s.peers, p)
	s.mu.Unlock()
}

// announce sends track-published for t to everyone, the publisher pub
// included, its copy with the mid.
func (s *naiveSFU) announce(pub *naivePeer, t protocol.Track) {
	s.mu.Lock()
	peers := make([]*naivePeer, 0, len(s.peers))
	for p := range s.peers {
		peers = append(peers, p)
	}
	s.mu.Unlock()
	for _, p := range peers {
		m := protocol.TrackPublished{Track: t}
		if p != pub {
			m.Track.Mid = ""
		}
		p.send("", m)
	}
}

// addTrack starts forwarding t: every peer is told to subscribe to it.
func (s *naiveSFU) addTrack(t *naiveTrack) {
	s.mu.Lock()
	s.tracks = append(s.tracks, t)
	peers := make([]*naivePeer, 0, len(s.peers))
	for p := range s.peers {
		peers = append(peers, p)
	}
	s.mu.Unlock()
	for _, p := range peers {
		p.kickSubscribe()
	}
}

// removeTrack stops forwarding t. Subscribers keep its (silent) section:
// the load tool ends its runs there.
func (s *naiveSFU) removeTrack(t *naiveTrack) {
	s.mu.Lock()
	s.tracks = slices.DeleteFunc(s.tracks, func(o *naiveTrack) bool { return o == t })
	s.mu.Unlock()
}

// tracksFor returns the tracks p may subscribe to: everyone else's.
func (s *naiveSFU) tracksFor(p *naivePeer) []*naiveTrack {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*naiveTrack
	for _, t := range s.tracks {
		if t.info.Participant != p.id {
			out = append(out, t)
		}
	}
	return out
}

// keyframes asks every publisher for a keyframe of each of its tracks
// every naiveKeyframeInterval, as the example does, until ctx ends.
func (s *naiveSFU) keyframes(ctx context.Context) {
	tick := time.NewTicker(naiveKeyframeInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		s.mu.Lock()
		tracks := slices.Clone(s.tracks)
		s.mu.Unlock()
		for _, t := range tracks {
			t.keyframe()
		}
	}
}

// keyframe sends the publisher a PLI for t.
func (t *naiveTrack) keyframe() {
	_ = t.pub.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: t.ssrc}})
}

// forward is the publisher's reader, as in the example: each packet is
// read into one buffer, parsed into one rtp.Packet, stripped of its header
// extensions and written to the local track, that is to every subscriber.
// Write errors are ignored: the example returns on one, which would cut
// every subscriber off when one of them goes away.
func (t *naiveTrack) forward(remote *webrtc.TrackRemote) {
	buf := make([]byte, 1500)
	var pkt rtp.Packet
	for {
		n, _, err := remote.Read(buf)
		if err != nil {
			return
		}
		if err := pkt.Unmarshal(buf[:n]); err != nil {
			return
		}
		pkt.Extension, pkt.Extensions = false, nil
		_ = t.local.WriteRTP(&pkt)
	}
}
