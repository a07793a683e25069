//go:build linux

package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestMain builds the program once for all the tests, not once per session
// (booktest.Run).
func TestMain(m *testing.M) { os.Exit(booktest.Run(m)) }

// dialTest connects to addr with a bounded wait, and closes the
// connection when the test ends (closing it twice is harmless).
func dialTest(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.(*net.TCPConn)
}

// echoOf sends line on c and returns what comes back, up to a newline,
// waiting at most wait: "" if nothing came in time.
func echoOf(t *testing.T, c net.Conn, line string, wait time.Duration) string {
	t.Helper()
	if _, err := c.Write([]byte(line)); err != nil {
		t.Fatal(err)
	}
	return readLine(c, wait)
}

// readLine reads up to a newline, waiting at most wait.
func readLine(c net.Conn, wait time.Duration) string {
	c.SetReadDeadline(time.Now().Add(wait))
	got, _ := bufio.NewReader(c).ReadString('\n')
	return got
}

// openFDs lists the descriptors process pid has open, in order, with
// what each is.
func openFDs(t *testing.T, pid int) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			fds = append(fds, n)
		}
	}
	slices.Sort(fds)
	var out []string
	for _, fd := range fds {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, fd))
		if strings.HasPrefix(target, "socket:") {
			target = "socket"
		}
		out = append(out, fmt.Sprintf("%d %s", fd, target))
	}
	return out
}

// TestTranscript records the loop on epoll with two clients, played by the
// test in a fixed order as in chapter 16: A connects and says nothing; B
// connects, is echoed, and shuts down its sending side (EPOLLRDHUP); A is
// echoed and leaves; Ctrl-C. Each client costs one epoll_ctl, not a place
// in every call.
func TestTranscript(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server", "-addr", "127.0.0.1:0")
	s.Replace(`LookupPort\(tcp, "0"\) = 0`, `LookupPort(tcp, "8080") = 8080`)
	s.Replace(`127\.0\.0\.1:0\b`, "127.0.0.1:8080")
	// A signal (Go's preemption, or the Ctrl-C itself) now and then ends a
	// wait with EINTR, and the program waits again: a line some runs print
	// and others do not, which the book does not show.
	s.Replace(`(?m)^(?:epoll_wait|poll)\(.*\) = -1 EINTR \(Interrupted system call\)\n`, "")

	a := dialTest(t, srv.Addr())
	srv.WaitFor("EPOLL_CTL_ADD, 5,")
	b := dialTest(t, srv.Addr())
	srv.WaitFor("EPOLL_CTL_ADD, 6,")
	if got := echoOf(t, b, "hello\n", 10*time.Second); got != "hello\n" {
		t.Fatalf("B: got %q, want its echo", got)
	}
	srv.WaitFor("EAGAIN")
	if err := b.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	srv.WaitFor("close(6) = 0")
	if got := echoOf(t, a, "late\n", 10*time.Second); got != "late\n" {
		t.Fatalf("A: got %q, want its echo", got)
	}
	srv.WaitForN("EAGAIN", 2)
	want := []string{"0 /dev/null", "1 pipe", "2 pipe", "3 socket", "4 anon_inode:[eventpoll]", "5 socket"}
	if got := openFDs(t, srv.Pid()); !fdsMatch(got, want) {
		t.Errorf("with client A connected: descriptors %q, want %q", got, want)
	}
	a.Close()
	srv.WaitFor("close(5) = 0")
	srv.Interrupt()
	s.Check("run")

	out := srv.Output()
	for _, want := range []string{
		"epoll_create1(EPOLL_CLOEXEC) = 4",
		"epoll_ctl(4, EPOLL_CTL_ADD, 6, {events=EPOLLIN|EPOLLRDHUP, fd=6}) = 0",
		"epoll_wait(4, [{events=EPOLLIN|EPOLLRDHUP, fd=6}], 128, -1) = 1",
		"epoll_wait(4, [{events=EPOLLIN, fd=5}], 128, -1) = 1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the server did not print %q:\n%s", want, out)
		}
	}
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGINT, want 0", code)
	}
}

// fdsMatch compares descriptor lists, taking stdin, stdout and stderr as
// whatever the test gave.
func fdsMatch(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if i > 2 && got[i] != want[i] {
			return false
		}
	}
	return true
}

// TestEdgeTriggered: with -et, epoll reports a socket when bytes arrive,
// once, not while there are bytes unread. With -reads 1 -bufsize 4 the
// loop reads 4 bytes of a 12-byte line and stops: the rest is never
// reported, and the client waits for ever (here: half a second). The same
// flags level-triggered echo the line, a read per turn; and -et with the
// default -reads (until EAGAIN) echoes it too.
func TestEdgeTriggered(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		flags []string
		echo  bool
	}{
		{[]string{"-et", "-reads", "1", "-bufsize", "4"}, false},
		{[]string{"-reads", "1", "-bufsize", "4"}, true},
		{[]string{"-et", "-bufsize", "4"}, true},
	} {
		s := booktest.New(t)
		srv := s.Start("server", c.flags...)
		conn := dialTest(t, srv.Addr())
		wait := 10 * time.Second
		if !c.echo {
			wait = 500 * time.Millisecond
		}
		got := echoOf(t, conn, "hello world\n", wait)
		if c.echo && got != "hello world\n" || !c.echo && got != "" {
			t.Errorf("%s: got %q, want echo %v; the server printed:\n%s", strings.Join(c.flags, " "), got, c.echo, srv.Output())
		}
		if !c.echo && (!strings.Contains(srv.Output(), `read(5, "hell", 4) = 4`) || strings.Contains(srv.Output(), `"o wo"`)) {
			t.Errorf("-et -reads 1: want one read of 4 bytes and no more:\n%s", srv.Output())
		}
		srv.Interrupt()
	}
}

// TestAlwaysOutSpins: with -alwaysout the loop asks for EPOLLOUT on an
// idle client, which is always writable, and level-triggered epoll reports
// it at every call: the loop wakes a thousand times (and more) with
// nothing to do. Without it, one idle client costs no wake-up at all.
func TestAlwaysOutSpins(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server", "-alwaysout")
	dialTest(t, srv.Addr())
	// Not WaitForN: its pattern for 1000 matches is slow on a long output.
	for deadline := time.Now().Add(10 * time.Second); strings.Count(srv.Output(), "{events=EPOLLOUT, fd=5}") < 1000; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("with -alwaysout and an idle client: fewer than 1000 wake-ups for EPOLLOUT in 10 s:\n%s", srv.Output())
		}
	}
	srv.Interrupt()
	t.Logf("with -alwaysout: %d wake-ups for one idle client", strings.Count(srv.Output(), "{events=EPOLLOUT, fd=5}"))

	quiet := booktest.New(t)
	srv = quiet.Start("server")
	c := dialTest(t, srv.Addr())
	if got := echoOf(t, c, "once\n", 10*time.Second); got != "once\n" {
		t.Fatalf("got %q, want the echo", got)
	}
	srv.WaitFor("EAGAIN")
	before := strings.Count(srv.Output(), "epoll_wait(")
	time.Sleep(300 * time.Millisecond)
	if after := strings.Count(srv.Output(), "epoll_wait("); after != before {
		t.Errorf("an idle client woke the loop %d times in 300 ms, want 0", after-before)
	}
	srv.Interrupt()
}

// TestErrors: a client that resets (SO_LINGER 0, then close) is reported
// with EPOLLERR and EPOLLHUP, whether asked for or not; the read fails
// with ECONNRESET, the server says so on stderr, closes it, and goes on.
func TestErrors(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server")
	c := dialTest(t, srv.Addr())
	srv.WaitFor("EPOLL_CTL_ADD, 5,")
	c.SetLinger(0)
	c.Close()
	srv.WaitFor("close(5) = 0")
	for _, want := range []string{"{events=EPOLLIN|EPOLLRDHUP|EPOLLERR|EPOLLHUP, fd=5}", "read(5, \"\", 4096) = -1 ECONNRESET", "read 5: connection reset by peer"} {
		if !strings.Contains(srv.Output(), want) {
			t.Errorf("no %q in:\n%s", want, srv.Output())
		}
	}
	d := dialTest(t, srv.Addr())
	if got := echoOf(t, d, "next\n", 10*time.Second); got != "next\n" {
		t.Errorf("the next client: got %q, want its echo", got)
	}
	srv.Interrupt()
}

// TestDupKeepsReporting: epoll registers the open file description, not
// the number. Close the number and keep a duplicate, and epoll_wait still
// reports the socket, under the old number, which EPOLL_CTL_DEL no longer
// accepts (EBADF). Only when the last descriptor is closed does it stop.
func TestDupKeepsReporting(t *testing.T) {
	booktest.CheckFDs(t)
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(epfd)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[1])
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, sp[0], &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(sp[0])}); err != nil {
		t.Fatal(err)
	}
	dup, err := unix.FcntlInt(uintptr(sp[0]), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	old := sp[0]
	unix.Close(old)
	if _, err := unix.Write(sp[1], []byte("x")); err != nil {
		t.Fatal(err)
	}
	events := make([]unix.EpollEvent, 4)
	n, err := waitEINTR(epfd, events)
	if n != 1 || err != nil || int(events[0].Fd) != old {
		t.Errorf("after close(%d) with dup %d open: epoll_wait = %d, %v, %+v; want one event for %d", old, dup, n, err, events[:max(n, 0)], old)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_DEL, old, nil); err != unix.EBADF {
		t.Errorf("EPOLL_CTL_DEL %d after close: %v, want EBADF", old, err)
	}
	unix.Close(dup)
	if n, err := waitEINTR(epfd, events); n != 0 || err != nil {
		t.Errorf("after the last descriptor closed: epoll_wait = %d, %v; want 0", n, err)
	}
}

func waitEINTR(epfd int, events []unix.EpollEvent) (int, error) {
	n, err := unix.EpollWait(epfd, events, 0)
	for err == unix.EINTR {
		n, err = unix.EpollWait(epfd, events, 0)
	}
	return n, err
}

// TestEINTR: a signal to the thread that waits in epoll_wait ends the
// call with EINTR (epoll_wait is never restarted). The test sends the
// signal Go's runtime preempts with, SIGURG, to that thread (found in
// /proc/PID/task/*/syscall); the program narrates the EINTR, calls again,
// and goes on serving.
func TestEINTR(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server")
	tid := waitInSyscall(t, srv.Pid(), unix.SYS_EPOLL_PWAIT, 4)
	if err := unix.Tgkill(srv.Pid(), tid, unix.SIGURG); err != nil {
		t.Fatal(err)
	}
	srv.WaitFor("epoll_wait(4, [], 128, -1) = -1 EINTR (Interrupted system call)")
	c := dialTest(t, srv.Addr())
	if got := echoOf(t, c, "after\n", 10*time.Second); got != "after\n" {
		t.Errorf("after EINTR: got %q, want the echo", got)
	}
	srv.Interrupt()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("exit status %d, want 0:\n%s", code, srv.Output())
	}
}

// waitInSyscall waits (at most 10 s) until a thread of process pid is in
// system call nr with first argument fd, and returns its ID.
func waitInSyscall(t *testing.T, pid, nr, fd int) int {
	t.Helper()
	want := fmt.Sprintf("%d 0x%x ", nr, fd)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", pid))
		for _, f := range tasks {
			if b, err := os.ReadFile(f); err == nil && strings.HasPrefix(string(b), want) {
				tid, _ := strconv.Atoi(filepath.Base(filepath.Dir(f)))
				return tid
			}
		}
	}
	t.Fatalf("no thread of the server is in system call %d on descriptor %d", nr, fd)
	return 0
}

// TestIdle: with -idle, epoll_wait waits no longer than until the oldest
// client's time is up, and the loop closes that client: it reads end of
// file. A client that comes after is served.
func TestIdle(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server", "-idle", "300ms")
	a := dialTest(t, srv.Addr())
	if got := echoOf(t, a, "then nothing\n", 10*time.Second); got != "then nothing\n" {
		t.Fatalf("got %q, want the echo", got)
	}
	a.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := a.Read(make([]byte, 1)); n != 0 || err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("an idle client: read %d, %v; want end of file", n, err)
	}
	if !regexp.MustCompile(`epoll_wait\(4, \[\], 128, \d+\) = 0`).MatchString(srv.Output()) ||
		!strings.Contains(srv.Output(), "idle for 300ms: closed") {
		t.Errorf("want an epoll_wait with a time-out that returns 0, and the client closed:\n%s", srv.Output())
	}
	b := dialTest(t, srv.Addr())
	if got := echoOf(t, b, "new\n", 10*time.Second); got != "new\n" {
		t.Errorf("a new client: got %q, want the echo", got)
	}
	srv.Interrupt()
}

// TestFairness: a client that sends without pause does not keep the others
// waiting: with -reads capping the reads per turn, another client is
// echoed while the first is still sending.
func TestFairness(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server", "-q", "-reads", "2")
	flood := dialTest(t, srv.Addr())
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { // the flooder's reader: take the echoes as they come
		buf := make([]byte, 1<<16)
		for {
			if _, err := flood.Read(buf); err != nil {
				return
			}
		}
	})
	wg.Go(func() {
		line := []byte(strings.Repeat("x", 1000) + "\n")
		for {
			select {
			case <-stop:
				return
			default:
			}
			flood.SetWriteDeadline(time.Now().Add(10 * time.Second))
			if _, err := flood.Write(line); err != nil {
				return
			}
		}
	})
	other := dialTest(t, srv.Addr())
	got := echoOf(t, other, "me too\n", 10*time.Second)
	close(stop)
	flood.Close()
	wg.Wait()
	if got != "me too\n" {
		t.Errorf("a second client while the first floods: got %q, want its echo", got)
	}
	srv.Interrupt()
}

// TestLoops: -loops 2 makes two loops, each with a listening socket of its
// own on the same port (SO_REUSEPORT) and an epoll instance; the kernel
// spreads connections between the sockets by a hash of their addresses, so
// 40 clients land on both (all on one has a chance of 2 in 2^40).
func TestLoops(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server", "-loops", "2")
	for i := range 40 {
		c := dialTest(t, srv.Addr())
		line := fmt.Sprintf("client %d\n", i)
		if got := echoOf(t, c, line, 10*time.Second); got != line {
			t.Fatalf("got %q, want %q", got, line)
		}
		c.Close()
	}
	out := srv.Output()
	if strings.Count(out, "SO_REUSEPORT, 1) = 0") != 2 || strings.Count(out, "epoll_create1") != 2 {
		t.Errorf("want two listening sockets with SO_REUSEPORT and two epoll instances:\n%s", out)
	}
	first := strings.Count(out, "accept4(3, ")
	second := strings.Count(out, "accept4(5, ")
	if first == 0 || second == 0 || first+second != 40 {
		t.Errorf("accepts on the two listening sockets: %d and %d; want both, 40 in all", first, second)
	}
	t.Logf("40 clients: %d on the first loop, %d on the second", first, second)
	srv.Interrupt()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("exit status %d, want 0", code)
	}
}
