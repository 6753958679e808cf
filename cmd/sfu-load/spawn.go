package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// spawned is a server the tool started with --spawn.
type spawned struct {
	cmd  *exec.Cmd
	pid  int // the process measured (see serverPID)
	done chan struct{}
	err  error // after done: how it exited
	tail *tailWriter
	log  *os.File
}

// spawnSpec is how to start a server.
type spawnSpec struct {
	flag string   // the flag that asked for it, for errors: "--spawn" or "--baseline"
	args []string // the program and its arguments
	env  []string // added to the tool's environment
	log  string   // file for its output; "": discarded
}

// spawnServer starts a server as sp says, in a process group of its own,
// and waits until the server at wsURL answers HTTP. Its output goes to
// sp.log, if given; the last lines are kept for the error if it exits
// early.
func spawnServer(ctx context.Context, sp spawnSpec, wsURL string, timeout time.Duration) (*spawned, error) {
	if len(sp.args) == 0 {
		return nil, fmt.Errorf("%s: empty command", sp.flag)
	}
	health, port, err := healthURL(wsURL)
	if err != nil {
		return nil, err
	}
	s := &spawned{done: make(chan struct{}), tail: &tailWriter{max: 4096}}
	var out io.Writer = s.tail
	if sp.log != "" {
		if s.log, err = os.Create(sp.log); err != nil {
			return nil, err
		}
		out = io.MultiWriter(s.log, s.tail)
	}
	s.cmd = exec.Command(sp.args[0], sp.args[1:]...)
	if len(sp.env) > 0 {
		s.cmd.Env = append(os.Environ(), sp.env...)
	}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		s.closeLog()
		return nil, fmt.Errorf("%s: %w", sp.flag, err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	if err := s.waitReady(ctx, sp.flag, health, timeout); err != nil {
		s.stop()
		return nil, err
	}
	s.pid = serverPID(s.cmd.Process.Pid, port)
	return s, nil
}

// healthURL maps ws://host:port/ws to http://host:port/healthz.
func healthURL(wsURL string) (string, int, error) {
	u, err := url.Parse(wsURL)
	if err != nil {
		return "", 0, fmt.Errorf("--url: %w", err)
	}
	switch u.Scheme {
	case "ws":
		u.Scheme = "http"
	case "wss":
		u.Scheme = "https"
	default:
		return "", 0, fmt.Errorf("--url: scheme %q, want ws or wss", u.Scheme)
	}
	p := u.Port()
	if p == "" {
		p = map[string]string{"http": "80", "https": "443"}[u.Scheme]
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("--url: port %q", p)
	}
	u.Path, u.RawQuery = "/healthz", ""
	return u.String(), port, nil
}

// waitReady polls the health URL until the server answers, exits, or the
// timeout (which covers a `go run` build) passes.
func (s *spawned) waitReady(ctx context.Context, flag, health string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	hc := &http.Client{Timeout: time.Second}
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return fmt.Errorf("%s: before answering, %w", flag, s.exitError())
		case <-ctx.Done():
			return fmt.Errorf("%s: no answer from %s: %w", flag, health, ctx.Err())
		case <-t.C:
		}
		resp, err := hc.Get(health)
		if err != nil {
			continue // not listening yet
		}
		_ = resp.Body.Close()
		return nil
	}
}

// errServerExited reports a --spawn server that exited during the run.
var errServerExited = errors.New("the server exited")

// exitError describes how the server exited, with its last output; call
// it after done is closed.
func (s *spawned) exitError() error {
	how := "exit status 0"
	if s.err != nil {
		how = s.err.Error()
	}
	out := strings.TrimSpace(s.tail.String())
	if out == "" {
		return fmt.Errorf("%w (%s) and printed nothing", errServerExited, how)
	}
	return fmt.Errorf("%w (%s); its last output:\n%s", errServerExited, how, out)
}

// stop sends SIGTERM to the server's process group and SIGKILL if it has
// not exited 10 s later. It returns once the measured process is gone too:
// under `go run` it may outlive the go command, shutting down gracefully.
func (s *spawned) stop() {
	defer s.closeLog()
	pgid := s.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	deadline := time.After(10 * time.Second)
	select {
	case <-s.done:
	case <-deadline:
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.done
	}
	if s.pid == 0 || s.pid == pgid {
		return
	}
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for syscall.Kill(s.pid, 0) == nil {
		select {
		case <-t.C:
		case <-deadline:
			_ = syscall.Kill(s.pid, syscall.SIGKILL)
			return
		}
	}
}

func (s *spawned) closeLog() {
	if s.log != nil {
		_ = s.log.Close()
	}
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *tailWriter) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.buf)
}
