package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"
)

// Summary is the result of a run; with --json it is printed as one JSON
// object. Rates and losses cover the measurement window only.
type Summary struct {
	Config ConfigSummary `json:"config"`

	Tracks               int     `json:"tracks"` // published tracks (a simulcast track counts once)
	SubscribersJoined    int     `json:"subscribers_joined"`
	SubscribersConnected int     `json:"subscribers_connected"` // received a packet on every track
	Subscriptions        int     `json:"subscriptions"`         // connected subscribers × tracks
	JoinErrors           int     `json:"join_errors"`
	FirstJoinError       string  `json:"first_join_error,omitempty"`
	JoinSeconds          float64 `json:"join_seconds"`   // from the first subscriber's join to the last one's tracks
	JoinMsP50            float64 `json:"join_ms_p50"`    // one subscriber: dial to a packet on every track
	JoinMsMax            float64 `json:"join_ms_max"`    // the slowest subscriber
	WindowSeconds        float64 `json:"window_seconds"` // the measurement window
	Interrupted          bool    `json:"interrupted"`    // the window was cut short
	Sent                 Sent    `json:"sent"`           // by all publishers
	Received             Recv    `json:"received"`       // by all subscribers
	Loss                 Loss    `json:"loss"`           // of the packets subscribers should have received
	LatencyMs            Latency `json:"latency_ms"`     // publisher send to subscriber read
	JitterMs             Jitter  `json:"jitter_ms"`      // RFC 3550 interarrival jitter
	PerSubscriber        PerSub  `json:"per_subscriber"` // packets each subscriber received
	// Layers counts the video subscriptions by the simulcast layer they
	// receive at the end of the window (with --simulcast).
	Layers map[string]int `json:"layers,omitempty"`
	Server *Server        `json:"server,omitempty"` // with --server-pid or --spawn
	Tool   Tool           `json:"tool"`             // this process
	// Baseline is the same load against the naive SFU (--baseline).
	Baseline *Baseline `json:"baseline,omitempty"`
}

// ConfigSummary repeats the settings of the run.
type ConfigSummary struct {
	URL            string  `json:"url"`
	Room           string  `json:"room"`
	Publishers     int     `json:"publishers"`
	Subscribers    int     `json:"subscribers"`
	VideoBitrate   int64   `json:"video_bitrate"` // bit/s of payload, full layer
	PacketSize     int     `json:"packet_size"`   // payload bytes of a video packet
	VideoPPS       float64 `json:"video_pps"`     // packets/s of the full video layer
	Audio          bool    `json:"audio"`
	Simulcast      bool    `json:"simulcast"`
	Ramp           float64 `json:"ramp"` // joins per second, 0: all at once
	DurationSec    float64 `json:"duration_seconds"`
	WarmupSec      float64 `json:"warmup_seconds"`
	ExpectedPPSSub float64 `json:"expected_pps_per_subscriber"`
}

// Sent counts what publishers sent.
type Sent struct {
	Packets uint64  `json:"packets"`
	PPS     float64 `json:"pps"`
	Errors  uint64  `json:"errors"` // writes pion refused
	Slips   uint64  `json:"slips"`  // times a sender fell behind and skipped packets
}

// Recv counts what subscribers received.
type Recv struct {
	Packets     uint64  `json:"packets"` // RTP packets, retransmissions included
	PPS         float64 `json:"pps"`
	ExpectedPPS float64 `json:"expected_pps"` // connected subscribers × what each should receive
	DeliveryPct float64 `json:"delivery_pct"` // pps of media (no duplicates, no padding) / expected_pps
	Mbps        float64 `json:"payload_mbps"` // payload bit/s, in millions
	Corrupt     uint64  `json:"corrupt"`      // payloads that failed verification
	Late        uint64  `json:"late"`         // behind the highest sequence number, new: reordered or retransmitted
	Duplicates  uint64  `json:"duplicates"`   // sequence number already received
	Padding     uint64  `json:"padding"`      // packets without payload: the server's bandwidth probes
	Verified    uint64  `json:"verified"`     // payloads that passed verification
	PerSecSub   float64 `json:"pps_per_subscriber"`
}

// Loss is computed as RFC 3550 does, lost = expected - received, in two
// ways: from the RTP sequence numbers the server writes (loss between the
// server and the subscribers) and from the publishers' counters carried
// in the payload (end to end, packets the server dropped included).
type Loss struct {
	SeqLost     int64   `json:"seq_lost"`
	SeqPct      float64 `json:"seq_pct"`
	CounterLost int64   `json:"counter_lost"`
	CounterPct  float64 `json:"counter_pct"`
}

// Latency is the one-way delay from the publisher's send time (in the
// payload) to the subscriber's read, on the same clock; quantiles come
// from log-scale buckets (±3 %).
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p999"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

// Jitter is RFC 3550's interarrival jitter J (J += (|D| - J)/16, D the
// change in transit time between consecutive packets of a stream), with
// the send time from the payload; sampled every second on every stream.
type Jitter struct {
	Mean float64 `json:"mean"`
	Max  float64 `json:"max"`
}

// PerSub describes how evenly the subscribers were served.
type PerSub struct {
	MinPackets     uint64 `json:"min_packets"`
	MaxPackets     uint64 `json:"max_packets"`
	WithoutPackets int    `json:"without_packets"` // subscribers that received nothing in the window
}

// Server is what /proc says about the server process.
type Server struct {
	PID                  int     `json:"pid"`
	CPUSeconds           float64 `json:"cpu_seconds"` // user + system over the window
	CPUPct               float64 `json:"cpu_pct"`     // of one core
	CPUMicrosPerPacket   float64 `json:"cpu_us_per_forwarded_packet"`
	RSSBeforeKB          int64   `json:"rss_before_kb"` // publishers in, before the subscribers joined
	RSSAfterKB           int64   `json:"rss_after_kb"`  // at the end of the window
	RSSPerSubscriptionKB float64 `json:"rss_per_subscription_kb"`
	Error                string  `json:"error,omitempty"`
}

// Tool is this process's own CPU use, so that a reader knows how much of
// the machine the load itself took.
type Tool struct {
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPct     float64 `json:"cpu_pct"`     // of one core
	CPUs       int     `json:"cpus"`        // runtime.NumCPU
	MachinePct float64 `json:"machine_pct"` // of all cores
}

func (c config) summary(p streamPlan) ConfigSummary {
	return ConfigSummary{
		URL: c.URL, Room: c.Room, Publishers: c.Publishers, Subscribers: c.Subscribers,
		VideoBitrate: c.VideoBitrate, PacketSize: c.PacketSize, VideoPPS: round(p.videoPPS, 1),
		Audio: c.Audio, Simulcast: c.Simulcast, Ramp: c.Ramp,
		DurationSec: c.Duration.Seconds(), WarmupSec: c.Warmup.Seconds(),
		ExpectedPPSSub: round(float64(c.Publishers)*p.forwardedPPS(), 1),
	}
}

// fill sets the figures of the measurement window.
func (s *Summary) fill(l *load, iv interval, jit jitterSampler) {
	s.SubscribersJoined = int(l.subsJoined.Load())
	s.SubscribersConnected = int(l.subsConnected.Load())
	s.Subscriptions = s.SubscribersConnected * s.Tracks
	p50, pmax := l.joinTimeQuantiles()
	s.JoinMsP50, s.JoinMsMax = ms(p50), ms(pmax)
	s.WindowSeconds = round(iv.d.Seconds(), 3)

	s.Sent = Sent{Packets: iv.sent, PPS: round(iv.ppsSent, 1), Errors: iv.sendErrors, Slips: iv.slips}
	expected := float64(s.SubscribersConnected) * s.Config.ExpectedPPSSub
	s.Received = Recv{
		Packets: iv.packets, PPS: round(iv.ppsRecv, 1), ExpectedPPS: round(expected, 1),
		Mbps: round(iv.mbitRecv, 3), Corrupt: iv.corrupt, Late: iv.seqLate, Duplicates: iv.seqDup,
		Padding:  iv.padding,
		Verified: iv.verified,
	}
	if expected > 0 && iv.d > 0 {
		media := float64(iv.packets-iv.seqDup-iv.padding) / iv.d.Seconds()
		s.Received.DeliveryPct = round(100*media/expected, 2)
	}
	if s.SubscribersConnected > 0 {
		s.Received.PerSecSub = round(iv.ppsRecv/float64(s.SubscribersConnected), 1)
	}
	s.Loss = Loss{
		SeqLost: iv.seqLost, SeqPct: round(iv.seqLossPct, 4),
		CounterLost: iv.cntLost, CounterPct: round(iv.cntLossPct, 4),
	}
	s.LatencyMs = Latency{
		P50: round(iv.latencyMs(0.5), 3), P90: round(iv.latencyMs(0.9), 3),
		P99: round(iv.latencyMs(0.99), 3), P999: round(iv.latencyMs(0.999), 3),
		Max: round(iv.latency.maxValue()/1000, 3),
	}
	if n := iv.verified - iv.cntDup; n > 0 {
		s.LatencyMs.Mean = round(float64(iv.latencySum)/float64(n)/1000, 3)
	}
	if s.Config.Simulcast {
		s.Layers = l.rec.layers()
	}
	s.JitterMs = Jitter{Mean: round(jit.meanMs(), 3), Max: round(jit.max/1e6, 3)}

	if n := len(iv.perSub); n > 0 {
		s.PerSubscriber.MinPackets = iv.perSub[0]
		for _, v := range iv.perSub {
			s.PerSubscriber.MinPackets = min(s.PerSubscriber.MinPackets, v)
			s.PerSubscriber.MaxPackets = max(s.PerSubscriber.MaxPackets, v)
			if v == 0 {
				s.PerSubscriber.WithoutPackets++
			}
		}
	}
}

func toolSummary(cpu, window time.Duration) Tool {
	t := Tool{CPUSeconds: round(cpu.Seconds(), 3), CPUs: runtime.NumCPU()}
	if window > 0 {
		t.CPUPct = round(100*cpu.Seconds()/window.Seconds(), 1)
		t.MachinePct = round(t.CPUPct/float64(t.CPUs), 1)
	}
	return t
}

// serverMeter samples the server process around the window.
type serverMeter struct {
	pid       int
	hz        int64
	w         io.Writer
	rssBefore int64
	s0, s1    procSample
	err       error
}

func newServerMeter(pid int, hz int64, w io.Writer) *serverMeter {
	return &serverMeter{pid: pid, hz: hz, w: w}
}

func (m *serverMeter) sample() procSample {
	if m.pid == 0 || m.err != nil {
		return procSample{}
	}
	s, err := sampleProc(m.pid, m.hz)
	if err != nil {
		m.err = err
		fmt.Fprintf(m.w, "server pid %d: %v\n", m.pid, err)
	}
	return s
}

func (m *serverMeter) before() { m.rssBefore = m.sample().rss }
func (m *serverMeter) start()  { m.s0 = m.sample() }
func (m *serverMeter) end()    { m.s1 = m.sample() }

// summary divides the server's CPU time over the window by the packets
// forwarded in it, and its memory growth by the subscriptions.
func (m *serverMeter) summary(forwarded uint64, subscriptions int64) *Server {
	if m.pid == 0 {
		return nil
	}
	s := &Server{PID: m.pid}
	if m.err != nil {
		s.Error = m.err.Error()
		return s
	}
	cpu := m.s1.cpu - m.s0.cpu
	window := m.s1.at.Sub(m.s0.at)
	s.CPUSeconds = round(cpu.Seconds(), 3)
	if window > 0 {
		s.CPUPct = round(100*cpu.Seconds()/window.Seconds(), 1)
	}
	if forwarded > 0 {
		s.CPUMicrosPerPacket = round(float64(cpu.Microseconds())/float64(forwarded), 3)
	}
	s.RSSBeforeKB, s.RSSAfterKB = m.rssBefore, m.s1.rss
	if subscriptions > 0 {
		s.RSSPerSubscriptionKB = round(float64(s.RSSAfterKB-s.RSSBeforeKB)/float64(subscriptions), 1)
	}
	return s
}

// write prints the summary: JSON on stdout and the table on stderr with
// asJSON, else the table on stdout.
func (s Summary) write(stdout, stderr io.Writer, asJSON bool) error {
	if !asJSON {
		return s.table(stdout)
	}
	if err := s.table(stderr); err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(s)
}

func (s Summary) table(w io.Writer) error { return s.titledTable(w, "summary") }

// titledTable prints the summary under title, then the baseline's, if any.
func (s Summary) titledTable(w io.Writer, title string) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	c := s.Config
	row := func(k, format string, a ...any) { fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{k}, a...)...) }
	var media []string
	if c.VideoBitrate > 0 {
		v := fmt.Sprintf("video %s in %d B packets = %.0f pkt/s", bitrate(c.VideoBitrate), c.PacketSize, c.VideoPPS)
		if c.Simulcast {
			v += " (simulcast q/h/f: +1/4 +1/2)"
		}
		media = append(media, v)
	}
	if c.Audio {
		media = append(media, fmt.Sprintf("audio %d pkt/s", audioPPS))
	}
	fmt.Fprintln(tw, title)
	row("load", "publishers %d, subscribers %d, tracks %d: %s", c.Publishers, c.Subscribers, s.Tracks, strings.Join(media, " + "))
	row("subscribers", "%d joined, %d connected (%d subscriptions), %d errors; join p50 %.0f ms, max %.0f ms; all in %.1f s",
		s.SubscribersJoined, s.SubscribersConnected, s.Subscriptions, s.JoinErrors, s.JoinMsP50, s.JoinMsMax, s.JoinSeconds)
	if s.FirstJoinError != "" {
		row("first error", "%s", s.FirstJoinError)
	}
	window := fmt.Sprintf("%.1f s", s.WindowSeconds)
	if s.Interrupted {
		window += " (interrupted)"
	}
	row("window", "%s after %.1f s warmup", window, c.WarmupSec)
	row("sent", "%d packets, %.0f pkt/s, %d errors, %d slips", s.Sent.Packets, s.Sent.PPS, s.Sent.Errors, s.Sent.Slips)
	row("received", "%d packets, %.0f pkt/s of %.0f expected (%.1f%%), %.2f Mbit/s payload",
		s.Received.Packets, s.Received.PPS, s.Received.ExpectedPPS, s.Received.DeliveryPct, s.Received.Mbps)
	row("per subscriber", "%.0f pkt/s; packets min %d max %d; %d without packets",
		s.Received.PerSecSub, s.PerSubscriber.MinPackets, s.PerSubscriber.MaxPackets, s.PerSubscriber.WithoutPackets)
	row("corrupt", "%d", s.Received.Corrupt)
	row("late / dup / padding", "%d / %d / %d", s.Received.Late, s.Received.Duplicates, s.Received.Padding)
	if c.Simulcast {
		row("layers forwarded", "q %d  h %d  f %d (video subscriptions by the layer they receive at the end)",
			s.Layers["q"], s.Layers["h"], s.Layers["f"])
	}
	row("loss (sequence)", "%d packets, %.3f%%", s.Loss.SeqLost, s.Loss.SeqPct)
	row("loss (counter)", "%d packets, %.3f%%", s.Loss.CounterLost, s.Loss.CounterPct)
	l := s.LatencyMs
	row("latency", "p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f  mean %.2f ms", l.P50, l.P90, l.P99, l.P999, l.Max, l.Mean)
	row("jitter (RFC 3550)", "mean %.3f  max %.3f ms", s.JitterMs.Mean, s.JitterMs.Max)
	if sv := s.Server; sv != nil {
		if sv.Error != "" {
			row("server", "pid %d: %s", sv.PID, sv.Error)
		} else {
			row("server CPU", "pid %d: %.2f s = %.1f%% of a core; %.2f µs per forwarded packet", sv.PID, sv.CPUSeconds, sv.CPUPct, sv.CPUMicrosPerPacket)
			row("server RSS", "%d kB before subscribers, %d kB after; %.1f kB per subscription", sv.RSSBeforeKB, sv.RSSAfterKB, sv.RSSPerSubscriptionKB)
		}
	}
	row("tool CPU", "%.2f s = %.1f%% of a core, %.1f%% of %d cores", s.Tool.CPUSeconds, s.Tool.CPUPct, s.Tool.MachinePct, s.Tool.CPUs)
	if err := tw.Flush(); err != nil || s.Baseline == nil {
		return err
	}
	return s.Baseline.table(w, s)
}

func bitrate(b int64) string {
	switch {
	case b >= 1e6:
		return fmt.Sprintf("%.3g Mbit/s", float64(b)/1e6)
	case b >= 1e3:
		return fmt.Sprintf("%.3g kbit/s", float64(b)/1e3)
	}
	return fmt.Sprintf("%d bit/s", b)
}

func ms(d time.Duration) float64 { return round(float64(d)/1e6, 1) }

// round rounds x to n decimals, for readable JSON.
func round(x float64, n int) float64 {
	p := math.Pow10(n)
	return math.Round(x*p) / p
}
