package record

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
)

// Files: safe names, and writes that say when the disk is full.

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// safeName keeps letters, digits, '-' and '_' of a name for a file name,
// at most 48 of them; anything else (a path separator, a dot) becomes '_'.
func safeName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= 48 {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}

// classify wraps a write error as ErrDiskFull when the disk is full.
func classify(err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return fmt.Errorf("%w: %v", ErrDiskFull, err)
	}
	return err
}

// countingFile counts what is written to the file (the muxer also writes
// back, with WriteAt, to finish the header), and keeps the first write
// error for the session to see. The muxer writes on a goroutine of its
// own and, after some errors, stops taking frames while a Write still
// waits to hand it one: it is told every write succeeded, and the session
// stops writing at the first failure instead.
type countingFile struct {
	*os.File
	n   *atomic.Int64
	err atomic.Pointer[error]
}

func (c *countingFile) Write(p []byte) (int, error) {
	if c.err.Load() != nil {
		return len(p), nil
	}
	n, err := c.File.Write(p)
	c.n.Add(int64(n))
	if err != nil {
		c.fail(err)
	}
	return len(p), nil
}

func (c *countingFile) WriteAt(p []byte, off int64) (int, error) {
	if c.err.Load() != nil {
		return len(p), nil
	}
	if _, err := c.File.WriteAt(p, off); err != nil {
		c.fail(err)
	}
	return len(p), nil
}

func (c *countingFile) fail(err error) {
	err = classify(err)
	c.err.CompareAndSwap(nil, &err)
}

// failed is the first write error, or nil.
func (c *countingFile) failed() error {
	if e := c.err.Load(); e != nil {
		return *e
	}
	return nil
}

var _ io.WriterAt = (*countingFile)(nil)
