package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/webrtc/v4"
	"github.com/tessera-rtc/tessera/signaling/client"
)

// load is one run: its participants and their counters.
type load struct {
	cfg  config
	plan streamPlan
	rec  *recorder
	api  *webrtc.API // shared by every participant

	// ctx ends the participants' goroutines (senders, readers); cancel is
	// called by shutdown.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	keyframers sync.Map // *webrtc.RTPSender -> *client.Synth: who answers its PLIs

	pubsJoined, subsJoined, subsConnected atomic.Int64
	phase                                 atomic.Pointer[string]

	mu        sync.Mutex // guards the fields below
	clients   []*client.Client
	viewers   []*client.WHIP  // --whep sessions
	pubIDs    map[string]bool // participant ids of the publishers
	joinTimes []time.Duration // subscribers: from dialing to a packet on every track
}

func (l *load) addClient(c *client.Client) {
	l.mu.Lock()
	l.clients = append(l.clients, c)
	l.mu.Unlock()
}

func (l *load) addJoinTime(d time.Duration) {
	l.mu.Lock()
	l.joinTimes = append(l.joinTimes, d)
	l.mu.Unlock()
}

func (l *load) setPhase(p string) { l.phase.Store(&p) }

// shutdown makes every participant leave, closes them and waits for the
// goroutines of the run.
func (l *load) shutdown() {
	l.cancel()
	l.mu.Lock()
	clients, viewers := l.clients, l.viewers
	l.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			_ = c.Leave()
			c.Close()
		})
	}
	for _, v := range viewers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = v.Close(ctx)
		})
	}
	wg.Wait()
	l.wg.Wait()
}

// run drives one load run: optionally start the server, join the
// publishers, then the subscribers, warm up, measure for cfg.Duration, and
// report; with cfg.Baseline, then the same against the naive SFU
// (baseline.go). The summary goes to stdout (JSON with cfg.JSON, else a
// table), progress and the table under --json to stderr. Cancelling ctx
// during the measurement ends it early with a summary of what was
// measured.
func run(ctx context.Context, cfg config, stdout, stderr io.Writer) (Summary, error) {
	if err := cfg.validate(); err != nil {
		return Summary{}, err
	}
	stderr = &lockedWriter{w: stderr} // progress and messages share it
	var sp *spawnSpec
	if cfg.Spawn != "" {
		sp = &spawnSpec{flag: "--spawn", args: strings.Fields(cfg.Spawn), log: cfg.SpawnLog}
	}
	sum, measured, err := runOnce(ctx, cfg, sp, stderr)
	if !measured {
		return sum, err
	}
	switch {
	case !cfg.Baseline || err != nil:
	case sum.Interrupted:
		fmt.Fprintln(stderr, "interrupted: no baseline run")
	default:
		sum.Baseline, err = runBaseline(ctx, cfg, sum, stderr)
	}
	if werr := sum.write(stdout, stderr, cfg.JSON); werr != nil {
		return sum, werr
	}
	return sum, err
}

// runOnce is one run against the server at cfg.URL, started as sp says
// if sp is not nil, without printing the summary. measured reports that
// the measurement window took place: the summary holds its figures, even
// with an error (the server exited during the run).
func runOnce(ctx context.Context, cfg config, sp *spawnSpec, stderr io.Writer) (sum Summary, measured bool, err error) {
	if sp != nil {
		fmt.Fprintf(stderr, "starting %s\n", strings.Join(append(slices.Clone(sp.env), sp.args...), " "))
		srv, err := spawnServer(ctx, *sp, cfg.URL, cfg.SpawnTimeout)
		if err != nil {
			return Summary{}, false, err
		}
		defer srv.stop()
		cfg.ServerPID = srv.pid
		fmt.Fprintf(stderr, "server ready, measuring pid %d (%s)\n", srv.pid, commName(srv.pid))
		// The run ends if the server does.
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		go func() {
			select {
			case <-srv.done:
				cancel(srv.exitError())
			case <-ctx.Done():
			}
		}()
	}

	api, err := newAPI()
	if err != nil {
		return Summary{}, false, err
	}
	l := &load{cfg: cfg, plan: planOf(cfg), rec: newRecorder(cfg.Subscribers), api: api, pubIDs: map[string]bool{}}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	defer l.shutdown()
	l.setPhase("publishers")

	progressDone := make(chan struct{})
	progressStop := make(chan struct{})
	go func() {
		defer close(progressDone)
		l.progress(stderr, progressStop)
	}()
	stopProgress := sync.OnceFunc(func() {
		close(progressStop)
		<-progressDone
	})
	defer stopProgress()

	sum = Summary{Config: cfg.summary(l.plan), Tracks: cfg.Publishers * l.plan.tracks()}
	hz := clockTicks()
	m := newServerMeter(cfg.ServerPID, hz, stderr)

	// Publishers first, all of them, since every subscriber waits for
	// every track.
	errs := l.ramp(ctx, cfg.Publishers, func(ctx context.Context, i int) error {
		ctx, cancel := context.WithTimeout(ctx, cfg.JoinTimeout)
		defer cancel()
		return l.startPublisher(ctx, i)
	})
	if len(errs) > 0 {
		return sum, false, fmt.Errorf("%d of %d publishers failed, the first: %w", len(errs), cfg.Publishers, errs[0])
	}
	if err := sleep(ctx, 500*time.Millisecond); err != nil { // the server settles with its publishers
		return sum, false, err
	}
	m.before()

	l.setPhase("subscribers")
	joinStart := time.Now()
	errs = l.ramp(ctx, cfg.Subscribers, func(ctx context.Context, i int) error {
		ctx, cancel := context.WithTimeout(ctx, cfg.JoinTimeout)
		defer cancel()
		return l.startSubscriber(ctx, i, sum.Tracks)
	})
	sum.JoinSeconds = round(time.Since(joinStart).Seconds(), 3)
	sum.JoinErrors = len(errs)
	if len(errs) > 0 {
		sum.FirstJoinError = errs[0].Error()
		fmt.Fprintf(stderr, "%d of %d subscribers failed, the first: %v\n", len(errs), cfg.Subscribers, errs[0])
	}
	if ctx.Err() != nil {
		return sum, false, context.Cause(ctx)
	}
	if cfg.Subscribers > 0 && l.subsConnected.Load() == 0 {
		return sum, false, errors.New("no subscriber received every track")
	}

	l.setPhase("warmup")
	if err := sleep(ctx, cfg.Warmup); err != nil {
		return sum, false, err
	}

	l.setPhase("measuring")
	iv, jit, toolCPU, interrupted := l.measure(ctx, m)
	stopProgress() // the summary goes to the same writer
	sum.Interrupted = interrupted
	sum.fill(l, iv, jit)
	sum.Server = m.summary(iv.packets, int64(l.subsConnected.Load())*int64(sum.Tracks))
	sum.Tool = toolSummary(toolCPU, iv.d)
	if err := context.Cause(ctx); errors.Is(err, errServerExited) {
		return sum, true, err
	}
	return sum, true, nil
}

// measure counts for cfg.Duration, or until ctx ends (interrupted): what
// the subscribers received, the server's and the tool's CPU time, and the
// streams' jitter every second.
func (l *load) measure(ctx context.Context, m *serverMeter) (iv interval, jit jitterSampler, toolCPU time.Duration, interrupted bool) {
	s0, tool0 := l.rec.snapshot(), selfCPU()
	m.start()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	end := time.NewTimer(l.cfg.Duration)
	defer end.Stop()
	for measuring := true; measuring; {
		select {
		case <-tick.C:
			jit.add(l.rec.snapshot())
		case <-end.C:
			measuring = false
		case <-ctx.Done():
			measuring, interrupted = false, true
		}
	}
	s1, tool1 := l.rec.snapshot(), selfCPU()
	m.end()
	jit.add(s1)
	return between(s0, s1), jit, tool1 - tool0, interrupted
}

// ramp runs join(i) for i in [0, n), starting them at cfg.Ramp per second
// (all at once if 0), each in its own goroutine, and returns the errors
// once every join has returned.
func (l *load) ramp(ctx context.Context, n int, join func(context.Context, int) error) []error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	var tick <-chan time.Time
	if l.cfg.Ramp > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / l.cfg.Ramp))
		defer t.Stop()
		tick = t.C
	}
	for i := range n {
		if i > 0 && tick != nil {
			select {
			case <-tick:
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			if err := join(ctx, i); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errs
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// progress prints one line a second until stop is closed.
func (l *load) progress(w io.Writer, stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	start := time.Now()
	prev := l.rec.snapshot()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		cur := l.rec.snapshot()
		iv := between(prev, cur)
		prev = cur
		fmt.Fprintf(w, "%4.0fs %-11s pubs %d/%d subs %d/%d | sent %.0f pkt/s | recv %.0f pkt/s %.1f Mbit/s | loss %.2f%% | latency p50 %.2f ms p99 %.2f ms | corrupt %d\n",
			time.Since(start).Seconds(), *l.phase.Load(),
			l.pubsJoined.Load(), l.cfg.Publishers, l.subsConnected.Load(), l.cfg.Subscribers,
			iv.ppsSent, iv.ppsRecv, iv.mbitRecv, iv.cntLossPct,
			iv.latencyMs(0.5), iv.latencyMs(0.99), cur.corrupt)
	}
}

// jitterSampler averages the streams' RFC 3550 jitter over the seconds of
// the measurement.
type jitterSampler struct {
	sum, max float64 // ns
	n        int
}

func (j *jitterSampler) add(s snapshot) {
	j.sum += s.jitterSum
	j.n += s.jitterN
	j.max = max(j.max, s.jitterMax)
}

func (j jitterSampler) meanMs() float64 {
	if j.n == 0 {
		return 0
	}
	return j.sum / float64(j.n) / 1e6
}

// joinTimeQuantiles returns the p50 and max of the subscribers' join times.
func (l *load) joinTimeQuantiles() (p50, maxT time.Duration) {
	l.mu.Lock()
	ts := slices.Clone(l.joinTimes)
	l.mu.Unlock()
	if len(ts) == 0 {
		return 0, 0
	}
	slices.Sort(ts)
	return ts[(len(ts)-1)/2], ts[len(ts)-1]
}

// lockedWriter serializes writes to w.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(p)
}
