//go:build grade && linux

// The graders of chapter 12's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names) on loopback,
// as the student who runs them: no root. What a name resolves to differs
// from machine to machine, so the graders give the program addresses
// (127.0.0.1, [::1]), which need no lookup, and ports; the chapter's tests,
// which make a hosts file of their own, show the names.
//
//	go run ./tools/grade 12
//	go run ./tools/grade -program DIR 12
//
// Every wait is bounded: booktest's, and the grader's own sockets'.
//
// Exercise 1 asks for no change to the program, so it has no grader: it is
// checked by hand.
package grade

import (
	"bufio"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/socket-to-server/book/tools/booktest"
)

// requireFlags fails unless the program's -h lists every flag in names.
func requireFlags(t *testing.T, s *booktest.Session, what string, names ...string) {
	t.Helper()
	usage := s.Run("help", "-h").Output()
	for _, name := range names {
		if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(name) + `\b`).MatchString(usage) {
			t.Fatalf("the program has no -%s flag yet (its -h does not list it): %s; it printed:\n%s", name, what, usage)
		}
	}
}

// port is the port of a server's "listening on" address.
func port(p *booktest.Proc) string {
	return p.Addr()[strings.LastIndex(p.Addr(), ":")+1:]
}

// TestExercise2OneFamily: with -4 the program uses IPv4 addresses only,
// with -6 IPv6 only, whether they came from a lookup or were given as
// addresses. An address of the other family is an error before any socket
// is made; one of the right family works as before.
func TestExercise2OneFamily(t *testing.T) {
	s := booktest.NewGrader(t)
	requireFlags(t, s, "add -4 and -6", "4", "6")
	v4 := s.Start("server", "-4", "-addr", "127.0.0.1:0")
	v6 := s.Start("server", "-6", "-addr", "[::1]:0")

	for _, c := range []struct{ flag, addr string }{{"-4", "127.0.0.1:" + port(v4)}, {"-6", "[::1]:" + port(v6)}} {
		p := s.Run("client", "-client", c.flag, "-addr", c.addr, "-msg", "one family")
		if p.ExitCode() != 0 || !strings.Contains(p.Output(), `echoed "one family\n"`) {
			t.Errorf("a client with %s -addr %s: want its echo and exit status 0; it printed:\n%s", c.flag, c.addr, p.Output())
		}
	}
	for _, c := range []struct{ flag, addr, what string }{
		{"-6", "127.0.0.1:" + port(v4), "an IPv4 address with -6"},
		{"-4", "[::1]:" + port(v6), "an IPv6 address with -4"},
	} {
		for _, client := range []bool{true, false} {
			args, who := []string{c.flag, "-addr", c.addr}, "server"
			if client {
				args, who = append([]string{"-client"}, args...), "client"
			}
			p := s.Run(who, args...)
			if p.ExitCode() == 0 || strings.Contains(p.Output(), "socket(") {
				t.Errorf("a %s given %s (%s): want an error before any socket, and an exit status other than 0; it printed (exit status %d):\n%s",
					who, c.what, strings.Join(args, " "), p.ExitCode(), p.Output())
			}
		}
	}
	v4.Interrupt()
	v6.Interrupt()
}

// blackhole makes a listening socket on 127.0.0.1 whose accept queue is
// full (backlog 0, one connection waiting), so that the kernel drops every
// further SYN: a connect to it waits, as to a machine that never answers.
func blackhole(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return addr
}

// TestExercise3Timeout: with -timeout the client gives up on an address
// that does not answer within that time, closes that socket, and reports
// the timeout (exit status 1 when no address is left); an address that
// answers works as before, reads and writes included.
func TestExercise3Timeout(t *testing.T) {
	s := booktest.NewGrader(t)
	requireFlags(t, s, "add -timeout to the client", "timeout")
	// The grader is the server here, and it echoes each line only once
	// the client has had time to read before the echo is there: a client
	// whose socket stayed non-blocking after its timed connect fails that
	// read with EAGAIN, however fast the machine is.
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ok := s.Spawn("client", "-client", "-addr", ln.Addr().String(), "-timeout", "5s", "-msg", "in time", "-msg", "still in time")
	if err := slowEcho(ln, ok, 2); err != nil {
		t.Errorf("the grader, serving the client with -timeout 5s: %v", err)
	}
	ok.Wait()
	if ok.ExitCode() != 0 || !strings.Contains(ok.Output(), `echoed "still in time\n"`) {
		t.Errorf("a client with -timeout 5s of a server that answers (a little late, as servers do): want both echoes and exit status 0; it printed (exit status %d):\n%s\n(after a connect with a timeout, make the socket blocking again before reading and writing)",
			ok.ExitCode(), ok.Output())
	}

	hole := blackhole(t)
	late := s.Run("client", "-client", "-addr", hole, "-timeout", "300ms")
	out := late.Output()
	timedOut := regexp.MustCompile(`(?i)ETIMEDOUT|timed out|timeout|no answer`).FindStringIndex(out)
	closed := regexp.MustCompile(`close\(3\) = 0`).FindStringIndex(out)
	if late.ExitCode() != 1 || timedOut == nil {
		t.Errorf("a client with -timeout 300ms of an address that never answers: want it to give up, say it timed out, and exit 1; it printed (exit status %d):\n%s",
			late.ExitCode(), out)
	}
	if closed == nil {
		t.Errorf("a client that gave up on an address: want it to close that socket (close(3) = 0); it printed:\n%s", out)
	}
}

// slowEcho accepts one connection on ln and echoes lines lines, each only
// after the client has printed an error or half a second has passed, so
// that the client's read is waiting, or has failed, before the echo comes.
// Every wait is bounded.
func slowEcho(ln net.Listener, client *booktest.Proc, lines int) error {
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(15 * time.Second))
	c, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("the client never connected: %v", err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(15 * time.Second))
	r := bufio.NewReader(c)
	for range lines {
		line, err := r.ReadString('\n')
		if err != nil {
			return nil // the client gave up; its output says why
		}
		for end := time.Now().Add(500 * time.Millisecond); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
			if strings.Contains(client.Output(), "EAGAIN") {
				return nil
			}
		}
		if _, err := c.Write([]byte(line)); err != nil {
			return nil
		}
	}
	return nil
}
