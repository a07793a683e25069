//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
	"golang.org/x/sys/unix"
)

// TestMain builds the program once for all the tests, not once per session
// (booktest.Run).
func TestMain(m *testing.M) { os.Exit(booktest.Run(m)) }

// PIDs change from run to run; the transcripts show them renumbered.
const pidRE = `(?:kill |kill -USR1 )(\d+)`

// TestTranscript is the chapter's run: a server with backlog 2 that does not
// accept, and a client that opens five connections. Three complete; two wait
// in SYN_SENT, their SYNs dropped, until the server accepts; then they
// complete too.
func TestTranscript(t *testing.T) {
	s := booktest.New(t)
	s.Renumber(pidRE, 4242)
	srv := s.Start("server", "-backlog", "2")
	srv.WaitFor("closes it and exits\n")
	before := listenOverflows(t)
	cl := s.Spawn("client", "-client", "-n", "5", "-addr", srv.Addr())
	cl.WaitFor("(Ctrl-C stops)\n")
	if !strings.Contains(cl.Output(), "3 of 5 connected, 2 waiting in SYN_SENT\n") {
		t.Fatalf("client:\n%s", cl.Output())
	}
	// What ss -ltn shows for the listening socket: Recv-Q 3, Send-Q 2.
	if recvQ, sendQ, ok := ssListen(t, srv.Addr()); ok && (recvQ != 3 || sendQ != 2) {
		t.Errorf("ss -ltn: Recv-Q %d, Send-Q %d; want 3 and 2", recvQ, sendQ)
	}
	if got := listenOverflows(t) - before; got < 2 {
		t.Errorf("ListenOverflows grew by %d, want at least 2 (one dropped SYN per waiting client)", got)
	}
	srv.Send(syscall.SIGUSR1)
	srv.WaitForN("close(4) = 0", 3)
	cl.Wait()
	if !strings.HasSuffix(cl.Output(), "5 of 5 connected\nclose(3) = 0\nclose(4) = 0\nclose(5) = 0\nclose(6) = 0\nclose(7) = 0\n") || cl.ExitCode() != 0 {
		t.Errorf("client (exit status %d):\n%s", cl.ExitCode(), cl.Output())
	}
	srv.Send(syscall.SIGUSR1)
	srv.WaitForN("close(4) = 0", 5)
	srv.Interrupt()
	out := srv.Output()
	for _, want := range []string{
		"listen(3, 2) = 0\n",
		"{tcpi_state=TCP_LISTEN, tcpi_unacked=3, tcpi_sacked=2}\naccept queue: 3 connections, backlog 2\n",
		"{tcpi_state=TCP_LISTEN, tcpi_unacked=2, tcpi_sacked=2}\naccept queue: 2 connections, backlog 2\n",
		"close(4) = 0\nclose(3) = 0\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("server output lacks %q:\n%s", want, out)
		}
	}
	if n := len(regexp.MustCompile(`accept4\(3, 127\.0\.0\.1:\d+, SOCK_CLOEXEC\) = 4`).FindAllString(out, -1)); n != 5 {
		t.Errorf("server accepted %d connections, want 5:\n%s", n, out)
	}
	if srv.ExitCode() != 0 {
		t.Errorf("server exit status %d, want 0", srv.ExitCode())
	}
	s.Check("run")
}

// TestQueueLimit: with backlog N, exactly N+1 connections complete while the
// server does not accept; the others stay in SYN_SENT; once the server has
// accepted, they complete too.
func TestQueueLimit(t *testing.T) {
	for _, backlog := range []int{0, 1, 3} {
		t.Run(fmt.Sprintf("backlog=%d", backlog), func(t *testing.T) {
			t.Parallel()
			conns := 2*backlog + 2 // N+1 complete; the other N+1 fit after one accept round
			full := backlog + 1
			s := booktest.New(t)
			srv := s.Start("server", "-q", "-backlog", strconv.Itoa(backlog))
			srv.WaitFor("closes it and exits\n")
			cl := s.Spawn("client", "-client", "-q", "-n", strconv.Itoa(conns), "-addr", srv.Addr())
			cl.WaitFor("(Ctrl-C stops)\n")
			if want := fmt.Sprintf("%d of %d connected, %d waiting in SYN_SENT\n", full, conns, conns-full); !strings.HasPrefix(cl.Output(), want) {
				t.Fatalf("client printed\n%s\nwant first %q", cl.Output(), want)
			}
			if recvQ, sendQ, ok := ssListen(t, srv.Addr()); ok && (recvQ != full || sendQ != backlog) {
				t.Errorf("ss -ltn: Recv-Q %d, Send-Q %d; want %d and %d", recvQ, sendQ, full, backlog)
			}
			if got := synSent(t, srv.Addr()); got != conns-full {
				t.Errorf("/proc/net/tcp: %d connections to %s in SYN_SENT, want %d", got, srv.Addr(), conns-full)
			}
			srv.Send(syscall.SIGUSR1)
			cl.Wait()
			if want := fmt.Sprintf("%d of %d connected\n", conns, conns); !strings.HasSuffix(cl.Output(), want) || cl.ExitCode() != 0 {
				t.Errorf("after the server accepted, client (exit status %d):\n%s\nwant last %q", cl.ExitCode(), cl.Output(), want)
			}
			srv.Interrupt()
			if want := fmt.Sprintf("accept queue: %d connections, backlog %d\n", full, backlog); !strings.Contains(srv.Output(), want) {
				t.Errorf("server:\n%s\nwant %q", srv.Output(), want)
			}
		})
	}
}

// TestStillWaiting: while the server does not accept, the connections past
// N+1 do not complete, however long the client waits: each retransmitted
// SYN is dropped again.
func TestStillWaiting(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server", "-q", "-backlog", "1")
	srv.WaitFor("closes it and exits\n")
	before, beforeDrops := listenOverflows(t), netstat(t, "ListenDrops")
	// 2.5 s after the first half second: at least two retransmissions each.
	cl := s.Run("client", "-client", "-q", "-n", "4", "-wait", "2500ms", "-addr", srv.Addr())
	want := "2 of 4 connected, 2 waiting in SYN_SENT\nwaiting up to 2.5s for the other 2 (Ctrl-C stops)\n2 of 4 connected, 2 waiting in SYN_SENT\n"
	if cl.Output() != want || cl.ExitCode() != 0 {
		t.Errorf("client (exit status %d):\n%s\nwant\n%s", cl.ExitCode(), cl.Output(), want)
	}
	// Two clients, each SYN sent three times at least, each one dropped.
	if got := listenOverflows(t) - before; got < 6 {
		t.Errorf("ListenOverflows grew by %d, want at least 6", got)
	}
	if got := netstat(t, "ListenDrops") - beforeDrops; got < 6 {
		t.Errorf("ListenDrops grew by %d, want at least 6", got)
	}
	srv.Interrupt()
}

// TestRetransmit: a client whose SYN was dropped sends it again after 1 s.
// Since Linux 6.5 the first tcp_syn_linear_timeouts (4) retransmissions keep
// that 1 s interval; after them it doubles: 2 s, 4 s, ... The kernel's own
// retransmission timeout (tcpi_rto) says so, read after each retransmission.
func TestRetransmit(t *testing.T) {
	t.Parallel()
	booktest.CheckFDs(t)
	linear := 0 // older kernels double from the first retransmission
	if b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_syn_linear_timeouts"); err == nil {
		linear, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	lfd, addr := listener(t, 0)
	first := dial(t, addr) // fills the queue: backlog 0 holds one
	waitState(t, first, unix.BPF_TCP_ESTABLISHED)
	fd := dial(t, addr) // its SYN is dropped
	last := linear + 2
	for k := 0; k <= last; k++ {
		deadline := time.Now().Add(20 * time.Second)
		var info *unix.TCPInfo
		for {
			var err error
			if info, err = unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO); err != nil {
				t.Fatal(err)
			}
			if int(info.Retransmits) >= k || time.Now().After(deadline) {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if int(info.Retransmits) != k || info.State != unix.BPF_TCP_SYN_SENT {
			t.Fatalf("waiting for retransmission %d: state %d, %d retransmissions", k, info.State, info.Retransmits)
		}
		want := uint32(1_000_000) << max(0, k-linear) // microseconds
		if info.Rto != want {
			t.Errorf("after %d retransmissions: tcpi_rto %d µs, want %d", k, info.Rto, want)
		}
	}
	if q := queued(t, lfd); q != 1 {
		t.Errorf("accept queue %d, want 1", q)
	}
}

// TestListenMakesPassive: before listen, a bound socket refuses connections
// (the kernel answers a SYN with RST); listen makes it a listening socket,
// SO_ACCEPTCONN 1 and TCP state LISTEN, that the kernel completes
// handshakes for. A listening socket cannot connect or read, and a connected
// one cannot listen.
func TestListenMakesPassive(t *testing.T) {
	booktest.CheckFDs(t)
	fd := socket(t)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	addr := sa.(*unix.SockaddrInet4)
	check := func(when string, acceptconn int, state uint8) {
		t.Helper()
		if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v != acceptconn {
			t.Errorf("%s listen: SO_ACCEPTCONN %d, %v; want %d", when, v, err, acceptconn)
		}
		if info, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO); err != nil || info.State != state {
			t.Errorf("%s listen: tcpi_state %v, %v; want %d", when, info.State, err, state)
		}
	}
	check("before", 0, unix.BPF_TCP_CLOSE)
	if err := unix.Connect(socket(t), addr); err != unix.ECONNREFUSED {
		t.Errorf("connect before listen: %v, want ECONNREFUSED", err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	check("after", 1, unix.BPF_TCP_LISTEN)
	c := socket(t)
	if err := unix.Connect(c, addr); err != nil {
		t.Errorf("connect after listen: %v, want success", err)
	}
	if err := unix.Connect(fd, addr); err != unix.EISCONN {
		t.Errorf("connect on a listening socket: %v, want EISCONN", err)
	}
	if _, err := unix.Read(fd, make([]byte, 1)); err != unix.ENOTCONN {
		t.Errorf("read on a listening socket: %v, want ENOTCONN", err)
	}
	if err := unix.Listen(c, 1); err != unix.EINVAL {
		t.Errorf("listen on a connected socket: %v, want EINVAL", err)
	}
}

// TestSomaxconn: the kernel caps the backlog at net.core.somaxconn, silently;
// listen(fd, -1) asks for the cap. A second listen changes the backlog. Go's
// net.Listen asks for the cap too.
func TestSomaxconn(t *testing.T) {
	booktest.CheckFDs(t)
	b, err := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil {
		t.Fatal(err)
	}
	somaxconn, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("net.core.somaxconn = %d", somaxconn)
	for _, c := range []struct{ backlog, want int }{
		{0, 0}, {7, 7}, {somaxconn, somaxconn}, {somaxconn + 1, somaxconn}, {100000, somaxconn}, {-1, somaxconn},
	} {
		fd, addr := listener(t, c.backlog)
		if got := backlogOf(t, fd); got != c.want {
			t.Errorf("listen(fd, %d): backlog %d, want %d", c.backlog, got, c.want)
		}
		if _, sendQ, ok := ssListen(t, fmt.Sprintf("127.0.0.1:%d", addr.Port)); ok && sendQ != c.want {
			t.Errorf("listen(fd, %d): ss -ltn Send-Q %d, want %d", c.backlog, sendQ, c.want)
		}
		if err := unix.Listen(fd, 3); err != nil || backlogOf(t, fd) != 3 {
			t.Errorf("listen(fd, 3) again: %v, backlog %d; want 3", err, backlogOf(t, fd))
		}
	}

	// The program says so too.
	var out bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // run returns as soon as it has listened
	cfg := config{addr: netip.MustParseAddrPort("127.0.0.1:0"), backlog: 100000, reuseaddr: true}
	if err := run(ctx, cfg, &out); err != nil {
		t.Fatal(err)
	}
	if want := ", 100000) = 0\n"; !strings.Contains(out.String(), want) ||
		!strings.Contains(out.String(), fmt.Sprintf("accept queue: 0 connections, backlog %d\n", somaxconn)) {
		t.Errorf("-backlog 100000:\n%s", out.String())
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) {
		if got := backlogOf(t, int(fd)); got != somaxconn {
			t.Errorf("net.Listen: backlog %d, want somaxconn, %d", got, somaxconn)
		}
	})
}

// TestSynQueue: connections still in the handshake (SYN_RECV) are kept apart
// from the accept queue and are not counted in it. TCP_DEFER_ACCEPT makes
// the kernel keep them there until the client sends data, long enough to see.
func TestSynQueue(t *testing.T) {
	booktest.CheckFDs(t)
	lfd, addr := listener(t, 4)
	if err := unix.SetsockoptInt(lfd, unix.SOL_TCP, unix.TCP_DEFER_ACCEPT, 10); err != nil {
		t.Fatal(err)
	}
	var clients []int
	for range 3 {
		c := socket(t)
		// The client's side of the handshake completes: it got the SYN-ACK.
		if err := unix.Connect(c, addr); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	ap := netip.AddrPortFrom(netip.AddrFrom4(addr.Addr), uint16(addr.Port)).String()
	if got := countState(t, ap, "03", true); got != 3 {
		t.Errorf("/proc/net/tcp: %d connections in SYN_RECV on %s, want 3", got, ap)
	}
	if q := queued(t, lfd); q != 0 {
		t.Errorf("accept queue %d with 3 connections in SYN_RECV, want 0", q)
	}
	if recvQ, _, ok := ssListen(t, ap); ok && recvQ != 0 {
		t.Errorf("ss -ltn: Recv-Q %d, want 0", recvQ)
	}
	if _, err := unix.Write(clients[0], []byte("x")); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for queued(t, lfd) != 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if q := queued(t, lfd); q != 1 {
		t.Errorf("after one client sent data: accept queue %d, want 1", q)
	}
}

// TestOldestFirst: accept takes connections in the order their handshakes
// completed.
func TestOldestFirst(t *testing.T) {
	booktest.CheckFDs(t)
	lfd, addr := listener(t, 4)
	var ports []int
	for range 4 {
		c := socket(t)
		if err := unix.Connect(c, addr); err != nil {
			t.Fatal(err)
		}
		sa, _ := unix.Getsockname(c)
		ports = append(ports, sa.(*unix.SockaddrInet4).Port)
	}
	for i, want := range ports {
		cfd, peer, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(cfd)
		if got := peer.(*unix.SockaddrInet4).Port; got != want {
			t.Errorf("accept %d: peer port %d, want %d (connection %d)", i+1, got, want, i+1)
		}
	}
}

// TestListenPitfalls: listen on a socket with no address binds it to the
// wildcard and an ephemeral port; two sockets bound to the same port with
// SO_REUSEADDR cannot both listen: the second listen fails with EADDRINUSE.
func TestListenPitfalls(t *testing.T) {
	booktest.CheckFDs(t)
	fd := socket(t)
	if err := unix.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	a := sa.(*unix.SockaddrInet4)
	if a.Addr != [4]byte{} || a.Port == 0 {
		t.Errorf("listen without bind: getsockname %v:%d, want 0.0.0.0 and a port", a.Addr, a.Port)
	}

	x, y := socket(t), socket(t)
	for _, fd := range []int{x, y} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Bind(x, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	xa, _ := unix.Getsockname(x)
	if err := unix.Bind(y, xa); err != nil {
		t.Fatalf("second bind with SO_REUSEADDR, neither listening: %v", err)
	}
	if err := unix.Listen(x, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(y, 1); err != unix.EADDRINUSE {
		t.Errorf("second listen on the same port: %v, want EADDRINUSE", err)
	}
}

// TestInProcess runs the server and the client as the tests' own goroutines,
// to check that neither leaves a descriptor open, with IPv6 if there is.
func TestInProcess(t *testing.T) {
	for _, ip := range []string{"127.0.0.1", "::1"} {
		t.Run(ip, func(t *testing.T) {
			if ip == "::1" && !hasIPv6() {
				t.Skip("no IPv6 loopback")
			}
			booktest.CheckFDs(t)
			ctx, cancel := context.WithCancel(booktest.Context(t))
			accept := make(chan os.Signal, 1)
			srvOut := &syncBuffer{}
			srvErr := make(chan error, 1)
			go func() {
				srvErr <- run(ctx, config{addr: netip.AddrPortFrom(netip.MustParseAddr(ip), 0), backlog: 1, accept: accept}, srvOut)
			}()
			m := waitOutput(t, srvOut, regexp.MustCompile(`listening on (\S+)\n`))
			cliOut := &syncBuffer{}
			cliErr := make(chan error, 1)
			go func() {
				cliErr <- run(ctx, config{addr: netip.MustParseAddrPort(m[1]), client: true, conns: 4, wait: 20 * time.Second}, cliOut)
			}()
			waitOutput(t, cliOut, regexp.MustCompile(`\(Ctrl-C stops\)\n`))
			if !strings.Contains(cliOut.String(), "2 of 4 connected, 2 waiting in SYN_SENT\n") {
				t.Errorf("client:\n%s", cliOut.String())
			}
			accept <- syscall.SIGUSR1
			if err := <-cliErr; err != nil {
				t.Errorf("client: %v", err)
			}
			if !strings.Contains(cliOut.String(), "4 of 4 connected\n") {
				t.Errorf("client:\n%s", cliOut.String())
			}
			cancel()
			if err := <-srvErr; err != nil {
				t.Errorf("server: %v", err)
			}
			if !regexp.MustCompile(`accept queue: 2 connections, backlog 1\n(accept4\(\d+, \S+, SOCK_CLOEXEC\) = \d+\nclose\(\d+\) = 0\n){2}close\(\d+\) = 0\n$`).MatchString(srvOut.String()) {
				t.Errorf("server:\n%s", srvOut.String())
			}
		})
	}
}

// TestRefused: with nothing listening, the client's handshake fails at once;
// SO_ERROR says why, and the client exits with status 1.
func TestRefused(t *testing.T) {
	booktest.CheckFDs(t)
	// A bound socket that does not listen: its port is taken, and refuses.
	fd := socket(t)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	addr := fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
	var out bytes.Buffer
	err := run(booktest.Context(t), config{addr: netip.MustParseAddrPort(addr), client: true, conns: 1, wait: time.Second}, &out)
	if want := "connect " + addr + ": connection refused"; err == nil || err.Error() != want || !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("error %v, want %q", err, want)
	}
	if want := "getsockopt(3, SOL_TCP, TCP_INFO) = {tcpi_state=TCP_CLOSE}\n"; !strings.Contains(out.String(), want[len("getsockopt(3"):]) {
		t.Errorf("output:\n%s\nwant %q", out.String(), want)
	}
	if !strings.Contains(out.String(), "SOL_SOCKET, SO_ERROR) = ECONNREFUSED\n") {
		t.Errorf("output:\n%s\nwant SO_ERROR = ECONNREFUSED", out.String())
	}
}

// TestSIGTERM: kill (SIGTERM) ends the server as Ctrl-C does: it closes the
// listening socket and exits with status 0.
func TestSIGTERM(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server")
	srv.WaitFor("closes it and exits\n")
	srv.Signal(syscall.SIGTERM)
	if code := srv.ExitCode(); code != 0 || !strings.HasSuffix(srv.Output(), "Ctrl-C (SIGINT) or kill "+strconv.Itoa(srv.Pid())+" (SIGTERM) closes it and exits\nclose(3) = 0\n") {
		t.Errorf("exit status %d, output:\n%s", code, srv.Output())
	}
}

// Helpers.

func socket(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// listener is a socket listening on 127.0.0.1 and an ephemeral port.
func listener(t *testing.T, backlog int) (int, *unix.SockaddrInet4) {
	t.Helper()
	fd := socket(t)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, sa.(*unix.SockaddrInet4)
}

// dial starts a non-blocking connect to addr.
func dial(t *testing.T, addr unix.Sockaddr) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, addr); err != nil && err != unix.EINPROGRESS {
		t.Fatal(err)
	}
	return fd
}

func waitState(t *testing.T, fd int, state uint8) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		info, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO)
		if err == nil && info.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("fd %d: state %v, %v; want %d", fd, info.State, err, state)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// queued and backlogOf read a listening socket's accept queue length and
// backlog from TCP_INFO.
func queued(t *testing.T, fd int) int {
	t.Helper()
	info, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO)
	if err != nil {
		t.Fatal(err)
	}
	return int(info.Unacked)
}

func backlogOf(t *testing.T, fd int) int {
	t.Helper()
	info, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO)
	if err != nil {
		t.Fatal(err)
	}
	return int(info.Sacked)
}

// ssListen runs ss -ltn for the listening address addr and returns its
// Recv-Q and Send-Q; ok is false if ss is not installed.
func ssListen(t *testing.T, addr string) (recvQ, sendQ int, ok bool) {
	t.Helper()
	ss, err := exec.LookPath("ss")
	if err != nil {
		t.Logf("no ss: %v", err)
		return 0, 0, false
	}
	out, err := exec.Command(ss, "-ltnH", "src", addr).Output()
	if err != nil {
		t.Fatalf("ss: %v", err)
	}
	f := strings.Fields(string(out))
	if len(f) < 4 || f[0] != "LISTEN" || f[3] != addr {
		t.Fatalf("ss -ltnH src %s:\n%s", addr, out)
	}
	recvQ, _ = strconv.Atoi(f[1])
	sendQ, _ = strconv.Atoi(f[2])
	return recvQ, sendQ, true
}

// synSent counts the connections to addr in SYN_SENT (state 02).
func synSent(t *testing.T, addr string) int { return countState(t, addr, "02", false) }

// countState counts the lines of /proc/net/tcp (or tcp6) in state st whose
// local (or, if !local, remote) address is addr.
func countState(t *testing.T, addr, st string, local bool) int {
	t.Helper()
	ap := netip.MustParseAddrPort(addr)
	table, hex := "tcp", ""
	if ap.Addr().Is4() {
		b := ap.Addr().As4()
		hex = fmt.Sprintf("%02X%02X%02X%02X:%04X", b[3], b[2], b[1], b[0], ap.Port())
	} else {
		table = "tcp6"
		b := ap.Addr().As16()
		for i := 0; i < 16; i += 4 {
			hex += fmt.Sprintf("%02X%02X%02X%02X", b[i+3], b[i+2], b[i+1], b[i])
		}
		hex += fmt.Sprintf(":%04X", ap.Port())
	}
	data, err := os.ReadFile("/proc/net/" + table)
	if err != nil {
		t.Fatal(err)
	}
	col := 2
	if local {
		col = 1
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 3 && f[col] == hex && f[3] == st {
			n++
		}
	}
	return n
}

// listenOverflows reads TcpExt ListenOverflows from /proc/net/netstat: how
// many times, in this network namespace, a listening socket's full accept
// queue made the kernel drop a SYN or an ACK.
func listenOverflows(t *testing.T) int { t.Helper(); return netstat(t, "ListenOverflows") }

// netstat reads the counter TcpExt NAME from /proc/net/netstat.
func netstat(t *testing.T, counter string) int {
	t.Helper()
	data, err := os.ReadFile("/proc/net/netstat")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j, name := range names {
			if names[0] == "TcpExt:" && name == counter && j < len(values) {
				n, _ := strconv.Atoi(values[j])
				return n
			}
		}
	}
	t.Fatalf("no TcpExt %s in /proc/net/netstat", counter)
	return 0
}

func hasIPv6() bool {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.Bind(fd, &unix.SockaddrInet6{Addr: [16]byte{15: 1}}) == nil
}

// syncBuffer is a bytes.Buffer that run writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func waitOutput(t *testing.T, b *syncBuffer, re *regexp.Regexp) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if m := re.FindStringSubmatch(b.String()); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in:\n%s", re, b.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
