package sfu

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/pion/srtp/v3"
	"golang.org/x/net/ipv4"
)

// floorReceiverEnv makes the test binary a receiver for
// BenchmarkFloorLoopback instead of running tests.
const floorReceiverEnv = "SFU_FLOOR_RECEIVER"

func TestMain(m *testing.M) {
	if os.Getenv(floorReceiverEnv) != "" {
		floorReceiver()
		return
	}
	os.Exit(m.Run())
}

// floorReceiver opens floorSubs sockets, prints their ports, reads them
// until stdin closes.
func floorReceiver() {
	ports := make([]string, floorSubs)
	for i := range ports {
		r, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			fmt.Println("error:", err)
			return
		}
		_ = r.SetReadBuffer(4 << 20)
		ports[i] = strconv.Itoa(r.LocalAddr().(*net.UDPAddr).Port)
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, err := r.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	fmt.Println(strings.Join(ports, " "))
	_, _ = io.Copy(io.Discard, os.Stdin)
}

const floorSubs = 50

// BenchmarkFloorLoopback sends 1200-byte datagrams over loopback to 50
// sockets, each read by a goroutine as the load tool's subscribers read
// theirs, paced at 200 rounds a second (a 200 packets/s video track to 50
// subscribers): one sendto per packet or one sendmmsg per round, to
// readers in this process or in another one (as the load tool is).
// cpu-ns/pkt is the sending thread's CPU time per packet, which on
// loopback includes the kernel's delivery to the receiving socket and the
// wake-up of its reader: the least a server measured this way pays per
// forwarded packet, before any SRTP or bookkeeping.
func BenchmarkFloorLoopback(b *testing.B) {
	for _, mode := range []struct {
		name         string
		batch, other bool
	}{{"sendmmsg/same-process", true, false}, {"sendto/other-process", false, true}, {"sendmmsg/other-process", true, true}} {
		b.Run(mode.name, func(b *testing.B) {
			var addrs []*net.UDPAddr
			if mode.other {
				addrs = floorChild(b)
			} else {
				addrs = floorSockets(b)
			}
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			pc := ipv4.NewPacketConn(c)
			payload := make([]byte, 1200)
			msgs := make([]ipv4.Message, len(addrs))
			for i := range msgs {
				msgs[i] = ipv4.Message{Buffers: [][]byte{payload}, Addr: addrs[i]}
			}
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var cpu time.Duration
			next := time.Now()
			b.ResetTimer()
			for sent := 0; sent < b.N; sent += floorSubs {
				next = next.Add(5 * time.Millisecond)
				time.Sleep(time.Until(next))
				t0 := threadCPU()
				if mode.batch {
					if _, err := pc.WriteBatch(msgs, 0); err != nil {
						b.Fatal(err)
					}
				} else {
					for _, a := range addrs {
						if _, err := c.WriteToUDP(payload, a); err != nil {
							b.Fatal(err)
						}
					}
				}
				cpu += threadCPU() - t0
			}
			rounds := (b.N + floorSubs - 1) / floorSubs
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(rounds*floorSubs), "cpu-ns/pkt")
		})
	}
}

// floorSockets opens the receiving sockets in this process.
func floorSockets(b *testing.B) []*net.UDPAddr {
	addrs := make([]*net.UDPAddr, floorSubs)
	for i := range addrs {
		r, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { r.Close() })
		_ = r.SetReadBuffer(4 << 20)
		addrs[i] = r.LocalAddr().(*net.UDPAddr)
		go func() {
			buf := make([]byte, 1500)
			for {
				if _, err := r.Read(buf); err != nil {
					return
				}
			}
		}()
	}
	return addrs
}

// floorChild starts this test binary as a receiver and returns its sockets.
func floorChild(b *testing.B) []*net.UDPAddr {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), floorReceiverEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		stdin.Close()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		b.Fatalf("receiver: %v", err)
	}
	var addrs []*net.UDPAddr
	for _, f := range strings.Fields(line) {
		port, err := strconv.Atoi(f)
		if err != nil {
			b.Fatalf("receiver: %q", line)
		}
		addrs = append(addrs, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	}
	return addrs
}

// threadCPU is the calling OS thread's CPU time (user and system).
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(rusageThread, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rusageThread is Linux's RUSAGE_THREAD.
const rusageThread = 1

// BenchmarkDirectFanout forwards a 1200-byte video packet to 50
// subscriptions on the direct path, paced and measured as
// BenchmarkFloorLoopback/sendmmsg/other-process: each packet is rewritten,
// numbered, sealed (AEAD_AES_128_GCM) into the fan-out's batch and sent in
// one sendmmsg to sockets of another process. cpu-ns/pkt against the
// floor's is what the server adds per forwarded packet; allocs/op must be
// 0.
func BenchmarkDirectFanout(b *testing.B) {
	addrs := floorChild(b)
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	conn, err := newBatchConn(c)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	profile := srtp.ProtectionProfileAeadAes128Gcm
	keys := &srtp.Config{Profile: profile}
	keys.Keys.LocalMasterKey, keys.Keys.LocalMasterSalt = make([]byte, 16), make([]byte, 12)
	up, _ := fanout(floorSubs, nil)
	for i, d := range *up.downs.Load() {
		d.sub.direct.cur.Store(&route{conn: conn, addr: addrs[i].AddrPort(), keys: keys})
	}
	p := videoPacket(0, true)
	p.Payload = make([]byte, 1200)
	p.Payload[0] = 0x10
	now := time.Now().UnixNano()
	up.forward(0, p, true, now) // the keyframe every subscription starts at
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var cpu time.Duration
	next := time.Now()
	b.ReportAllocs()
	b.ResetTimer()
	rounds := 0
	for sent := 0; sent < b.N; sent += floorSubs {
		next = next.Add(5 * time.Millisecond)
		time.Sleep(time.Until(next))
		p.SequenceNumber++
		p.Timestamp += 3000
		t0 := threadCPU()
		up.forward(0, p, false, now)
		cpu += threadCPU() - t0
		rounds++
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(rounds*floorSubs), "cpu-ns/pkt")
	for _, d := range *up.downs.Load() {
		if got := d.packets.Load(); got != uint64(rounds+1) {
			b.Fatalf("a subscription sent %d packets, want %d", got, rounds+1)
		}
	}
}
