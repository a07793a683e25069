//go:build linux

package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"path/filepath"
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

// dialTest connects to addr with a bounded wait, and closes the connection
// when the test ends (closing it twice is harmless).
func dialTest(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
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

// openFDs lists the descriptors process pid has open, in order.
func openFDs(t *testing.T, pid int) []int {
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
	return fds
}

// TestTranscript records one thread serving two clients at once. The
// clients are the test's own sockets, so that the order of events is
// fixed: A connects and says nothing; B connects, and is echoed while A
// is still connected; then A is echoed, B leaves, A leaves, Ctrl-C.
func TestTranscript(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server", "-addr", "127.0.0.1:0")
	// Shown as the reader's -addr 127.0.0.1:8080: port 0 as 8080, as
	// booktest shows the port the kernel picked.
	s.Replace(`LookupPort\(tcp, "0"\) = 0`, `LookupPort(tcp, "8080") = 8080`)
	s.Replace(`127\.0\.0\.1:0\b`, "127.0.0.1:8080")
	// A signal (Go's preemption, or the Ctrl-C itself) now and then ends a
	// wait with EINTR, and the program waits again: a line some runs print
	// and others do not, which the book does not show.
	s.Replace(`(?m)^(?:epoll_wait|poll)\(.*\) = -1 EINTR \(Interrupted system call\)\n`, "")

	a := dialTest(t, srv.Addr())
	srv.WaitFor("connection: ")
	b := dialTest(t, srv.Addr())
	srv.WaitForN("connection: ", 2)
	if got := echoOf(t, b, "hello\n", 10*time.Second); got != "hello\n" {
		t.Fatalf("B, while A is connected and silent: got %q, want its echo", got)
	}
	srv.WaitFor("EAGAIN")
	if got := echoOf(t, a, "late\n", 10*time.Second); got != "late\n" {
		t.Fatalf("A: got %q, want its echo", got)
	}
	srv.WaitForN("EAGAIN", 2)
	if fds := openFDs(t, srv.Pid()); !slices.Equal(fds, []int{0, 1, 2, 3, 4, 5}) {
		t.Errorf("with two clients: descriptors %v, want 0 1 2 3 4 5", fds)
	}
	b.Close()
	srv.WaitFor("close(5) = 0")
	a.Close()
	srv.WaitFor("close(4) = 0")
	if fds := openFDs(t, srv.Pid()); !slices.Equal(fds, []int{0, 1, 2, 3}) {
		t.Errorf("after both clients left: descriptors %v, want 0 1 2 3", fds)
	}
	srv.Interrupt()
	s.Check("run")

	out := srv.Output()
	for _, want := range []string{
		"socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0) = 3",
		"SOCK_CLOEXEC|SOCK_NONBLOCK) = 5",
		"poll([{fd=3, events=POLLIN}, {fd=4, events=POLLIN}, {fd=5, events=POLLIN}], 3, -1) = 1 ([{fd=5, revents=POLLIN}])",
		`read(5, "", 4096) = -1 EAGAIN (Resource temporarily unavailable)`,
		"close(3) = 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the server did not print %q:\n%s", want, out)
		}
	}
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGINT, want 0", code)
	}
}

// TestManyClients: two hundred clients connected at once, each echoed,
// by one thread of the program's making; the Go runtime adds a few of its
// own, however many clients there are. The program's own client works
// meanwhile, as in chapter 12.
func TestManyClients(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server", "-q")
	conns := make([]net.Conn, 200)
	for i := range conns {
		conns[i] = dialTest(t, srv.Addr())
	}
	var wg sync.WaitGroup
	errs := make(chan string, len(conns))
	for i, c := range conns {
		wg.Go(func() {
			line := fmt.Sprintf("client %d\n", i)
			if got := echoOf(t, c, line, 10*time.Second); got != line {
				errs <- fmt.Sprintf("client %d got %q", i, got)
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	cl := s.Run("client", "-client", "-addr", srv.Addr(), "-msg", "one", "-msg", "two")
	if cl.ExitCode() != 0 || !strings.Contains(cl.Output(), `echoed "two\n"`) {
		t.Errorf("the program's client, with 200 others connected:\n%s", cl.Output())
	}
	threads := threadCount(t, srv.Pid())
	t.Logf("200 clients connected: %d threads", threads)
	if threads > 12 {
		t.Errorf("200 clients connected: %d threads; want a handful, whatever the number of clients", threads)
	}
	srv.Interrupt()
	srv.Wait()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGINT with 200 clients connected, want 0:\n%s", code, srv.Output())
	}
}

// threadCount is the Threads: line of /proc/PID/status.
func threadCount(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Threads:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(v))
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no Threads: line in /proc/%d/status", pid)
	return 0
}

// TestBlockingHangs: with -blocking, the loop's second read of a client
// (the one that would say EAGAIN) waits for that client instead. Poll said
// the socket was readable; the first read took what there was. The thread
// then sits in read(4) while B connects and sends, and B is accepted and
// echoed only when A leaves.
func TestBlockingHangs(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server", "-blocking")
	a := dialTest(t, srv.Addr())
	if got := echoOf(t, a, "hello\n", 10*time.Second); got != "hello\n" {
		t.Fatalf("A: got %q, want its echo", got)
	}
	waitInRead(t, srv.Pid(), 4)
	b := dialTest(t, srv.Addr())
	if got := echoOf(t, b, "anyone?\n", 500*time.Millisecond); got != "" {
		t.Fatalf("B while the loop waits in A's read: got %q, want nothing", got)
	}
	waitInRead(t, srv.Pid(), 4) // still there
	a.Close()
	if got := readLine(b, 10*time.Second); got != "anyone?\n" {
		t.Fatalf("B after A left: got %q, want its echo", got)
	}
	b.Close()
	srv.WaitForN("close(4) = 0", 2)
	srv.Interrupt()
	srv.Wait()
	// B was not even accepted while the loop sat in A's read: the kernel
	// finished its handshake and queued it; accept4 came after close(4).
	out := srv.Output()
	first, second := strings.Index(out, "accept4("), strings.LastIndex(out, "accept4(")
	if closed := strings.Index(out, "close(4) = 0"); first == second || closed < first || second < closed {
		t.Errorf("want accept4 (A), close(4), then accept4 (B):\n%s", out)
	}
	if strings.Contains(out, "EAGAIN") || !strings.Contains(out, "SOCK_CLOEXEC) = 4") {
		t.Errorf("want blocking sockets (accept4 without SOCK_NONBLOCK) and no EAGAIN:\n%s", out)
	}
}

// waitInRead waits (at most 10 s) until a thread of process pid is in
// read(fd): /proc/PID/task/TID/syscall starts with the call's number and
// its first argument.
func waitInRead(t *testing.T, pid, fd int) {
	t.Helper()
	want := fmt.Sprintf("%d 0x%x ", unix.SYS_READ, fd)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", pid))
		for _, f := range tasks {
			if b, err := os.ReadFile(f); err == nil && strings.HasPrefix(string(b), want) {
				return
			}
		}
	}
	t.Fatalf("no thread of the server is in read(%d)", fd)
}

// TestFdSetSize: select's sets are bitmaps of FD_SETSIZE (1024) bits, so
// descriptor 1024 has no bit: x/sys's FdSet.Set panics on it (in C,
// FD_SET writes past the set). poll takes an array of numbers and has no
// such limit: it reports a pipe as readable at descriptor 1500.
func TestFdSetSize(t *testing.T) {
	var set unix.FdSet
	set.Set(unix.FD_SETSIZE - 1)
	panicked := func() (p bool) {
		defer func() { p = recover() != nil }()
		set.Set(unix.FD_SETSIZE)
		return false
	}()
	if !panicked {
		t.Errorf("FdSet.Set(%d) did not panic", unix.FD_SETSIZE)
	}

	booktest.CheckFDs(t)
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur <= 1500 {
		t.Skipf("RLIMIT_NOFILE %d (%v): descriptor 1500 cannot be opened here", rl.Cur, err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if err := unix.Dup3(p[0], 1500, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(1500)
	if _, err := unix.Write(p[1], []byte("x")); err != nil {
		t.Fatal(err)
	}
	pfds := []unix.PollFd{{Fd: 1500, Events: unix.POLLIN}}
	if n, err := unix.Poll(pfds, 10000); n != 1 || err != nil || pfds[0].Revents != unix.POLLIN {
		t.Errorf("poll on descriptor 1500: %d, %v, revents %s; want 1, POLLIN", n, err, pollEvents(pfds[0].Revents))
	}
}

// TestReadiness: a connected socket with nothing to read is writable at
// once, every time it is asked (so a loop that always asks for POLLOUT
// never sleeps); it becomes readable when bytes come. select answers by
// overwriting its set: the bit of the descriptor that was not ready is
// gone, and the next call must set it again.
func TestReadiness(t *testing.T) {
	booktest.CheckFDs(t)
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sp[0])
	defer unix.Close(sp[1])
	ask := func() int16 {
		pfds := []unix.PollFd{{Fd: int32(sp[0]), Events: unix.POLLIN | unix.POLLOUT}}
		n, err := unix.Poll(pfds, 0)
		for err == unix.EINTR {
			n, err = unix.Poll(pfds, 0)
		}
		if n != 1 || err != nil {
			t.Fatalf("poll = %d, %v; want 1", n, err)
		}
		return pfds[0].Revents
	}
	for range 3 {
		if got := ask(); got != unix.POLLOUT {
			t.Fatalf("idle connected socket: revents %s, want POLLOUT alone", pollEvents(got))
		}
	}
	if _, err := unix.Write(sp[1], []byte("x")); err != nil {
		t.Fatal(err)
	}
	if got := ask(); got != unix.POLLIN|unix.POLLOUT {
		t.Errorf("after a byte came: revents %s, want POLLIN|POLLOUT", pollEvents(got))
	}

	// sp[0] has a byte to read; sp[1] has none.
	var set unix.FdSet
	set.Set(sp[0])
	set.Set(sp[1])
	tv := unix.Timeval{}
	n, err := unix.Select(max(sp[0], sp[1])+1, &set, nil, nil, &tv)
	for err == unix.EINTR {
		set.Set(sp[0])
		set.Set(sp[1])
		n, err = unix.Select(max(sp[0], sp[1])+1, &set, nil, nil, &tv)
	}
	if n != 1 || err != nil || !set.IsSet(sp[0]) || set.IsSet(sp[1]) {
		t.Errorf("select = %d, %v; set has %d: %v, %d: %v; want 1, only %d left in the set",
			n, err, sp[0], set.IsSet(sp[0]), sp[1], set.IsSet(sp[1]), sp[0])
	}
}
