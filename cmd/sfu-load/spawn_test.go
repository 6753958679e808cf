package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

const helperEnv = "SFU_LOAD_HELPER_LISTEN"

// TestHelperServer is not a test: run with helperEnv set, it stands in for
// a server (it answers /healthz) until SIGTERM.
func TestHelperServer(t *testing.T) {
	addr := os.Getenv(helperEnv)
	if addr == "" {
		t.Skip("helper process only")
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})}
	go func() { _ = srv.Serve(ln) }()
	<-ctx.Done()
	_ = srv.Close()
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// A server started under a wrapper (as `go run` does) is found by the
// listening socket it holds, and stopped with its wrapper.
func TestSpawnMeasuresTheServerUnderAWrapper(t *testing.T) {
	port := freePort(t)
	t.Setenv(helperEnv, fmt.Sprintf("127.0.0.1:%d", port))
	script := filepath.Join(t.TempDir(), "wrapper.sh")
	body := fmt.Sprintf("#!/bin/sh\n%s -test.run=^TestHelperServer$\n", os.Args[0])
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	logPath := filepath.Join(t.TempDir(), "server.log")
	s, err := spawnServer(ctx, spawnSpec{flag: "--spawn", args: []string{"/bin/sh", script}, log: logPath}, fmt.Sprintf("ws://127.0.0.1:%d/ws", port), 20*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wrapper := s.cmd.Process.Pid
	if s.pid == wrapper {
		s.stop()
		t.Fatalf("measured the wrapper (%d), not the server under it", wrapper)
	}
	if _, err := sampleProc(s.pid, clockTicks()); err != nil {
		t.Errorf("sampling the server: %v", err)
	}
	s.stop()
	if syscall.Kill(s.pid, 0) == nil {
		t.Fatalf("server %d still runs after stop", s.pid)
	}
}

func TestSpawnReportsAnEarlyExit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err := spawnServer(ctx, spawnSpec{flag: "--spawn", args: []string{"/bin/sh", "-c", "exit"}}, fmt.Sprintf("ws://127.0.0.1:%d/ws", freePort(t)), 20*time.Second)
	if err == nil {
		t.Fatal("a server that exits at once was reported ready")
	}
	t.Log(err)
}
