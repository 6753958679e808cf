package record

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/at-wat/ebml-go/mkvcore"
	"github.com/at-wat/ebml-go/webm"
)

// The session's goroutine: it owns the file, puts each track's packets
// into frames, and writes them.

// run owns the file and every track's state.
func (s *Session) run(h264 bool) {
	var (
		f       *countingFile
		start   time.Time
		writers []webm.BlockWriteCloser
	)
	defer func() {
		for _, t := range s.tracks {
			t.up.Record(nil)
		}
		if writers != nil {
			// Closing the writers writes the duration and closes the file.
			for _, w := range writers {
				if err := w.Close(); err != nil {
					s.fail(classify(err))
				}
			}
			if err := f.failed(); err != nil {
				s.fail(err)
			}
		}
		s.active.Store(false)
		info := s.Info()
		switch {
		case info.Error != "":
			s.log.Error("recording stopped", "file", info.Path, "err", info.Error, "bytes", info.Bytes, "duration_ms", info.DurationMs)
		case f == nil:
			s.log.Info("recording ended before any media", "file", s.info.Path)
		default:
			s.log.Info("recording finished", "file", info.Path, "bytes", info.Bytes, "duration_ms", info.DurationMs)
		}
		s.r.mu.Lock()
		delete(s.r.sessions, s)
		delete(s.r.paths, s.info.Path)
		if f != nil || info.Error != "" {
			s.r.done = append(s.r.done, info)
			if len(s.r.done) > keepDone {
				s.r.done = s.r.done[len(s.r.done)-keepDone:]
			}
		}
		s.r.mu.Unlock()
		close(s.done)
		s.r.wg.Done()
	}()

	open := func(at time.Time) error {
		if err := os.MkdirAll(filepath.Dir(s.info.Path), 0o750); err != nil {
			return classify(err)
		}
		file, err := s.r.cfg.Create(s.info.Path)
		if err != nil {
			return classify(err)
		}
		f = &countingFile{File: file, n: &s.bytes}
		entries := make([]webm.TrackEntry, len(s.tracks))
		for i, t := range s.tracks {
			entries[i] = t.entry(uint64(i + 1))
		}
		opts := []mkvcore.BlockWriterOption{
			mkvcore.WithSegmentInfo(&webm.Info{TimecodeScale: 1000000, MuxingApp: "tessera", WritingApp: "tessera"}),
			// A seek head and cues (an index of the clusters, in space kept
			// for them) make the file seekable, and let the muxer write the
			// duration into the header when the file ends.
			mkvcore.WithSeekHead(true),
			mkvcore.WithCues(cuesReserved),
		}
		if h264 {
			hdr := *webm.DefaultEBMLHeader
			hdr.DocType = "matroska"
			opts = append(opts, mkvcore.WithEBMLHeader(&hdr))
		}
		writers, err = webm.NewSimpleBlockWriter(f, entries, opts...)
		if err == nil {
			err = f.failed()
		}
		if err != nil {
			for _, w := range writers {
				_ = w.Close()
			}
			_ = file.Close()
			writers = nil
			return classify(err)
		}
		for i, t := range s.tracks {
			t.w = writers[i]
		}
		start = at
		s.active.Store(true)
		return nil
	}

	keyAsked := time.Time{}
	// emit writes every sample t's sample builder completed; false: the
	// session ended.
	emit := func(t *trackRec, at time.Time) bool {
		for sample := t.sb.Pop(); sample != nil; sample = t.sb.Pop() {
			key := !t.video || isKeyframe(t.codec, sample.Data)
			if t.video && (sample.PrevDroppedPackets > 0 || t.waitKey) && !key {
				// A frame is missing: what follows would not decode.
				t.waitKey = true
				if time.Since(keyAsked) > time.Second {
					keyAsked = time.Now()
					t.up.RequestKeyframe()
				}
				continue
			}
			t.waitKey = false
			if !t.ready {
				if !key || !t.describe(sample.Data) {
					continue
				}
				t.ready = true
			}
			if writers == nil {
				if !s.allReady() {
					continue
				}
				if err := open(at); err != nil {
					s.fail(err)
					return false
				}
			}
			ms := t.timestamp(sample.PacketTimestamp, at, start)
			if ms < t.lastMs {
				continue // the container wants each track's frames in order
			}
			t.lastMs = ms
			data := sample.Data
			if t.codec == "video/av1" {
				data = av1Block(data)
			}
			if _, err := t.w.Write(key, ms, data); err != nil {
				s.fail(classify(err))
				return false
			}
			if err := f.failed(); err != nil {
				s.fail(err)
				return false
			}
			if ms > s.duration.Load() {
				s.duration.Store(ms)
			}
			switch {
			case s.bytes.Load() >= s.r.cfg.MaxBytes:
				s.fail(fmt.Errorf("%w: %d bytes", ErrLimit, s.r.cfg.MaxBytes))
				return false
			case time.Duration(ms)*time.Millisecond >= s.r.cfg.MaxDuration:
				s.fail(fmt.Errorf("%w: %s", ErrLimit, s.r.cfg.MaxDuration))
				return false
			}
		}
		return true
	}
	take := func(in inPacket) bool {
		t := s.tracks[in.track]
		t.sb.Push(in.p)
		return emit(t, in.at)
	}
	for {
		select {
		case <-s.quit:
			// What arrived, and what the sample builders still hold (the
			// frames waiting for a late packet), goes in the file too.
		drain:
			for {
				select {
				case in := <-s.in:
					if !take(in) {
						return
					}
				default:
					break drain
				}
			}
			for _, t := range s.tracks {
				t.sb.Flush()
				if !emit(t, time.Now()) {
					return
				}
			}
			return
		case in := <-s.in:
			if !take(in) {
				return
			}
		}
	}
}

// allReady reports whether every video track has had its keyframe (audio
// is ready at once).
func (s *Session) allReady() bool {
	for _, t := range s.tracks {
		if !t.ready {
			return false
		}
	}
	return true
}

// timestamp is the sample's time in the file, in ms: the track's offset
// (when its first sample came, after the file's start) plus its RTP time
// since then.
func (t *trackRec) timestamp(ts uint32, at, start time.Time) int64 {
	if !t.started {
		t.started = true
		t.lastTS = ts
		t.offsetMs = max(0, at.Sub(start).Milliseconds())
		t.lastMs = t.offsetMs
	}
	t.extTS += int64(int32(ts - t.lastTS)) // wraps every 13 hours at 90 kHz
	t.lastTS = ts
	return t.offsetMs + t.extTS*1000/int64(t.clock)
}
