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
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
	"golang.org/x/sys/unix"
)

// TestMain builds the program once for all the tests, not once per session
// (booktest.Run).
func TestMain(m *testing.M) { os.Exit(booktest.Run(m)) }

// tupleRE matches the line each end prints about its connection.
var tupleRE = regexp.MustCompile(`connection: TCP, local (\S+), remote (\S+)\n`)

// TestTranscript records the chapter's first run: one server, one client.
// The client's blocking connect returns 0; the kernel gave the socket a port
// from ip_local_port_range; both ends print the same connection, each with
// its own address as local.
func TestTranscript(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server")
	c := s.Run("client", "-client", "-addr", srv.Addr())
	if c.ExitCode() != 0 {
		t.Fatalf("client failed:\n%s", c.Output())
	}
	srv.WaitFor("close(4) = 0")
	srv.Interrupt()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("server exit status %d after SIGINT, want 0", code)
	}
	cm, sm := tupleRE.FindStringSubmatch(c.Output()), tupleRE.FindStringSubmatch(srv.Output())
	if cm == nil || sm == nil || cm[1] != sm[2] || cm[2] != sm[1] || cm[2] != srv.Addr() {
		t.Fatalf("client says %q, server says %q; want the same connection, local and remote swapped", cm, sm)
	}
	local := netip.MustParseAddrPort(cm[1])
	lo, hi := portRange(t)
	if local.Addr() != netip.MustParseAddr("127.0.0.1") || int(local.Port()) < lo || int(local.Port()) > hi {
		t.Errorf("client's local address %s; want 127.0.0.1 and a port in %d-%d", local, lo, hi)
	}
	for _, want := range []string{
		"socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, 0) = 3\nconnect(3, " + srv.Addr() + ") = 0\n",
		"getsockname(3) = " + cm[1] + "\ngetpeername(3) = " + srv.Addr() + "\n",
	} {
		if !strings.Contains(c.Output(), want) {
			t.Errorf("client output lacks %q:\n%s", want, c.Output())
		}
	}
	s.Check("run")
}

// TestBusy is the chapter's second run. The server has backlog 0 and is busy
// with client 1, which says nothing. Client 2's connect returns 0 all the
// same, and it writes its line, while the server has not accepted it: the
// kernel did the handshake, and the connection fills the accept queue. The
// kernel drops client 3's SYN, and the client gives up at its own -timeout.
func TestBusy(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server", "-backlog", "0")
	addr := netip.MustParseAddrPort(srv.Addr())
	first := s.Spawn("client 1", "-client", "-hold", "-addr", srv.Addr())
	first.WaitFor("sending nothing")
	srv.WaitFor("connection: TCP")

	second := s.Spawn("client 2", "-client", "-addr", srv.Addr())
	second.WaitFor(`write(3, "hello\n", 6) = 6`)
	if !strings.Contains(second.Output(), "connect(3, "+srv.Addr()+") = 0\n") {
		t.Fatalf("client 2 did not connect at once:\n%s", second.Output())
	}
	waitQueue(t, addr, 1)
	if n := strings.Count(srv.Output(), "accept4("); n != 1 {
		t.Fatalf("server called accept4 %d times, want 1 (client 1's):\n%s", n, srv.Output())
	}
	addr2 := tupleRE.FindStringSubmatch(second.Output())[1]

	// The kernel drops client 3's SYN: poll sees no answer (TestTimeout
	// watches the same from inside, retransmissions and all).
	third := s.Run("client 3", "-client", "-timeout", "1s", "-addr", srv.Addr())
	if code := third.ExitCode(); code != 1 {
		t.Errorf("client 3 exit status %d, want 1:\n%s", code, third.Output())
	}
	for _, want := range []string{
		"socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0) = 3\n" +
			"connect(3, " + srv.Addr() + ") = -1 EINPROGRESS (Operation now in progress)\n" +
			"poll([{fd=3, events=POLLOUT}], 1, 1000) = 0 (Timeout)\nclose(3) = 0\n",
		"connect " + srv.Addr() + ": no answer within 1s: connection timed out\n",
	} {
		if !strings.Contains(third.Output(), want) {
			t.Errorf("client 3 output lacks %q:\n%s", want, third.Output())
		}
	}
	if n := strings.Count(srv.Output(), "accept4("); n != 1 {
		t.Fatalf("server called accept4 %d times, want 1:\n%s", n, srv.Output())
	}

	first.Interrupt()
	second.Wait()
	if second.ExitCode() != 0 {
		t.Fatalf("client 2:\n%s", second.Output())
	}
	srv.WaitForN("close(4) = 0", 2)
	srv.Interrupt()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("server exit status %d after SIGINT, want 0", code)
	}
	// Only now did the server accept client 2, and read the line client 2
	// wrote long before.
	out := srv.Output()
	want := fmt.Sprintf("accept4(3, %s, SOCK_CLOEXEC) = 4\n", addr2)
	if i, j := strings.Index(out, `read(4, "", 1024) = 0`), strings.Index(out, want); i < 0 || j < i {
		t.Errorf("want client 1's end (read of 0), then %q:\n%s", want, out)
	}
	if !strings.Contains(out, fmt.Sprintf("connection: TCP, local %s, remote %s\nread(4, \"hello\\n\", 1024) = 6\n", srv.Addr(), addr2)) {
		t.Errorf("server did not read client 2's line after accepting it:\n%s", out)
	}
	s.Check("busy")
}

// TestRefused: with nothing listening on the port, the kernel answers the
// SYN with a reset, and connect fails with ECONNREFUSED; a non-blocking
// connect learns it from SO_ERROR, after poll has said the socket is
// writable (and in error). The error goes to stderr, the exit status is 1.
func TestRefused(t *testing.T) {
	s := booktest.New(t)
	// A socket bound to the port and not listening keeps any other program
	// from listening there while the test runs.
	_, addr := boundSocket(t)
	// The transcript shows the port as 8080: nothing listens there either.
	s.Replace(`127\.0\.0\.1:40001\b`, "127.0.0.1:8080")
	rsts := snmpTCP(t, "OutRsts")
	p := s.Run("client", "-client", "-addr", addr)
	q := s.Run("client", "-client", "-timeout", "1s", "-addr", addr)
	if after := snmpTCP(t, "OutRsts"); after < rsts+2 {
		t.Errorf("Tcp OutRsts went from %d to %d; want the kernel to send at least 2 resets", rsts, after)
	}
	for _, c := range []struct {
		p    *booktest.Proc
		want string
	}{
		{p, "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, 0) = 3\n" +
			"connect(3, " + addr + ") = -1 ECONNREFUSED (Connection refused)\n" +
			"close(3) = 0\nconnect " + addr + ": connection refused\n"},
		{q, "socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK|SOCK_CLOEXEC, 0) = 3\n" +
			"connect(3, " + addr + ") = -1 EINPROGRESS (Operation now in progress)\n" +
			"poll([{fd=3, events=POLLOUT}], 1, 1000) = 1 ([{fd=3, revents=POLLOUT|POLLERR|POLLHUP}])\n" +
			"getsockopt(3, SOL_SOCKET, SO_ERROR) = 111 (ECONNREFUSED)\n" +
			"close(3) = 0\nconnect " + addr + ": connection refused\n"},
	} {
		if c.p.ExitCode() != 1 || c.p.Output() != c.want {
			t.Errorf("exit status %d, output:\n%s\nwant status 1, output:\n%s", c.p.ExitCode(), c.p.Output(), c.want)
		}
	}
	s.Check("refused")
}

// TestWritableNotConnected: after a refused non-blocking connect, poll says
// the socket is writable; a program that skips SO_ERROR meets the error in
// its first write instead.
func TestWritableNotConnected(t *testing.T) {
	booktest.CheckFDs(t)
	_, addr := boundSocket(t)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, fd)
	sa, _ := sockaddr(netip.MustParseAddrPort(addr))
	if err := unix.Connect(fd, sa); err != unix.EINPROGRESS {
		t.Fatalf("connect: %v, want EINPROGRESS", err)
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	n, err := unix.Poll(pfd, 15000)
	for err == unix.EINTR {
		n, err = unix.Poll(pfd, 15000)
	}
	if n != 1 || pfd[0].Revents&unix.POLLOUT == 0 {
		t.Fatalf("poll = %d, %v, revents %#x; want POLLOUT", n, err, pfd[0].Revents)
	}
	if _, err := unix.Write(fd, []byte("hello\n")); err != unix.ECONNREFUSED {
		t.Errorf("write on the writable socket: %v, want ECONNREFUSED", err)
	}
}

// TestConnectBeforeAccept: connect returns 0 against a listener that never
// calls accept. The connection waits in the accept queue; the client can
// write at once; accept4, later, returns the connection with the client's
// address, and the bytes are there to read.
func TestConnectBeforeAccept(t *testing.T) {
	booktest.CheckFDs(t)
	for _, network := range []string{"127.0.0.1:0", "[::1]:0"} {
		lfd, laddr := listener(t, network, 5)
		var out syncBuffer
		fd, err := dial(booktest.Context(t), testNarrator(&out), laddr, 0)
		if err != nil {
			t.Fatalf("dial %s: %v\n%s", laddr, err, out.String())
		}
		closeLater(t, fd)
		if want := fmt.Sprintf("connect(%d, %s) = 0\n", fd, laddr); !strings.HasSuffix(out.String(), want) {
			t.Errorf("narration %q, want it to end %q", out.String(), want)
		}
		waitQueue(t, laddr, 1)
		if _, err := unix.Write(fd, []byte("early\n")); err != nil {
			t.Fatalf("write before accept: %v", err)
		}
		local := sockname(t, fd)
		cfd, peer, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		closeLater(t, cfd)
		if addrString(peer) != local {
			t.Errorf("accept4 says the peer is %s; the client's socket is %s", addrString(peer), local)
		}
		if sa, err := unix.Getpeername(fd); err != nil || addrString(sa) != laddr.String() {
			t.Errorf("client's getpeername = %s, %v; want %s", addrString(sa), err, laddr)
		}
		buf := make([]byte, 64)
		if n, err := unix.Read(cfd, buf); err != nil || string(buf[:n]) != "early\n" {
			t.Errorf("read after accept = %q, %v; want the line written before accept", buf[:max(n, 0)], err)
		}
	}
}

// TestEphemeralPort: with no bind, connect gives the socket the loopback
// address and a port from ip_local_port_range. Linux picks connect's ports
// with the parity of the range's low end (even, with the default 32768) and
// bind's port-0 ports with the other parity, so the two rarely compete.
func TestEphemeralPort(t *testing.T) {
	booktest.CheckFDs(t)
	lo, hi := portRange(t)
	lfd, laddr := listener(t, "127.0.0.1:0", 64)
	for range 10 {
		var out syncBuffer
		fd, err := dial(booktest.Context(t), testNarrator(&out), laddr, 0)
		if err != nil {
			t.Fatal(err)
		}
		closeLater(t, fd)
		ap := netip.MustParseAddrPort(sockname(t, fd))
		if p := int(ap.Port()); ap.Addr().String() != "127.0.0.1" || p < lo || p > hi || p%2 != lo%2 {
			t.Errorf("connect gave the socket %s; want 127.0.0.1 and a port in %d-%d with the parity of %d", ap, lo, hi, lo)
		}
		cfd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		closeLater(t, cfd)

		if p := freePort(t); p%2 == lo%2 {
			t.Errorf("bind to port 0 gave %d; want the other parity than %d", p, lo)
		}
	}
}

// TestPortsPerDestination: an ephemeral port need only be unique per
// destination. With the range narrowed to one port (IP_LOCAL_PORT_RANGE,
// Linux 6.3), a second connection to the same server address fails with
// EADDRNOTAVAIL, and a connection to another server gets the same port.
func TestPortsPerDestination(t *testing.T) {
	booktest.CheckFDs(t)
	_, a := listener(t, "127.0.0.1:0", 5)
	_, b := listener(t, "127.0.0.1:0", 5)
	port := freePort(t)
	paddr := fmt.Sprintf("127.0.0.1:%d", port)
	connectFrom := func(dst netip.AddrPort) (string, error) {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		closeLater(t, fd)
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_LOCAL_PORT_RANGE, port|port<<16); err != nil {
			t.Skipf("IP_LOCAL_PORT_RANGE: %v (needs Linux 6.3)", err)
		}
		sa, _ := sockaddr(dst)
		if err := unix.Connect(fd, sa); err != nil {
			return "", err
		}
		return sockname(t, fd), nil
	}
	first, err := connectFrom(a)
	if err != nil || first != paddr {
		t.Fatalf("first connection from %s, %v; want %s", first, err, paddr)
	}
	if _, err := connectFrom(a); err != unix.EADDRNOTAVAIL {
		t.Errorf("second connection to %s from the same single port: %v, want EADDRNOTAVAIL", a, err)
	}
	if other, err := connectFrom(b); err != nil || other != paddr {
		t.Errorf("connection to %s: from %s, %v; want the same port, %s", b, other, err, paddr)
	}
}

// TestTimeout: a listener with backlog 0 and one connection queued drops
// every SYN. The plain connect would wait for the kernel's two minutes;
// with a timeout, dial gives up with an error that is ETIMEDOUT, closes its
// socket, and narrates poll's timeout. Without one, the socket stays in
// SYN_SENT and the kernel sends the SYN again. Go's net.DialTimeout does the same
// and says "i/o timeout". Once the queue has room, dial succeeds.
func TestTimeout(t *testing.T) {
	booktest.CheckFDs(t)
	lfd, laddr := fullListener(t)
	var out syncBuffer
	_, err := dial(booktest.Context(t), testNarrator(&out), laddr, 200*time.Millisecond)
	if !errors.Is(err, unix.ETIMEDOUT) {
		t.Fatalf("dial: %v, want ETIMEDOUT\n%s", err, out.String())
	}
	if want := fmt.Sprintf("connect %s: no answer within 200ms: connection timed out", laddr); err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	if !strings.Contains(out.String(), "}], 1, 200) = 0 (Timeout)\nclose(") {
		t.Errorf("narration lacks poll's timeout and the close:\n%s", out.String())
	}

	// Without a timeout the socket waits in SYN_SENT while the kernel sends
	// the SYN again (after 1 s, then 2, 4...), until Ctrl-C.
	ctx, cancel := context.WithCancel(booktest.Context(t))
	errc := make(chan error, 1)
	go func() {
		_, err := dial(ctx, testNarrator(&out), laddr, 0)
		errc <- err
	}()
	waitSynSent(t, laddr, 1)
	cancel()
	if err := <-errc; !errors.Is(err, unix.ECONNRESET) {
		t.Errorf("blocking dial after cancel: %v, want ECONNRESET", err)
	}

	c, err := net.DialTimeout("tcp", laddr.String(), 200*time.Millisecond)
	if err == nil {
		c.Close()
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() || !strings.HasSuffix(err.Error(), "i/o timeout") {
		t.Errorf("net.DialTimeout: %v, want an i/o timeout", err)
	}

	cfd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC) // room for one more
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(cfd)
	fd, err := dial(booktest.Context(t), testNarrator(&out), laddr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial after accept: %v", err)
	}
	unix.Close(fd)
	if !strings.Contains(out.String(), "revents=POLLOUT}])\ngetsockopt(") || !strings.Contains(out.String(), "SO_ERROR) = 0\n") {
		t.Errorf("narration lacks a writable socket and SO_ERROR 0:\n%s", out.String())
	}
}

// TestNonblockingConnect: a non-blocking TCP connect returns EINPROGRESS,
// even on loopback, even to a listener that answers at once: the handshake
// always finishes after the call has returned.
func TestNonblockingConnect(t *testing.T) {
	booktest.CheckFDs(t)
	lfd, laddr := listener(t, "127.0.0.1:0", 5)
	sa, _ := sockaddr(laddr)
	for i := range 100 {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		err = unix.Connect(fd, sa)
		if err != unix.EINPROGRESS {
			unix.Close(fd)
			t.Fatalf("connect %d: %v, want EINPROGRESS", i, err)
		}
		cfd := acceptOne(t, lfd)
		unix.Close(cfd)
		unix.Close(fd)
	}
}

// TestInterruptConnect: Ctrl-C ends the client promptly while its connect
// waits for an answer that will not come, blocking or not: shutdown aborts
// the handshake, the waiting call returns ECONNRESET, and the client exits
// with status 0 after closing its socket.
func TestInterruptConnect(t *testing.T) {
	_, laddr := fullListener(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "shutdown(3, SHUT_RDWR) = 0\nconnect(3, %s) = -1 ECONNRESET (Connection reset by peer)\nclose(3) = 0\n"},
		{[]string{"-timeout", "10m"}, "shutdown(3, SHUT_RDWR) = 0\n" +
			"poll([{fd=3, events=POLLOUT}], 1, 600000) = 1 ([{fd=3, revents=POLLOUT|POLLERR|POLLHUP}])\n" +
			"getsockopt(3, SOL_SOCKET, SO_ERROR) = 104 (ECONNRESET)\nclose(3) = 0\n"},
	} {
		s := booktest.New(t)
		p := s.Spawn("client", append([]string{"-client", "-addr", laddr.String()}, c.args...)...)
		p.WaitFor("socket(")
		waitSynSent(t, laddr, 0)
		p.Interrupt()
		want := strings.ReplaceAll(c.want, "%s", laddr.String())
		if p.ExitCode() != 0 || !strings.HasSuffix(p.Output(), want) {
			t.Errorf("%v: exit status %d, output:\n%s\nwant status 0, output ending:\n%s", c.args, p.ExitCode(), p.Output(), want)
		}
	}
}

// TestLocalhostPitfall: a server on 127.0.0.1 is not on ::1. A client that
// tries ::1 first (as "localhost" may resolve) is refused.
func TestLocalhostPitfall(t *testing.T) {
	booktest.CheckFDs(t)
	_, laddr := listener(t, "127.0.0.1:0", 5)
	var out syncBuffer
	v6 := netip.AddrPortFrom(netip.IPv6Loopback(), laddr.Port())
	if _, err := dial(booktest.Context(t), testNarrator(&out), v6, 0); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("dial %s with a server on %s: %v, want ECONNREFUSED", v6, laddr, err)
	}
}

// TestQuiet: with -q the client prints only the connection and the reply.
func TestQuiet(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server", "-q")
	c := s.Run("client", "-client", "-q", "-addr", srv.Addr())
	srv.Interrupt()
	if m := regexp.MustCompile(`^connection: TCP, local (\S+), remote (\S+)\nhi (\S+), you said "hello"\n$`).FindStringSubmatch(c.Output()); m == nil || m[1] != m[3] || m[2] != srv.Addr() {
		t.Errorf("-q client printed:\n%s", c.Output())
	}
	if want := "listening on " + srv.Addr() + "\nconnection: TCP, local " + srv.Addr() + ", remote "; !strings.HasPrefix(srv.Output(), want) {
		t.Errorf("-q server printed:\n%s", srv.Output())
	}
}

// --- helpers ---

func testNarrator(w *syncBuffer) narrator { return narrator{w: w, mu: new(sync.Mutex)} }

// listener is a listening socket on addr (port 0: the kernel picks one).
func listener(t *testing.T, addr string, backlog int) (int, netip.AddrPort) {
	t.Helper()
	ap := netip.MustParseAddrPort(addr)
	domain := unix.AF_INET6
	if ap.Addr().Is4() {
		domain = unix.AF_INET
	}
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, fd)
	sa, _ := sockaddr(ap)
	if err := unix.Bind(fd, sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatal(err)
	}
	return fd, netip.MustParseAddrPort(sockname(t, fd))
}

// acceptOne waits (bounded) for a connection on lfd and accepts it.
func acceptOne(t *testing.T, lfd int) int {
	t.Helper()
	n, err := unix.Poll([]unix.PollFd{{Fd: int32(lfd), Events: unix.POLLIN}}, 15000)
	for err == unix.EINTR {
		n, err = unix.Poll([]unix.PollFd{{Fd: int32(lfd), Events: unix.POLLIN}}, 15000)
	}
	if n != 1 {
		t.Fatalf("poll on the listener: %d, %v", n, err)
	}
	fd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// fullListener listens with backlog 0 and fills the queue with one
// connection, which it never accepts: every later SYN is dropped.
func fullListener(t *testing.T) (int, netip.AddrPort) {
	t.Helper()
	lfd, laddr := listener(t, "127.0.0.1:0", 0)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, fd)
	sa, _ := sockaddr(laddr)
	if err := unix.Connect(fd, sa); err != nil {
		t.Fatal(err)
	}
	waitQueue(t, laddr, 1)
	return lfd, laddr
}

// boundSocket is a TCP socket bound to 127.0.0.1, port 0, not listening.
func boundSocket(t *testing.T) (int, string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	closeLater(t, fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	return fd, sockname(t, fd)
}

// freePort binds a socket to 127.0.0.1 port 0, and closes it: the kernel's
// choice of a free port, as bind picks them.
func freePort(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	return int(netip.MustParseAddrPort(sockname(t, fd)).Port())
}

// closeLater closes fd when the test ends.
func closeLater(t *testing.T, fd int) { t.Cleanup(func() { unix.Close(fd) }) }

func sockname(t *testing.T, fd int) string {
	t.Helper()
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return addrString(sa)
}

// portRange reads net.ipv4.ip_local_port_range.
func portRange(t *testing.T) (lo, hi int) {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		t.Fatal(err)
	}
	return lo, hi
}

// snmpTCP reads one of the kernel's TCP counters from /proc/net/snmp.
func snmpTCP(t *testing.T, name string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) == 0 || f[0] != "Tcp:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == name && i < len(f) {
				v, err := strconv.ParseInt(f[i], 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
	}
	t.Fatalf("no Tcp %s in /proc/net/snmp", name)
	return 0
}

// procTCP returns the fields of each line of /proc/net/tcp (or tcp6).
func procTCP(t *testing.T, v6 bool) [][]string {
	t.Helper()
	file := "/proc/net/tcp"
	if v6 {
		file = "/proc/net/tcp6"
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lines [][]string
	for _, l := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 6 {
			lines = append(lines, f)
		}
	}
	return lines
}

// waitQueue waits until the accept queue of the socket listening on addr
// holds want connections. For a listening socket, /proc/net/tcp's rx_queue
// column is the accept queue's length (what ss shows as Recv-Q).
func waitQueue(t *testing.T, addr netip.AddrPort, want int) {
	t.Helper()
	got := -1
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, f := range procTCP(t, addr.Addr().Is6()) {
			if f[3] != "0A" || !strings.HasSuffix(f[1], fmt.Sprintf(":%04X", addr.Port())) {
				continue
			}
			q, err := strconv.ParseUint(f[4][strings.Index(f[4], ":")+1:], 16, 32)
			if err != nil {
				t.Fatal(err)
			}
			if got = int(q); got == want {
				return
			}
		}
	}
	t.Fatalf("accept queue of %s holds %d, want %d", addr, got, want)
}

// waitSynSent waits until a socket connecting to addr is in SYN_SENT (state
// 02 in /proc/net/tcp) and the kernel has sent its SYN again at least
// retrans times (the column after the timer).
func waitSynSent(t *testing.T, addr netip.AddrPort, retrans int) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, f := range procTCP(t, addr.Addr().Is6()) {
			if f[3] != "02" || !strings.HasSuffix(f[2], fmt.Sprintf(":%04X", addr.Port())) {
				continue
			}
			last = strings.Join(f[:7], " ")
			if n, err := strconv.ParseUint(f[6], 16, 32); err == nil && int(n) >= retrans {
				return
			}
		}
	}
	t.Fatalf("no socket in SYN_SENT to %s with %d retransmissions; last seen: %q", addr, retrans, last)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestClientErrorToStderr: what goes wrong with one client is an error,
// and goes to stderr, like every other error; the narration stays on
// stdout, and the server goes on to serve the next client. A client that
// resets its connection (SO_LINGER {1, 0}, then close) before saying
// anything, while the server waits in read, makes that read fail with
// ECONNRESET.
func TestClientErrorToStderr(t *testing.T) {
	booktest.CheckFDs(t)
	ctx, cancel := context.WithCancel(booktest.Context(t))
	var stdout, stderr syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{addr: netip.MustParseAddrPort("127.0.0.1:0"), backlog: 2}, &stdout, &stderr)
	}()
	var addr netip.AddrPort
	for deadline := time.Now().Add(15 * time.Second); !addr.IsValid(); time.Sleep(10 * time.Millisecond) {
		if m := regexp.MustCompile(`listening on (\S+)\n`).FindStringSubmatch(stdout.String()); m != nil {
			addr = netip.MustParseAddrPort(m[1])
		} else if time.Now().After(deadline) {
			t.Fatalf("the server did not listen:\n%s", stdout.String())
		}
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	sa, _ := sockaddr(addr)
	if err := unix.Connect(fd, sa); err != nil {
		t.Fatal(err)
	}
	local := sockname(t, fd)
	// Once the server reads (it has shown the connection), reset.
	for deadline := time.Now().Add(15 * time.Second); !strings.Contains(stdout.String(), "remote "+local+"\n"); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not show the connection:\n%s", stdout.String())
		}
	}
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)

	// The next client is served.
	var out syncBuffer
	if err := runClient(ctx, config{addr: addr, msg: "next"}, testNarrator(&out), &out); err != nil {
		t.Fatalf("the client after the reset: %v\n%s", err, out.String())
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("server: %v", err)
	}
	want := "read " + local + ": connection reset by peer\n"
	if stderr.String() != want {
		t.Errorf("stderr %q, want %q", stderr.String(), want)
	}
	if !strings.Contains(stdout.String(), "ECONNRESET (Connection reset by peer)\n") || strings.Contains(stdout.String(), want) {
		t.Errorf("stdout should narrate the failed read, and not hold the error:\n%s", stdout.String())
	}
	if !strings.Contains(out.String(), `you said "next"`) {
		t.Errorf("the next client was not served:\n%s", out.String())
	}
}
