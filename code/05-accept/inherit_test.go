//go:build linux

package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
	"golang.org/x/sys/unix"
)

// TestAcceptInherits: an accepted socket is a copy of the listening one, so
// it starts with the listener's socket options: SO_KEEPALIVE, SO_REUSEADDR,
// TCP_NODELAY, a receive buffer size that setsockopt fixed (SO_RCVBUF) and
// a receive timeout (SO_RCVTIMEO). What it does not get is what belongs to
// the descriptor or the open file: close-on-exec and O_NONBLOCK, which
// only accept4's flags set. A socket accepted from a listener with none of
// these options set has none of them.
func TestAcceptInherits(t *testing.T) {
	booktest.CheckFDs(t)
	set, addr := listener(t, unix.SOCK_NONBLOCK) // with SOCK_CLOEXEC too
	for _, o := range [][3]int{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
		{unix.SOL_SOCKET, unix.SO_REUSEADDR, 1},
		{unix.IPPROTO_TCP, unix.TCP_NODELAY, 1},
		{unix.SOL_SOCKET, unix.SO_RCVBUF, 16384},
	} {
		if err := unix.SetsockoptInt(set, o[0], o[1], o[2]); err != nil {
			t.Fatal(err)
		}
	}
	tv := unix.NsecToTimeval((3 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(set, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	plain, plainAddr := listener(t, 0)

	dial(t, addr)
	got := accept(t, set, 0).fd // no SOCK_CLOEXEC, no SOCK_NONBLOCK
	dial(t, plainAddr)
	other := accept(t, plain, 0).fd

	opt := func(fd, level, name int) int {
		t.Helper()
		v, err := unix.GetsockoptInt(fd, level, name)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, o := range []struct {
		name        string
		level, opt  int
		inherit, no int
	}{
		{"SO_KEEPALIVE", unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1, 0},
		{"SO_REUSEADDR", unix.SOL_SOCKET, unix.SO_REUSEADDR, 1, 0},
		{"TCP_NODELAY", unix.IPPROTO_TCP, unix.TCP_NODELAY, 1, 0},
	} {
		if v := opt(got, o.level, o.opt); v != o.inherit {
			t.Errorf("accepted from a listener with %s: %d, want %d", o.name, v, o.inherit)
		}
		if v := opt(other, o.level, o.opt); v != o.no {
			t.Errorf("accepted from a plain listener: %s %d, want %d", o.name, v, o.no)
		}
	}
	// The kernel doubles what setsockopt asked for, for its bookkeeping.
	if l, a, p := opt(set, unix.SOL_SOCKET, unix.SO_RCVBUF), opt(got, unix.SOL_SOCKET, unix.SO_RCVBUF), opt(other, unix.SOL_SOCKET, unix.SO_RCVBUF); a != l || a == p {
		t.Errorf("SO_RCVBUF: listener %d, accepted %d, accepted from a plain listener %d; want the first two equal, the third different", l, a, p)
	}
	for _, c := range []struct {
		fd   int
		want time.Duration
	}{{got, 3 * time.Second}, {other, 0}} {
		if tv, err := unix.GetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO); err != nil || time.Duration(tv.Nano()) != c.want {
			t.Errorf("SO_RCVTIMEO %v, %v; want %v", time.Duration(tv.Nano()), err, c.want)
		}
	}
	// The listener has FD_CLOEXEC and O_NONBLOCK; the accepted one neither.
	fdf, _ := unix.FcntlInt(uintptr(got), unix.F_GETFD, 0)
	fl, _ := unix.FcntlInt(uintptr(got), unix.F_GETFL, 0)
	lfdf, _ := unix.FcntlInt(uintptr(set), unix.F_GETFD, 0)
	lfl, _ := unix.FcntlInt(uintptr(set), unix.F_GETFL, 0)
	if lfdf&unix.FD_CLOEXEC == 0 || lfl&unix.O_NONBLOCK == 0 || fdf&unix.FD_CLOEXEC != 0 || fl&unix.O_NONBLOCK != 0 {
		t.Errorf("listener F_GETFD %#x F_GETFL %#x, accepted F_GETFD %#x F_GETFL %#x; want FD_CLOEXEC and O_NONBLOCK on the listener only",
			lfdf, lfl, fdf, fl)
	}
}

// TestTimeoutReadEINTR: a signal that interrupts a read on a socket with a
// receive timeout (SO_RCVTIMEO) makes the read fail with EINTR, even when
// the signal's handler asks for restarting (SA_RESTART, as every handler
// of Go's runtime does): signal(7) lists such reads among the calls Linux
// never restarts. Without a timeout the same read is restarted, and returns
// the data when it comes. Go's runtime sends its own threads SIGURG to
// preempt goroutines, at moments no program chooses, so a Go program that
// sets SO_RCVTIMEO must retry a read that fails with EINTR. The test sends
// SIGURG itself, to the thread blocked in read.
func TestTimeoutReadEINTR(t *testing.T) {
	for _, timeout := range []time.Duration{10 * time.Second, 0} {
		t.Run("SO_RCVTIMEO="+timeout.String(), func(t *testing.T) {
			booktest.CheckFDs(t)
			lfd, addr := listener(t, 0)
			c := dial(t, addr)
			s := accept(t, lfd, unix.SOCK_CLOEXEC)
			tv := unix.NsecToTimeval(timeout.Nanoseconds())
			if err := unix.SetsockoptTimeval(s.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
				t.Fatal(err)
			}
			type result struct {
				n   int
				err error
			}
			tid, done := make(chan int, 1), make(chan result, 1)
			go func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				tid <- unix.Gettid()
				n, err := unix.Read(s.fd, make([]byte, 16))
				done <- result{n, err}
			}()
			thread := <-tid
			waitInRead(t, thread, s.fd)
			if err := unix.Tgkill(os.Getpid(), thread, unix.SIGURG); err != nil {
				t.Fatal(err)
			}
			if timeout != 0 {
				if r := <-done; r.err != unix.EINTR {
					t.Fatalf("read with SO_RCVTIMEO, interrupted by SIGURG: %d, %v; want EINTR", r.n, r.err)
				}
				return
			}
			// Restarted: once the signal is handled the thread is back in
			// read, and the data ends it.
			waitInRead(t, thread, s.fd)
			c.write(t, "x")
			if r := <-done; r.n != 1 || r.err != nil {
				t.Fatalf("read without a timeout, interrupted by SIGURG: %d, %v; want 1 byte", r.n, r.err)
			}
		})
	}
}

// waitInRead waits until thread tid of this process is blocked in read(fd)
// with no signal pending.
func waitInRead(t *testing.T, tid, fd int) {
	t.Helper()
	dir := "/proc/self/task/" + strconv.Itoa(tid)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		sc, err1 := os.ReadFile(dir + "/syscall")
		st, err2 := os.ReadFile(dir + "/status")
		if err1 != nil || err2 != nil {
			t.Skipf("cannot see the thread's system call: %v, %v", err1, err2)
		}
		f := strings.Fields(string(sc))
		if len(f) > 1 && f[0] == strconv.Itoa(unix.SYS_READ) && f[1] == "0x"+strconv.FormatInt(int64(fd), 16) &&
			strings.Contains(string(st), "\nSigPnd:\t0000000000000000\n") && strings.Contains(string(st), "\nState:\tS") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("thread %d not blocked in read(%d): %s", tid, fd, sc)
		}
	}
}
