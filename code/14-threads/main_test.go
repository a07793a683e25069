//go:build linux

package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestMain lowers the stack limit (ulimit -s) that the programs the tests
// start inherit, to 1 MiB. The program is linked with cgo (the net
// package's resolver), so its threads are made by pthread_create, which
// reserves a stack of that size for each: 8 MiB by default. booktest caps
// a program's data at 512 MiB, which counts those reservations, so 200
// threads of 8 MiB would not fit; of 1 MiB they do.
func TestMain(m *testing.M) {
	lim := unix.Rlimit{Cur: 1 << 20, Max: 1 << 20}
	var old unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_STACK, &old); err == nil && old.Max < lim.Max {
		lim = old
	}
	if err := unix.Setrlimit(unix.RLIMIT_STACK, &lim); err != nil {
		fmt.Fprintln(os.Stderr, "setrlimit RLIMIT_STACK:", err)
		os.Exit(1)
	}
	os.Exit(booktest.Run(m))
}

// TestTranscript records the chapter's first run: a client that connects
// and says nothing, and, while its goroutine waits in read, a second
// client that is served at once. Chapter 12's server would have served
// the second only after the first hung up. Then the first hangs up, and
// Ctrl-C. The clients are driven one event at a time, so the narration of
// the two goroutines comes in one order only.
func TestTranscript(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server")
	silent := connectTo(t, srv.Addr())
	srv.WaitFor("open connections: 1\n")
	s.Run("client", "-client", "-addr", srv.Addr(), "-msg", "hello", "-msg", "not waiting")
	srv.WaitFor("close(5) = 0\n")
	// The port, looked up as a service, is the kernel's: show it as 8080.
	s.Replace(`LookupPort\(tcp, "\d+"\) = \d+`, `LookupPort(tcp, "8080") = 8080`)
	if !strings.Contains(srv.Output(), "open connections: 2\n") {
		t.Errorf("the second client was not served while the first was connected:\n%s", srv.Output())
	}
	silent.Close()
	srv.WaitFor("close(4) = 0\n")
	// While it waits: the listening socket and nothing left of the clients.
	if fds := openFDs(t, srv.Pid()); strings.Join(fds, " ") != "0 1 2 3" {
		t.Errorf("the waiting server's descriptors: %v, want 0 1 2 3", fds)
	}
	srv.Interrupt()
	s.Check("run")
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("server exit status %d after SIGINT, want 0", code)
	}
}

// TestInterruptWithClients: Ctrl-C while clients are connected, in both
// modes. Each connection's goroutine is woken by its shutdown, closes its
// descriptor, and the server exits 0 once every one has.
func TestInterruptWithClients(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"-netpoll=false", "-netpoll"} {
		s := booktest.New(t)
		srv := s.Start("server", mode)
		for i := 1; i <= 3; i++ {
			connectTo(t, srv.Addr())
			srv.WaitFor(fmt.Sprintf("open connections: %d\n", i))
		}
		srv.Interrupt()
		srv.Wait()
		out := srv.Output()
		// The connections' descriptors; with -netpoll the runtime's epoll
		// and eventfd take two numbers after the first.
		accepted := regexp.MustCompile(`(?m)^accept4\(3, .*\) = (\d+)$`).FindAllStringSubmatch(out, -1)
		if len(accepted) != 3 {
			t.Errorf("%s: want 3 accepts:\n%s", mode, out)
		}
		for _, a := range accepted {
			fd := a[1]
			if !strings.Contains(out, "shutdown("+fd+", SHUT_RDWR) = 0\n") || !strings.Contains(out, "close("+fd+") = 0\n") {
				t.Errorf("%s: connection %s not shut down and closed on Ctrl-C:\n%s", mode, fd, out)
			}
		}
		if !strings.HasSuffix(out, "close(3) = 0\n") || srv.ExitCode() != 0 {
			t.Errorf("%s: want the listening socket closed last and exit 0, got %d:\n%s", mode, srv.ExitCode(), out)
		}
	}
}

// clients is how many idle clients TestThreads connects: enough to see a
// thread each, few enough to be quick.
const clients = 200

// TestThreads connects 200 clients to each server, each echoed once, then
// silent, and reads the server's Threads: from /proc. With blocking reads,
// each goroutine in read(2) holds a thread, so the count reaches at least
// 200; handed to the runtime, the same 200 goroutines are parked, and a
// few threads serve them all. GOMAXPROCS=2 so the bound holds on any
// machine. It logs the numbers the chapter shows (go test -v).
func TestThreads(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		mode  string
		check func(threads int) bool
		want  string
	}{
		{"-netpoll=false", func(n int) bool { return n >= clients }, fmt.Sprintf("at least %d", clients)},
		{"-netpoll", func(n int) bool { return n <= 20 }, "at most 20"},
	} {
		s := booktest.New(t)
		s.Env = []string{"GOMAXPROCS=2"}
		srv := s.Start("server", "-q", c.mode)
		before := status(t, srv.Pid())
		for range clients {
			conn := connectTo(t, srv.Addr())
			if _, err := conn.Write([]byte("ping\n")); err != nil {
				t.Fatal(err)
			}
			if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || line != "ping\n" {
				t.Fatalf("%s: echo %q, %v; the server printed:\n%s", c.mode, line, err, srv.Output())
			}
		}
		// The last goroutines may still be on their way back into read:
		// wait, bounded, for the count to settle where it must.
		var after map[string]int
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			after = status(t, srv.Pid())
			if c.check(after["Threads"]) || time.Now().After(deadline) {
				break
			}
		}
		if !c.check(after["Threads"]) {
			t.Errorf("%s: %d threads with %d idle clients, want %s", c.mode, after["Threads"], clients, c.want)
		}
		t.Logf("%s: threads %d -> %d, VmRSS %d kB -> %d kB, VmSize %d kB -> %d kB with %d clients",
			c.mode, before["Threads"], after["Threads"], before["VmRSS"], after["VmRSS"],
			before["VmSize"], after["VmSize"], clients)
		srv.Interrupt()
		srv.Wait()
		if srv.ExitCode() != 0 {
			t.Errorf("%s: exit status %d after SIGINT:\n%s", c.mode, srv.ExitCode(), srv.Output())
		}
	}
}

// status reads the numbers of /proc/PID/status (Threads, VmRSS in kB, ...).
func status(t *testing.T, pid int) map[string]int {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, f := range regexp.MustCompile(`(?m)^(\w+):\s+(\d+)`).FindAllStringSubmatch(string(b), -1) {
		m[f[1]], _ = strconv.Atoi(f[2])
	}
	return m
}

// connectTo connects to addr, with a bound on every wait, and closes the
// connection when the test ends.
func connectTo(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { c.Close() })
	return c
}

// openFDs lists the descriptors process pid has open, in order.
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
	out := make([]string, len(fds))
	for i, fd := range fds {
		out[i] = strconv.Itoa(fd)
	}
	return out
}
