package sfu

import (
	"io"
	"net"
	"net/netip"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// On Linux the media socket is read and written with raw system calls
// (recvfrom, sendmmsg) on its non-blocking descriptor, through
// syscall.RawConn so that a full buffer or an empty socket still waits in
// the runtime's poller.
//
// A raw call skips the scheduler's syscall bookkeeping, and that is the
// point: every ordinary system call made after the process went idle wakes
// the runtime's monitor thread (sysmon), which then ticks every 20 µs for
// at least a millisecond. A media server goes idle and wakes a thousand
// times a second (each packet in, each RTCP message), so those ticks cost
// it about 15% of its CPU. These calls never block, so the scheduler has
// nothing to take back from them.

// mmsghdr is the kernel's struct mmsghdr.
type mmsghdr struct {
	hdr unix.Msghdr
	len uint32
	_   [4]byte
}

// sendQueue holds a batch's packets in sendmmsg's layout.
type sendQueue struct {
	hdrs  [batchSize]mmsghdr
	iovs  [batchSize]unix.Iovec
	names [batchSize]unix.RawSockaddrInet6 // or a RawSockaddrInet4 in its first bytes

	// The call in progress; fn is made once, so that a send allocates nothing.
	from, to int
	sent     int
	errno    syscall.Errno
	fn       func(fd uintptr) bool
}

func (q *sendQueue) init() {
	q.fn = func(fd uintptr) bool {
		n, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&q.hdrs[q.from])), uintptr(q.to-q.from), 0, 0, 0)
		if e == unix.EAGAIN {
			return false // wait until the socket can be written
		}
		q.errno, q.sent = e, int(n)
		return true
	}
}

// set makes packet i the datagram buf to addr. buf is not empty.
func (q *sendQueue) set(i int, buf []byte, addr netip.AddrPort) {
	q.iovs[i].Base = &buf[0]
	q.iovs[i].SetLen(len(buf))
	h := &q.hdrs[i].hdr
	h.Iov = &q.iovs[i]
	h.SetIovlen(1)
	name := &q.names[i]
	h.Name = (*byte)(unsafe.Pointer(name))
	if a := addr.Addr(); a.Is4() || a.Is4In6() {
		s := (*unix.RawSockaddrInet4)(unsafe.Pointer(name))
		*s = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.Unmap().As4()}
		setPort(&s.Port, addr.Port())
		h.Namelen = unix.SizeofSockaddrInet4
	} else {
		*name = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
		setPort(&name.Port, addr.Port())
		h.Namelen = unix.SizeofSockaddrInet6
	}
}

// sockIO is the raw reading and writing of one socket.
type sockIO struct {
	rc syscall.RawConn

	// The read in progress: one reader at a time (the UDP mux's read loop).
	rbuf  []byte
	from  unix.RawSockaddrAny
	n     int
	rerr  syscall.Errno
	recvf func(fd uintptr) bool
}

func newSockIO(c *net.UDPConn) (*sockIO, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	s := &sockIO{rc: rc}
	s.recvf = func(fd uintptr) bool {
		fromLen := uint32(unsafe.Sizeof(s.from))
		n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(unsafe.SliceData(s.rbuf))), uintptr(len(s.rbuf)),
			0, uintptr(unsafe.Pointer(&s.from)), uintptr(unsafe.Pointer(&fromLen)))
		if e == unix.EAGAIN {
			return false // wait until a datagram comes
		}
		s.rerr, s.n = e, int(n)
		return true
	}
	return s, nil
}

// recv reads one datagram into b.
func (s *sockIO) recv(b []byte) (int, netip.AddrPort, error) {
	if len(b) == 0 {
		return 0, netip.AddrPort{}, nil
	}
	s.rbuf = b
	err := s.rc.Read(s.recvf)
	s.rbuf = nil
	if err != nil {
		return 0, netip.AddrPort{}, err
	}
	if s.rerr != 0 {
		return 0, netip.AddrPort{}, &net.OpError{Op: "read", Net: "udp", Err: s.rerr}
	}
	return s.n, sockaddrAddrPort(&s.from), nil
}

// send sends packets [0, n) of q, each once; what the kernel refuses is
// lost, as with a failed sendto, and the first refusal is returned.
func (s *sockIO) send(q *sendQueue, n int) error {
	var first error
	for q.from = 0; q.from < n; q.from += q.sent {
		q.to, q.sent, q.errno = n, 0, 0
		if err := s.rc.Write(q.fn); err != nil {
			return err // closed
		}
		if q.errno != 0 || q.sent <= 0 {
			if first == nil {
				var err error = io.ErrShortWrite
				if q.errno != 0 {
					err = q.errno
				}
				first = &net.OpError{Op: "write", Net: "udp", Err: err}
			}
			q.sent = 1 // skip the packet the kernel refused (e.g. no route to it)
		}
	}
	return first
}

func sockaddrAddrPort(sa *unix.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case unix.AF_INET:
		s := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom4(s.Addr), getPort(&s.Port))
	case unix.AF_INET6:
		s := (*unix.RawSockaddrInet6)(unsafe.Pointer(sa))
		return netip.AddrPortFrom(netip.AddrFrom16(s.Addr), getPort(&s.Port))
	}
	return netip.AddrPort{}
}

// setPort and getPort store and load a port in network byte order.
func setPort(p *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(p))
	b[0], b[1] = byte(port>>8), byte(port)
}

func getPort(p *uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(p))
	return uint16(b[0])<<8 | uint16(b[1])
}
