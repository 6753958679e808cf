package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Process measurements from Linux's /proc.

// procStat is what the tool reads from /proc/PID/stat.
type procStat struct {
	ppid         int
	utime, stime uint64 // clock ticks
}

// parseStat parses the text of /proc/PID/stat. The command name (field 2)
// is in parentheses and may hold spaces and parentheses itself, so the
// fields are counted from the last ')'.
func parseStat(text string) (procStat, error) {
	var st procStat
	i := strings.LastIndexByte(text, ')')
	if i < 0 {
		return st, errors.New("stat: no command name")
	}
	// After ')': state(3) ppid(4) ... utime(14) stime(15).
	f := strings.Fields(text[i+1:])
	if len(f) < 13 {
		return st, fmt.Errorf("stat: %d fields after the command name, want at least 13", len(f))
	}
	var err error
	if st.ppid, err = strconv.Atoi(f[1]); err != nil {
		return st, fmt.Errorf("stat: ppid: %w", err)
	}
	if st.utime, err = strconv.ParseUint(f[11], 10, 64); err != nil {
		return st, fmt.Errorf("stat: utime: %w", err)
	}
	if st.stime, err = strconv.ParseUint(f[12], 10, 64); err != nil {
		return st, fmt.Errorf("stat: stime: %w", err)
	}
	return st, nil
}

// parseRSS returns VmRSS in kB from the text of /proc/PID/status.
func parseRSS(text string) (int64, error) {
	for line := range strings.Lines(text) {
		rest, ok := strings.CutPrefix(line, "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("status: unexpected VmRSS line %q", strings.TrimSpace(line))
		}
		return strconv.ParseInt(f[0], 10, 64)
	}
	return 0, errors.New("status: no VmRSS line (a kernel thread or a zombie?)")
}

// clockTicks is the unit of utime and stime (sysconf(_SC_CLK_TCK)), which
// the kernel hands every process in its auxiliary vector as AT_CLKTCK.
// Without /proc it falls back to 100, the value on every common Linux.
func clockTicks() int64 {
	if hz := parseAuxvClkTck(readFileOrNil("/proc/self/auxv")); hz > 0 {
		return hz
	}
	return 100
}

const atClkTck = 17 // AT_CLKTCK in <elf.h>

// parseAuxvClkTck finds AT_CLKTCK in a native-endian 64-bit auxv.
func parseAuxvClkTck(auxv []byte) int64 {
	for len(auxv) >= 16 {
		key := binary.NativeEndian.Uint64(auxv)
		val := binary.NativeEndian.Uint64(auxv[8:])
		auxv = auxv[16:]
		if key == atClkTck {
			return int64(val)
		}
		if key == 0 {
			break
		}
	}
	return 0
}

func readFileOrNil(path string) []byte {
	b, _ := os.ReadFile(path)
	return b
}

// procSample is a process's CPU time and memory at one moment.
type procSample struct {
	at  time.Time
	cpu time.Duration // user + system, all threads
	rss int64         // kB
}

// sampleProc reads /proc/PID/stat and /proc/PID/status.
func sampleProc(pid int, hz int64) (procSample, error) {
	s := procSample{at: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	st, err := parseStat(string(stat))
	if err != nil {
		return s, err
	}
	s.cpu = time.Duration(st.utime+st.stime) * time.Second / time.Duration(hz)
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	s.rss, err = parseRSS(string(status))
	return s, err
}

// selfCPU is the tool's own CPU time (user + system), with microsecond
// precision.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// descendants lists the living descendants of pid, found by scanning the
// parent of every process in /proc.
func descendants(pid int) []int {
	dir, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	children := map[int][]int{}
	for _, e := range dir {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		st, err := parseStat(string(b))
		if err != nil {
			continue
		}
		children[st.ppid] = append(children[st.ppid], p)
	}
	var out []int
	queue := children[pid]
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, p)
		queue = append(queue, children[p]...)
	}
	return out
}

// serverPID picks the process to measure among pid and its descendants:
// the one that holds the listening TCP socket of port, or else the last
// descendant found (the deepest), or else pid. A server started directly
// is pid itself; under `go run` it is the binary the go command started.
func serverPID(pid, port int) int {
	cands := append([]int{pid}, descendants(pid)...)
	if inodes := listeningInodes(port); len(inodes) > 0 {
		for _, p := range cands {
			if holdsSocket(p, inodes) {
				return p
			}
		}
	}
	return cands[len(cands)-1]
}

// listeningInodes returns the inodes of the TCP sockets listening on port.
func listeningInodes(port int) map[string]bool {
	out := map[string]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		for ino := range parseListeners(string(readFileOrNil(f)), port) {
			out[ino] = true
		}
	}
	return out
}

// parseListeners returns the socket inodes listening on port in the text
// of /proc/net/tcp or tcp6.
func parseListeners(text string, port int) map[string]bool {
	out := map[string]bool{}
	want := fmt.Sprintf(":%04X", port)
	for line := range strings.Lines(text) {
		// sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
		f := strings.Fields(line)
		if len(f) < 10 || f[3] != "0A" || !strings.HasSuffix(f[1], want) {
			continue
		}
		out[f[9]] = true
	}
	return out
}

// holdsSocket reports whether pid has one of the socket inodes open.
func holdsSocket(pid int, inodes map[string]bool) bool {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, fd := range fds {
		link, err := os.Readlink(dir + "/" + fd.Name())
		if err != nil {
			continue
		}
		if ino, ok := strings.CutPrefix(link, "socket:["); ok && inodes[strings.TrimSuffix(ino, "]")] {
			return true
		}
	}
	return false
}

// commName returns the command name of pid ("?" if unknown).
func commName(pid int) string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	if err != nil {
		return "?"
	}
	return string(bytes.TrimSpace(b))
}
