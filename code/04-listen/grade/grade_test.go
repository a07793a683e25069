//go:build grade && linux

// The graders of chapter 4's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names), plays its
// clients with its own sockets on loopback, signals it as kill would, and
// reads what it printed. It checks the printed numbers against the kernel's
// own view of the listening socket, the accept queue's length that
// /proc/net/tcp shows (as ss -ltn's Recv-Q does), and the TCP state of its
// own connections, so it grades any copy of the program, whatever its code.
// Run them with
//
//	go run ./tools/grade 04
//	go run ./tools/grade -program DIR 04
//
// They decide by events and their order: what the program printed after
// which signal, and what became of the connections. Every wait is bounded.
package grade

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
	"golang.org/x/sys/unix"
)

// waitLimit bounds the graders' own waits for the kernel: a handshake on
// loopback takes microseconds, a retransmitted SYN about a second.
const waitLimit = 15 * time.Second

// signalWait bounds the wait for the program to answer a signal it is sent.
// A program that handles it prints within milliseconds; one that does not
// (Go ignores SIGUSR2 unless the program asks for it) prints nothing, and
// nothing else says so, so this wait is shorter than waitLimit.
const signalWait = 10 * time.Second

// The line queueLen prints, and the narration of an accept.
var (
	queueRE  = regexp.MustCompile(`(?m)^accept queue: (\d+) connections?, backlog (-?\d+)$`)
	acceptRE = regexp.MustCompile(`(?m)^accept4\(.*$`)
	listenRE = regexp.MustCompile(`(?m)^listen\(\d+, (-?\d+)\) = .*$`)
)

// Exercise 1: SIGUSR2 prints the accept queue, with the kernel's numbers,
// and takes nothing off it: a second SIGUSR2 finds the same connections.
func TestExercise1LookWithoutAccepting(t *testing.T) {
	srv := start(t, "-backlog", "2")
	fill(t, srv, 3) // backlog 2 holds three

	mark := len(srv.Output())
	srv.Send(syscall.SIGUSR2)
	line := waitQueueLine(t, srv, mark, 1, "kill -USR2", "catch SIGUSR2 with signal.Notify (without it Go ignores the signal) and call queueLen")
	if want := "accept queue: 3 connections, backlog 2"; line != want {
		why := "the kernel's queue holds 3 (ss -ltn's Recv-Q), and the backlog is 2 (its Send-Q)"
		if queueRE.FindStringSubmatch(line)[2] != "2" {
			why = "without -grow, SIGUSR2 must leave the backlog as it is"
		}
		t.Fatalf("with -backlog 2 and three connections waiting, kill -USR2 printed\n  %s\nwant\n  %s\n(%s); the server's output after the signal:\n%s",
			line, want, why, output(srv)[mark:])
	}
	// Whatever the first signal does after printing is done before the
	// program takes the second: it handles one signal at a time.
	mark2 := len(srv.Output())
	srv.Send(syscall.SIGUSR2)
	line = waitQueueLine(t, srv, mark2, 1, "a second kill -USR2", "print the queue on every SIGUSR2, not only the first")
	after := srv.Output()[mark:]
	if m := acceptRE.FindString(after); m != "" {
		t.Fatalf("kill -USR2 accepted a connection (%s), want it to print the queue and accept nothing; the server's output after the first SIGUSR2:\n%s", m, output(srv)[mark:])
	}
	if m := listenRE.FindString(after); m != "" {
		t.Fatalf("kill -USR2 called listen again (%s): without -grow it must only print the queue; the server's output after the first SIGUSR2:\n%s", m, output(srv)[mark:])
	}
	if want := "accept queue: 3 connections, backlog 2"; line != want {
		t.Fatalf("a second kill -USR2 printed\n  %s\nwant the same\n  %s\nas the first: looking must leave the queue as it is; the server's output after the first SIGUSR2:\n%s",
			line, want, output(srv)[mark:])
	}
	if n, ok := kernelQueue(t, srv.Addr()); ok && n != 3 {
		t.Fatalf("after two kill -USR2 the kernel's accept queue holds %s, want the 3 it held: SIGUSR2 must take nothing off it; the server's output after the first SIGUSR2:\n%s",
			count(n, "connection", "connections"), output(srv)[mark:])
	}
}

// Exercise 2: with -one, each SIGUSR1 accepts one connection and leaves
// the others in the queue.
func TestExercise2OneAtATime(t *testing.T) {
	srv := start(t, "-backlog", "2", "-one")
	fill(t, srv, 3)

	mark := len(srv.Output())
	for i := 1; i <= 2; i++ {
		srv.Send(syscall.SIGUSR1)
		waitAccepts(t, srv, mark, i)
	}
	// Ctrl-C: the program stops after the signal it is handling, so what
	// it has printed then is all that the two SIGUSR1 did.
	srv.Interrupt()
	after := srv.Output()[mark:]
	accepts := acceptRE.FindAllString(after, -1)
	if len(accepts) != 2 {
		t.Fatalf("with -one and three connections waiting, two kill -USR1 accepted %s, want 2, one each; the server's output after the first SIGUSR1:\n%s",
			count(len(accepts), "connection", "connections"), after)
	}
}

// Exercise 3: with -grow, SIGUSR2 calls listen again with twice the
// backlog and prints the queue; a client whose SYN was dropped gets in at
// its next retransmission, with nothing accepted.
func TestExercise3GrowTheQueueInPlace(t *testing.T) {
	srv := start(t, "-backlog", "2", "-grow")
	fill(t, srv, 3)
	// One more: the queue is full, so the kernel drops its SYN, and it
	// waits in SYN_SENT, sending the SYN again about once a second.
	late := connectNonblocking(t, srv.Addr())

	mark := len(srv.Output())
	srv.Send(syscall.SIGUSR2)
	line := waitQueueLine(t, srv, mark, 1, "with -grow, kill -USR2", "catch SIGUSR2 with signal.Notify, call unix.Listen again on the listening socket with twice the backlog, then queueLen")
	if m := queueRE.FindStringSubmatch(line); m[2] != "4" {
		t.Fatalf("with -backlog 2 -grow, kill -USR2 printed\n  %s\nwant backlog 4: call unix.Listen again on the listening socket with twice the backlog, before queueLen; the server's output after the signal:\n%s",
			line, output(srv)[mark:])
	}
	// The kernel agrees: the waiting client's next SYN gets in. One
	// retransmission may have left before the new listen; the one after
	// it must not be dropped.
	before := tcpInfo(t, late).Retransmits
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(5 * time.Millisecond) {
		info := tcpInfo(t, late)
		if info.State == unix.BPF_TCP_ESTABLISHED {
			break
		}
		switch {
		case info.State != unix.BPF_TCP_SYN_SENT:
			t.Fatalf("after kill -USR2 the handshake of the client waiting in SYN_SENT failed (TCP state %d), want it to complete: the server must keep listening; its output:\n%s", info.State, output(srv))
		case info.Retransmits >= before+2:
			t.Fatalf("after kill -USR2 the client waiting in SYN_SENT sent its SYN %d more times and is still waiting: its SYNs are dropped, so the kernel's backlog did not grow; the server's output after the signal:\n%s",
				info.Retransmits-before, output(srv)[mark:])
		case time.Now().After(deadline):
			t.Fatalf("after kill -USR2 the client waiting in SYN_SENT was still waiting %v later; the server's output after the signal:\n%s", waitLimit, output(srv)[mark:])
		}
	}
	// Into the queue, not accepted: it now holds all four.
	if m := acceptRE.FindString(srv.Output()[mark:]); m != "" {
		t.Fatalf("with -grow, kill -USR2 accepted a connection (%s), want it only to call listen and print the queue; the server's output after the signal:\n%s", m, output(srv)[mark:])
	}
	if !waitUntil(func() bool { n, ok := kernelQueue(t, srv.Addr()); return !ok || n == 4 }) {
		n, _ := kernelQueue(t, srv.Addr())
		t.Fatalf("after the late client got in, the kernel's accept queue holds %s, want all 4: growing the queue must accept nothing; the server's output after the signal:\n%s",
			count(n, "connection", "connections"), output(srv)[mark:])
	}
}

// start builds the program and starts it as a server with args; it
// fails at once, and says so, if the program lacks a flag that args name.
func start(t *testing.T, args ...string) *booktest.Proc {
	t.Helper()
	s := booktest.NewGrader(t)
	for _, a := range args {
		if a != "-one" && a != "-grow" {
			continue
		}
		// -h after the flag: a program that has it prints its usage and
		// exits; one that has not stops at the flag.
		p := s.Run("probe", a, "-h")
		if strings.Contains(p.Output(), "flag provided but not defined: "+a) {
			t.Fatalf("the program has no %s flag yet: run with %s it printed %q", a, a, "flag provided but not defined: "+a)
		}
	}
	srv := s.Start("server", args...)
	// The program prints the empty queue once it listens; after that,
	// it prints only when it is signalled.
	srv.WaitFor("accept queue: ")
	return srv
}

// fill makes n connections to the server, which it does not accept, and
// waits until the kernel has put all of them in the accept queue.
func fill(t *testing.T, srv *booktest.Proc, n int) {
	t.Helper()
	for i := range n {
		c, err := net.DialTimeout("tcp", srv.Addr(), waitLimit)
		if err != nil {
			t.Fatalf("connection %d of %d to the server at %s: %v; its output:\n%s", i+1, n, srv.Addr(), err, output(srv))
		}
		t.Cleanup(func() { c.Close() })
	}
	if !waitUntil(func() bool { q, ok := kernelQueue(t, srv.Addr()); return !ok || q == n }) {
		q, _ := kernelQueue(t, srv.Addr())
		t.Fatalf("%d connections completed, but the kernel's accept queue holds %d, want %d: the server must not accept until it is signalled; its output:\n%s",
			n, q, n, output(srv))
	}
}

// waitQueueLine waits until the server has printed, after mark, its n-th
// accept queue line and returns it. what names the signal, for a message;
// hint says how to fix a program that prints none.
func waitQueueLine(t *testing.T, srv *booktest.Proc, mark, n int, what, hint string) string {
	t.Helper()
	deadline := time.Now().Add(signalWait)
	for {
		out := srv.Output()[mark:]
		if m := queueRE.FindAllString(out, -1); len(m) >= n {
			return m[n-1]
		}
		if ended(srv) {
			t.Fatalf("after %s the server %s, want it to print the accept queue and carry on; its output:\n%s", what, exit(srv), srv.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s printed no line %q within %v: %s; the server's output:\n%s",
				what, "accept queue: N connections, backlog B", signalWait, hint, output(srv))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitAccepts waits until the server has narrated n accepts after mark.
func waitAccepts(t *testing.T, srv *booktest.Proc, mark, n int) {
	t.Helper()
	deadline := time.Now().Add(signalWait)
	for len(acceptRE.FindAllString(srv.Output()[mark:], -1)) < n {
		if ended(srv) {
			t.Fatalf("after kill -USR1 number %d the server %s, want it to accept and carry on; its output:\n%s", n, exit(srv), srv.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("after kill -USR1 number %d the server has narrated %d accepts, want %d (a line %q each); its output:\n%s",
				n, len(acceptRE.FindAllString(srv.Output()[mark:], -1)), n, "accept4(3, 127.0.0.1:PORT, SOCK_CLOEXEC) = 4", output(srv))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// connectNonblocking starts a connection to addr and returns at once, with
// the handshake under way, as the program's own client does.
func connectNonblocking(t *testing.T, addr string) int {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		t.Fatalf("the server's address %q is not IPv4 ADDR:PORT", addr)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	err = unix.Connect(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()})
	if err != nil && !errors.Is(err, unix.EINPROGRESS) {
		t.Fatalf("connect to %s: %v", addr, err)
	}
	return fd
}

func tcpInfo(t *testing.T, fd int) *unix.TCPInfo {
	t.Helper()
	info, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// kernelQueue reads the length of the accept queue of the socket listening
// on addr (IPv4) from /proc/net/tcp, where a listening socket's rx_queue
// is that length; ok is false if there is no such socket.
func kernelQueue(t *testing.T, addr string) (n int, ok bool) {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().Is4() {
		t.Fatalf("the server's address %q is not IPv4 ADDR:PORT", addr)
	}
	b := ap.Addr().As4()
	local := fmt.Sprintf("%02X%02X%02X%02X:%04X", b[3], b[2], b[1], b[0], ap.Port())
	data, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[1] != local || f[3] != "0A" { // 0A: LISTEN
			continue
		}
		_, rx, _ := strings.Cut(f[4], ":")
		q, err := strconv.ParseInt(rx, 16, 32)
		return int(q), err == nil
	}
	return 0, false
}

// ended reports whether the process has ended: its /proc entry is gone, or
// it is a zombie waiting to be reaped.
func ended(p *booktest.Proc) bool {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.Pid()))
	if err != nil {
		return true
	}
	// The state follows the command name, which is in parentheses.
	i := strings.LastIndex(string(data), ") ")
	return i < 0 || strings.HasPrefix(string(data[i+2:]), "Z")
}

// exit says how a process that has ended ended.
func exit(p *booktest.Proc) string {
	p.Wait()
	if code := p.ExitCode(); code >= 0 {
		return fmt.Sprintf("exited with status %d", code)
	}
	return "was killed by a signal"
}

// waitUntil polls cond until it holds or waitLimit has passed, and
// reports whether it held.
func waitUntil(cond func() bool) bool {
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(5 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// output is what p has printed, for a failure message: it waits (briefly)
// for lines still on their way through the pipe.
func output(p *booktest.Proc) string {
	out := p.Output()
	for i := 0; i < 20; i++ {
		time.Sleep(50 * time.Millisecond)
		now := p.Output()
		if now == out && i >= 3 {
			break
		}
		out = now
	}
	return out
}

// count says "1 connection", "2 connections".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
