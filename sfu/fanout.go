package sfu

import (
	"runtime"
	"sync"

	"github.com/pion/rtp"
)

// A large fan-out is spread over the machine's cores: the subscriptions of
// a track past the first fanoutChunk are cut into chunks that the engine's
// workers forward while the track's reader forwards the first one. Each
// chunk's DownTracks are touched by one goroutine only, under the track's
// fwdMu held by the reader, which waits for the chunks before it reads the
// next packet; the packet itself is only read.

// fanoutChunk is how many subscriptions one goroutine forwards a packet to
// before the rest is shared out: below it, the hand-off costs more than it
// saves.
const fanoutChunk = 64

// fanoutJob is one chunk of one packet's fan-out.
type fanoutJob struct {
	downs []*DownTrack
	l     int
	p     *rtp.Packet
	key   bool
	now   int64
	wg    *sync.WaitGroup
	out   sendBatch // the chunk's packets on the direct path
}

// fanoutPool is the engine's workers, one per core.
type fanoutPool struct {
	jobs chan *fanoutJob
	wg   sync.WaitGroup

	// mu is held for reading while a job is handed over, and for writing by
	// close: a reader still forwarding when the engine closes (its peer
	// outlived the shutdown's deadline) never sends on the closed channel.
	mu     sync.RWMutex
	closed bool // guarded by mu
}

func newFanoutPool() *fanoutPool {
	f := &fanoutPool{jobs: make(chan *fanoutJob, 256)}
	for range runtime.GOMAXPROCS(0) {
		f.wg.Add(1)
		go f.work()
	}
	return f
}

func (f *fanoutPool) work() {
	defer f.wg.Done()
	for j := range f.jobs {
		for _, d := range j.downs {
			d.forward(j.l, j.p, j.key, j.now, &j.out)
		}
		j.out.flush()
		j.wg.Done()
	}
}

func (f *fanoutPool) close() {
	f.mu.Lock()
	f.closed = true
	close(f.jobs)
	f.mu.Unlock()
	f.wg.Wait()
}

// submit hands j to a worker; it reports false once the pool is closed,
// and the caller forwards the chunk itself.
func (f *fanoutPool) submit(j *fanoutJob) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.closed {
		return false
	}
	f.jobs <- j
	return true
}

// fanout forwards one packet to downs, in parallel when they are many.
// Called with u.fwdMu held; the jobs are the track's own, reused.
func (u *UpTrack) fanout(downs []*DownTrack, l int, p *rtp.Packet, key bool, now int64) {
	pool := u.publisher.e.fanout
	out := &u.out
	defer out.flush()
	if len(downs) <= fanoutChunk || pool == nil {
		for _, d := range downs {
			d.forward(l, p, key, now, out)
		}
		return
	}
	chunks := (len(downs) + fanoutChunk - 1) / fanoutChunk
	if cap(u.jobs) < chunks {
		u.jobs = make([]fanoutJob, chunks)
	}
	u.jobs = u.jobs[:chunks]
	u.fanoutWG.Add(chunks - 1)
	for i := 1; i < chunks; i++ {
		j := &u.jobs[i]
		j.downs, j.l, j.p, j.key, j.now, j.wg = downs[i*fanoutChunk:min(len(downs), (i+1)*fanoutChunk)], l, p, key, now, &u.fanoutWG
		if !pool.submit(j) {
			for _, d := range j.downs {
				d.forward(l, p, key, now, out)
			}
			u.fanoutWG.Done()
		}
	}
	for _, d := range downs[:fanoutChunk] {
		d.forward(l, p, key, now, out)
	}
	u.fanoutWG.Wait()
}
