package main

import (
	"encoding/binary"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// A /proc/PID/stat line whose command name holds spaces and parentheses.
const sampleStat = "4242 (sfu (worker) 2) S 4200 4242 4200 34816 4242 4194560 9876 0 12 0 " +
	"1234 567 0 0 20 0 17 0 123456 1234567890 4321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"

func TestParseStat(t *testing.T) {
	st, err := parseStat(sampleStat)
	if err != nil {
		t.Fatal(err)
	}
	if st.ppid != 4200 || st.utime != 1234 || st.stime != 567 {
		t.Fatalf("got ppid %d utime %d stime %d, want 4200 1234 567", st.ppid, st.utime, st.stime)
	}
	for _, bad := range []string{"", "4242 sfu S 1", "4242 (sfu) S 4200 1 2", strings.Replace(sampleStat, " 1234 ", " x ", 1)} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q) succeeded", bad)
		}
	}
}

const sampleStatus = `Name:	sfu
Umask:	0022
State:	S (sleeping)
Tgid:	4242
VmPeak:	 1289312 kB
VmSize:	 1289312 kB
VmHWM:	   40212 kB
VmRSS:	   38124 kB
RssAnon:	   20000 kB
Threads:	12
`

func TestParseRSS(t *testing.T) {
	rss, err := parseRSS(sampleStatus)
	if err != nil || rss != 38124 {
		t.Fatalf("parseRSS = %d, %v; want 38124", rss, err)
	}
	if _, err := parseRSS("Name:\tkthreadd\nState:\tS (sleeping)\n"); err == nil {
		t.Error("a status without VmRSS parsed")
	}
	if _, err := parseRSS("VmRSS:\t12 MB\n"); err == nil {
		t.Error("a VmRSS in another unit parsed")
	}
}

func TestParseAuxvClkTck(t *testing.T) {
	aux := func(pairs ...uint64) []byte {
		b := make([]byte, 8*len(pairs))
		for i, v := range pairs {
			binary.NativeEndian.PutUint64(b[8*i:], v)
		}
		return b
	}
	if got := parseAuxvClkTck(aux(6, 4096, atClkTck, 250, 0, 0)); got != 250 {
		t.Errorf("got %d, want 250", got)
	}
	if got := parseAuxvClkTck(aux(6, 4096, 0, 0, atClkTck, 250)); got != 0 {
		t.Errorf("read past AT_NULL: got %d", got)
	}
	if hz := clockTicks(); hz <= 0 || hz > 10000 {
		t.Errorf("clockTicks() = %d", hz)
	}
}

func TestParseListeners(t *testing.T) {
	const tcp = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 51234 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000  1000        0 51299 1 0000000000000000 20 4 30 10 -1
   2: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0000000000000000 100 0 0 10 0
`
	got := parseListeners(tcp, 8080)
	if len(got) != 1 || !got["51234"] {
		t.Fatalf("listeners on 8080: %v, want only inode 51234", got)
	}
}

func TestSampleOwnProcess(t *testing.T) {
	pid, hz := os.Getpid(), clockTicks()
	s0, err := sampleProc(pid, hz)
	if err != nil {
		t.Fatal(err)
	}
	if s0.rss <= 0 {
		t.Fatalf("rss %d kB", s0.rss)
	}
	// Burn 100 ms of CPU: the kernel's count must move by about as much.
	start := selfCPU()
	for x := 0; selfCPU()-start < 100*time.Millisecond; x++ {
		_ = x * x
	}
	s1, err := sampleProc(pid, hz)
	if err != nil {
		t.Fatal(err)
	}
	if d := s1.cpu - s0.cpu; d < 50*time.Millisecond {
		t.Fatalf("CPU time grew by %v after burning 100 ms", d)
	}
}

func TestServerPIDFindsTheListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	if got := serverPID(os.Getpid(), port); got != os.Getpid() {
		t.Fatalf("serverPID = %d, want this process (%d)", got, os.Getpid())
	}
}
