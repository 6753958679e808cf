package signalingtest

import (
	"bytes"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/pion/logging"
	"github.com/pion/transport/v5/vnet"
	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/signaling/client"
)

// VNet is a virtual network (pion's vnet) where each host's link can lose
// packets or be rate-limited, for media tests under impairment. Signaling
// still goes over real loopback TCP; only media takes the virtual network.
type VNet struct {
	Router *vnet.Router
	t      testing.TB

	mu       sync.Mutex
	loss     map[string]float64 // host ip -> probability, both directions
	rng      *rand.Rand
	captures map[string]*Capture // host ip -> what is sent to it

	Dropped atomic.Int64
}

// NewVNet starts a virtual LAN 10.0.0.0/24; the test's cleanup stops it.
func NewVNet(t testing.TB) *VNet {
	t.Helper()
	r, err := vnet.NewRouter(&vnet.RouterConfig{CIDR: "10.0.0.0/24", LoggerFactory: logging.NewDefaultLoggerFactory()})
	if err != nil {
		t.Fatal(err)
	}
	v := &VNet{Router: r, t: t, loss: map[string]float64{}, rng: rand.New(rand.NewPCG(1, 2)), captures: map[string]*Capture{}}
	r.AddChunkFilter(v.filter)
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Stop() })
	return v
}

func (v *VNet) filter(c vnet.Chunk) bool {
	src, _, _ := net.SplitHostPort(c.SourceAddr().String())
	dst, _, _ := net.SplitHostPort(c.DestinationAddr().String())
	v.mu.Lock()
	defer v.mu.Unlock()
	if cp := v.captures[dst]; cp != nil {
		cp.record(c.UserData())
	}
	p := max(v.loss[src], v.loss[dst])
	if p > 0 && v.rng.Float64() < p {
		v.Dropped.Add(1)
		return false
	}
	return true
}

// Capture records the RTP headers (in the clear in SRTP) of what the
// network carries to one host, before any loss or rate limit on its link:
// what the server sent.
type Capture struct {
	mu   sync.Mutex
	seqs map[uint32][]uint16 // by SSRC, in sending order
	raw  map[uint32][][]byte // the first capturedPackets of each SSRC, whole
}

// capturedPackets is how many packets of each SSRC a Capture keeps whole.
const capturedPackets = 256

// Capture starts recording what is sent to host ip.
func (v *VNet) Capture(ip string) *Capture {
	c := &Capture{seqs: map[uint32][]uint16{}, raw: map[uint32][][]byte{}}
	v.mu.Lock()
	defer v.mu.Unlock()
	v.captures[ip] = c
	return c
}

func (c *Capture) record(b []byte) {
	// RFC 7983: RTP and RTCP start with 128-191; RTCP packet types 192-223.
	if len(b) < 12 || b[0] < 128 || b[0] > 191 || (b[1]&0x7f >= 64 && b[1]&0x7f <= 95) {
		return
	}
	seq := uint16(b[2])<<8 | uint16(b[3])
	ssrc := uint32(b[8])<<24 | uint32(b[9])<<16 | uint32(b[10])<<8 | uint32(b[11])
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seqs[ssrc] = append(c.seqs[ssrc], seq)
	if len(c.raw[ssrc]) < capturedPackets {
		c.raw[ssrc] = append(c.raw[ssrc], bytes.Clone(b))
	}
}

// Packets returns the first packets sent on ssrc (up to 256), as they
// crossed the network: SRTP.
func (c *Capture) Packets(ssrc uint32) [][]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.raw[ssrc])
}

// Skips counts, for one SSRC, the sequence numbers the sender skipped: each
// time a packet newer than all before it is not the next number. Repeats
// (retransmissions) are not skips. It also returns how many were sent.
func (c *Capture) Skips(ssrc uint32) (skips, sent int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seqs := c.seqs[ssrc]
	if len(seqs) == 0 {
		return 0, 0
	}
	high := seqs[0]
	for _, s := range seqs[1:] {
		if d := s - high; int16(d) > 0 {
			skips += int(d - 1)
			high = s
		}
	}
	return skips, len(seqs)
}

// SetLoss makes the link of host ip lose packets at random with probability
// p, in both directions.
func (v *VNet) SetLoss(ip string, p float64) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.loss[ip] = p
}

// Host adds a host with address ip.
func (v *VNet) Host(ip string) *vnet.Net {
	v.t.Helper()
	n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{ip}})
	if err != nil {
		v.t.Fatal(err)
	}
	if err := v.Router.AddNet(n); err != nil {
		v.t.Fatal(err)
	}
	return n
}

// LimitedHost adds a host whose downlink (what it receives) passes a token
// bucket of rate bits/s; the returned queue changes the rate later.
func (v *VNet) LimitedHost(ip string, rate int) (*vnet.Net, *vnet.TBFQueue) {
	v.t.Helper()
	n, err := vnet.NewNet(&vnet.NetConfig{StaticIPs: []string{ip}})
	if err != nil {
		v.t.Fatal(err)
	}
	tbf := vnet.NewTBFQueue(rate, 2_000, 32_000)
	q, err := vnet.NewQueue(n, tbf)
	if err != nil {
		v.t.Fatal(err)
	}
	if err := v.Router.AddNet(q); err != nil {
		v.t.Fatal(err)
	}
	return n, tbf
}

// API returns a client API whose media goes through host n.
func (v *VNet) API(n *vnet.Net) *webrtc.API {
	v.t.Helper()
	api, err := client.NewAPI(n)
	if err != nil {
		v.t.Fatal(err)
	}
	return api
}
