package testutil

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Redis is a redis-server of the test's own, on a free port of loopback.
type Redis struct {
	Addr string
	t    testing.TB
	cmd  *exec.Cmd
}

// StartRedis starts a redis-server for the test, stopped when it ends. It
// skips the test when redis-server is not installed, unless CI=true (where
// .ci/run installs it): then it fails.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	RequireTool(t, "redis-server", "redis-server")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	r := &Redis{Addr: addr, t: t}
	r.Start()
	t.Cleanup(r.Stop)
	return r
}

// Start starts the server (again, after Stop), empty, and waits until it
// answers.
func (r *Redis) Start() {
	r.t.Helper()
	_, port, _ := net.SplitHostPort(r.Addr)
	r.cmd = exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", r.t.TempDir())
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("tcp", r.Addr); err == nil {
			_, _ = fmt.Fprint(c, "PING\r\n")
			buf := make([]byte, 7)
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			n, _ := c.Read(buf)
			_ = c.Close()
			if string(buf[:n]) == "+PONG\r\n" {
				return
			}
		}
		if time.Now().After(deadline) {
			r.t.Fatal("redis-server did not answer in 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server.
func (r *Redis) Stop() {
	if r.cmd != nil && r.cmd.Process != nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
		r.cmd = nil
	}
}

// RequireTool returns the path of a program the test needs. Without it the
// test is skipped, except under CI=true (where .ci/run installs Debian's
// package pkg): then it fails.
func RequireTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not installed (apt-get install %s)", name, pkg)
		}
		t.Skipf("%s is not installed (apt-get install %s)", name, pkg)
	}
	return p
}
