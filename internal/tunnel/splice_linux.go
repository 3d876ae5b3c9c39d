package tunnel

import (
	"net"
	"syscall"
)

// spliceMax is the pipe size asked for (F_SETPIPE_SZ) and the most one
// splice(2) moves: 1 MiB, the default /proc/sys/fs/pipe-max-size, as Go's
// own io.Copy between TCP sockets uses.
const spliceMax = 1 << 20

// splicePipe is the pipe one direction splices through while bytes flow: it
// is made when a copy begins and closed when the direction parks or ends, so
// an idle tunnel holds no pipe.
type splicePipe struct {
	r, w int // read and write ends
	size int // the pipe's capacity: the most one drain asks for

	// spliceCopy's state, shared with drain and pump
	in              int                // bytes in the pipe
	moved           int64              // bytes pumped out by the last pump
	errno           syscall.Errno      // the last splice's error other than EAGAIN
	drainFn, pumpFn func(uintptr) bool // p.drain and p.pump, bound once
}

// newSplicePipe makes a non-blocking pipe of (up to) spliceMax bytes.
func newSplicePipe() (*splicePipe, error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return nil, err
	}
	p := &splicePipe{r: fds[0], w: fds[1], size: 64 << 10} // the default capacity
	if n, _, e := syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(fds[0]), syscall.F_SETPIPE_SZ, spliceMax); e == 0 {
		p.size = min(int(n), spliceMax)
	}
	return p, nil
}

// close closes both ends (bytes still in the pipe are lost: the tunnel is
// ending when that happens).
func (p *splicePipe) close() {
	_ = syscall.Close(p.r)
	_ = syscall.Close(p.w)
}

// spliceConn returns c's socket when c is a bare *net.TCPConn (splice(2)
// needs the kernel to see every byte), else nil.
func spliceConn(c net.Conn) syscall.RawConn { return rawConn(c) }

// rawSplice is one non-blocking splice(2) of up to n bytes from in to out.
// It is a raw system call (the Go scheduler is not told): with
// SPLICE_F_NONBLOCK on a non-blocking socket and pipe it never waits, it
// only does the kernel's work of moving the bytes (for a loopback peer,
// that peer's receive processing too, 100 µs or more per MiB). Told, the
// scheduler hands the P to another thread when the call lasts past a
// sysmon tick (20 µs) and takes it back after: two thread switches per
// splice that halved the proxy's context switches per MiB when gone
// (see docs/performance.md).
func rawSplice(in, out, n int) (int, syscall.Errno) {
	const spliceNonblock = 0x2 // SPLICE_F_NONBLOCK
	for {
		m, _, e := syscall.RawSyscall6(syscall.SYS_SPLICE, uintptr(in), 0, uintptr(out), 0, uintptr(n), spliceNonblock)
		if e != syscall.EINTR {
			return int(m), e
		}
	}
}

// spliceCopy copies src to dst through p, kernel-side, until src's end of
// stream (nil), an error, or src's read deadline (os.ErrDeadlineExceeded,
// seen only while waiting for bytes, never with bytes in the pipe). Waits
// go through Go's poller (RawConn.Read and Write), so deadlines and Close
// end them as they end a Read. It returns the bytes written to dst.
func spliceCopy(dst, src syscall.RawConn, p *splicePipe) (written int64, err error) {
	if p.drainFn == nil { // made once: a closure per call would be an allocation per splice
		p.drainFn, p.pumpFn = p.drain, p.pump
	}
	for {
		p.errno = 0
		if err = src.Read(p.drainFn); err == nil && p.errno != 0 {
			err = p.errno
		}
		if err != nil {
			return written, err
		}
		if p.in == 0 { // end of stream
			return written, nil
		}
		p.moved = 0
		err = dst.Write(p.pumpFn)
		written += p.moved
		if err == nil && p.errno != 0 {
			err = p.errno
		}
		if err != nil {
			return written, err
		}
	}
}

// drain is spliceCopy's read step on the source socket fd: it fills the
// (empty) pipe with what fd holds, reporting false (wait) while it holds nothing.
func (p *splicePipe) drain(fd uintptr) bool {
	p.in, p.errno = rawSplice(int(fd), p.w, p.size)
	return p.errno != syscall.EAGAIN
}

// pump is spliceCopy's write step on the destination socket fd: it empties
// the pipe into fd, reporting false (wait) while fd takes nothing more.
func (p *splicePipe) pump(fd uintptr) bool {
	for p.in > 0 {
		n, e := rawSplice(p.r, int(fd), p.in)
		if e == syscall.EAGAIN {
			return false
		}
		if e != 0 {
			p.errno = e
			return true
		}
		p.in -= n
		p.moved += int64(n)
	}
	return true
}
