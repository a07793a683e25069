//go:build linux

package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestMain builds the program once for all the tests, not once per session
// (booktest.Run).
func TestMain(m *testing.M) { os.Exit(booktest.Run(m)) }

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

// roundTrip sends a line on c and reads the line that comes back.
func roundTrip(t *testing.T, c net.Conn, line string) string {
	t.Helper()
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		t.Fatal(err)
	}
	got, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("no echo of %q: %v", line, err)
	}
	return got
}

// clients is how many clients TestSpread and TestHerd connect, one after
// the other, to each design.
const clients = 20

// servedBy counts the connections each worker took, from its lines.
func servedBy(out string) map[string]int {
	m := map[string]int{}
	for _, f := range regexp.MustCompile(`(?m)^worker (\d+) serves`).FindAllStringSubmatch(out, -1) {
		m[f[1]]++
	}
	return m
}

// TestSpread serves 20 clients, one after the other, with 4 workers in
// accept on one socket and with 4 sockets and SO_REUSEPORT, and logs how
// the connections spread. Linux wakes one waiter in accept, the one that
// has waited longest, so every worker gets some; SO_REUSEPORT picks a
// socket by a hash of the addresses, so the counts vary with the ports.
func TestSpread(t *testing.T) {
	t.Parallel()
	for _, design := range []string{"accept", "reuseport"} {
		s := booktest.New(t)
		srv := s.Start("server", "-q", "-design", design, "-workers", "4")
		for range clients {
			c := connectTo(t, srv.Addr())
			if got := roundTrip(t, c, "spread"); got != "spread\n" {
				t.Fatalf("%s: echo %q", design, got)
			}
			c.Close()
		}
		srv.Interrupt()
		srv.Wait()
		by := servedBy(srv.Output())
		total := 0
		for _, n := range by {
			total += n
		}
		t.Logf("-design %s: connections per worker %v", design, by)
		if total != clients || srv.ExitCode() != 0 {
			t.Errorf("%s: %d connections served (want %d), exit status %d:\n%s", design, total, clients, srv.ExitCode(), srv.Output())
		}
		if design == "accept" && len(by) != 4 {
			t.Errorf("accept: want all 4 workers to take connections (Linux wakes the longest waiter), got %v", by)
		}
	}
}

// TestTranscript records a pool of one worker stalled: a client that says
// nothing takes the worker; a second client is accepted (descriptor 5) and
// queued, and served only once the first hangs up. Then Ctrl-C.
func TestTranscript(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server", "-workers", "1")
	silent := connectTo(t, srv.Addr())
	srv.WaitFor("open connections: 1\n")
	c := s.Spawn("client", "-client", "-addr", srv.Addr(), "-msg", "hello")
	srv.WaitFor(") = 5\n") // accepted, and waiting in the channel
	silent.Close()
	c.Wait()
	srv.WaitFor("close(5) = 0\n")
	// While it waits: the listening socket, and nothing left of the clients.
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", srv.Pid())); err != nil || len(ents) != 4 {
		t.Errorf("the waiting server's descriptors: %d (%v), want 4: 0, 1, 2 and the listening socket", len(ents), err)
	}
	s.Replace(`LookupPort\(tcp, "\d+"\) = \d+`, `LookupPort(tcp, "8080") = 8080`)
	srv.Interrupt()
	s.Check("run")
	out := srv.Output()
	if strings.Index(out, "worker 1 serves descriptor 5") < strings.Index(out, "close(4) = 0") || c.ExitCode() != 0 {
		t.Errorf("want the second client served after the first closed, and echoed:\n%s\n%s", out, c.Output())
	}
	if srv.ExitCode() != 0 {
		t.Errorf("exit status %d after Ctrl-C", srv.ExitCode())
	}
}

// TestPoolStalls: a pool of 2 and 2 clients that say nothing. A third
// client is accepted and queued, but no worker takes it until one of the
// silent clients hangs up: its "worker N serves" line comes after that
// client's close. The same three clients on -design goroutine: the third
// is echoed while both silent ones are still connected.
func TestPoolStalls(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server", "-design", "pool", "-workers", "2")
	silent := connectTo(t, srv.Addr())
	srv.WaitFor("serves descriptor 4\n")
	connectTo(t, srv.Addr())
	srv.WaitFor("serves descriptor 5\n")
	third := connectTo(t, srv.Addr())
	if _, err := third.Write([]byte("waiting\n")); err != nil {
		t.Fatal(err)
	}
	srv.WaitFor(") = 6\n") // the third: accepted, and queued
	silent.Close()
	if got, err := bufio.NewReader(third).ReadString('\n'); got != "waiting\n" {
		t.Fatalf("the third client after the first hung up: %q, %v", got, err)
	}
	out := srv.Output()
	first := regexp.MustCompile(`worker (\d+) serves descriptor 4\n`).FindStringSubmatch(out)
	closed := strings.Index(out, "close(4) = 0\n")
	taken := strings.Index(out, "worker "+first[1]+" serves descriptor 6\n")
	if closed < 0 || taken < closed {
		t.Errorf("want the third connection (6) taken, by the worker the first had, only after the first (4) was closed:\n%s", out)
	}
	srv.Interrupt()
	srv.Wait()
	if srv.ExitCode() != 0 {
		t.Errorf("exit status %d after Ctrl-C:\n%s", srv.ExitCode(), srv.Output())
	}

	g := s.Start("server", "-q", "-design", "goroutine")
	connectTo(t, g.Addr())
	connectTo(t, g.Addr())
	if got := roundTrip(t, connectTo(t, g.Addr()), "not waiting"); got != "not waiting\n" {
		t.Errorf("goroutine per connection, two silent clients: the third got %q", got)
	}
	g.Interrupt()
}

// TestHerd serves 20 clients, one after the other, with 4 workers that
// each wait in an epoll instance of their own on the one listening socket,
// without and with EPOLLEXCLUSIVE, and logs how the connections spread
// and how often a worker woke to find the connection taken (accept4
// EAGAIN). It asserts only that every connection was served once; the
// spread (every connection to the first worker, with EPOLLEXCLUSIVE, in
// the recorded runs) is the kernel's choice, shown, not asserted.
func TestHerd(t *testing.T) {
	t.Parallel()
	for _, design := range []string{"epoll", "exclusive"} {
		s := booktest.New(t)
		srv := s.Start("server", "-q", "-design", design, "-workers", "4")
		for range clients {
			c := connectTo(t, srv.Addr())
			if got := roundTrip(t, c, "herd"); got != "herd\n" {
				t.Fatalf("%s: echo %q", design, got)
			}
			c.Close()
		}
		srv.Interrupt()
		srv.Wait()
		by := servedBy(srv.Output())
		total := 0
		for _, n := range by {
			total += n
		}
		t.Logf("-design %s: connections per worker %v, woken for nothing %d times",
			design, by, strings.Count(srv.Output(), "woken for nothing"))
		if total != clients || srv.ExitCode() != 0 {
			t.Errorf("%s: %d connections served (want %d), exit status %d:\n%s", design, total, clients, srv.ExitCode(), srv.Output())
		}
	}
}

// TestReuseportStall: SO_REUSEPORT's price. Two workers, a socket each; a
// client that says nothing holds one. New clients, each sending a line,
// go to a socket by hash: those hashed to the free worker's socket are
// echoed, and the first one hashed to the busy worker's waits in that
// socket's accept queue (its Recv-Q in /proc/net/tcp, as ss -ltn shows it)
// though the other worker is idle. It is served once the silent client
// hangs up.
func TestReuseportStall(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server", "-q", "-design", "reuseport", "-workers", "2")
	port := srv.Addr()[strings.LastIndex(srv.Addr(), ":")+1:]
	silent := connectTo(t, srv.Addr())
	srv.WaitFor("open connections: 1\n")
	var stuck *bufio.Reader
	var stuckConn net.Conn
	for range 30 { // the chance that 30 clients all hash to one socket is 2^-30
		c := connectTo(t, srv.Addr())
		if _, err := c.Write([]byte("which one\n")); err != nil {
			t.Fatal(err)
		}
		r := bufio.NewReader(c)
		for deadline := time.Now().Add(10 * time.Second); stuck == nil; {
			if acceptQueue(t, port) > 0 {
				stuck, stuckConn = r, c
				break
			}
			c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
			if line, err := r.ReadString('\n'); err == nil {
				if line != "which one\n" {
					t.Fatalf("echo %q", line)
				}
				c.Close() // the free worker's: let it go, so that it is free again
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("a client neither echoed nor queued after 10 s")
			}
		}
		if stuck != nil {
			break
		}
	}
	if stuck == nil {
		t.Fatal("30 clients, none queued behind the silent one")
	}
	silent.Close()
	stuckConn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if line, err := stuck.ReadString('\n'); line != "which one\n" {
		t.Errorf("the queued client after the silent one left: %q, %v", line, err)
	}
	srv.Interrupt()
}

// acceptQueue is the longest accept queue of the listening sockets on
// port, from /proc/net/tcp: for a socket in LISTEN (st 0A) the rx_queue
// field counts the connections waiting for accept.
func acceptQueue(t *testing.T, port string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	p, _ := strconv.Atoi(port)
	local := fmt.Sprintf(":%04X", p)
	most := 0
	for _, line := range strings.Split(string(b), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) < 5 || !strings.HasSuffix(f[1], local) || f[3] != "0A" {
			continue
		}
		_, rx, _ := strings.Cut(f[4], ":")
		if n, err := strconv.ParseInt(rx, 16, 64); err == nil && int(n) > most {
			most = int(n)
		}
	}
	return most
}

// TestReuseportOnAll: a socket without SO_REUSEPORT cannot join a port
// that sockets with it hold: its bind fails with EADDRINUSE.
func TestReuseportOnAll(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server", "-q", "-design", "reuseport", "-workers", "2")
	other := s.Run("server", "-q", "-design", "accept", "-addr", srv.Addr())
	if want := "bind " + srv.Addr() + ": address already in use"; other.ExitCode() != 1 || !strings.Contains(other.Output(), want) {
		t.Errorf("a second server without SO_REUSEPORT: want %q and exit status 1, got %d:\n%s", want, other.ExitCode(), other.Output())
	}
	srv.Interrupt()
}
