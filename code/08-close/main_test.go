//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestMain builds the program once for all the tests, not once per session
// (booktest.Run).
func TestMain(m *testing.M) { os.Exit(booktest.Run(m)) }

// clientAddr is the local address the client printed for its connection.
func clientAddr(t *testing.T, p *booktest.Proc) netip.AddrPort {
	t.Helper()
	m := regexp.MustCompile(`connection: TCP, local (\S+), remote`).FindStringSubmatch(p.Output())
	if m == nil {
		t.Fatalf("the client printed no connection line:\n%s", p.Output())
	}
	return netip.MustParseAddrPort(m[1])
}

// TestTranscript: the default client sends two lines, checks the echoes and
// closes first; the server reads end of file and closes. The connection
// stays in TIME_WAIT on the client's side only, and the server, whose
// listening socket never closed, serves the next client.
func TestTranscript(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server")
	server := netip.MustParseAddrPort(srv.Addr())
	c1 := s.Run("client", "-client", "-addr", srv.Addr(), "-msg", "hello", "-msg", "bye")
	srv.WaitForN("close(4) = 0", 1)
	client := clientAddr(t, c1)
	e := waitState(t, client, server, stTimeWait)
	if e.timer != 3 || e.ticks <= 0 || e.ticks > 60*100 {
		t.Errorf("TIME_WAIT timer %d, %d ticks left; want timer 3 and at most 60 s", e.timer, e.ticks)
	}
	waitState(t, server, client, 0) // nothing left on the server's side
	c2 := s.Run("client", "-client", "-addr", srv.Addr(), "-msg", "again")
	srv.WaitForN("close(4) = 0", 2)
	waitState(t, clientAddr(t, c2), server, stTimeWait)
	if e, ok := find(t, server, netip.MustParseAddrPort("0.0.0.0:0")); !ok {
		t.Errorf("the listening socket %s is not listed", server)
	} else if e.state != stListen {
		t.Errorf("%v, want LISTEN", e)
	}
	srv.Interrupt()
	s.Check("run")
	out := srv.Output()
	for _, want := range []string{
		`read(4, "", 4096) = 0` + "\nclose(4) = 0\naccept4(3, ",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the server did not print %q:\n%s", want, out)
		}
	}
	for _, c := range []*booktest.Proc{c1, c2} {
		if code := c.ExitCode(); code != 0 {
			t.Errorf("client exit status %d:\n%s", code, c.Output())
		}
	}
}

// TestTranscriptHalfClose: the client sends three lines in one write and
// shuts down its sending side; the -sort server reads them, reads end of
// file (its socket is now in CLOSE_WAIT), and only then replies; the client
// reads the whole reply, then the server's end of file. The client sent the
// first FIN, so TIME_WAIT is the client's.
func TestTranscriptHalfClose(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server", "-sort")
	server := netip.MustParseAddrPort(srv.Addr())
	c := s.Run("client", "-client", "-close", "shutdown", "-addr", srv.Addr(), "-msg", "pear", "-msg", "apple", "-msg", "fig")
	srv.WaitFor("close(4) = 0")
	client := clientAddr(t, c)
	waitState(t, client, server, stTimeWait)
	waitState(t, server, client, 0)
	srv.Interrupt()
	s.Check("halfclose")
	for p, want := range map[*booktest.Proc]string{
		srv: `read(4, "pear\napple\nfig\n", 4096) = 15` + "\n" + `read(4, "", 4096) = 0` + "\n" +
			"getsockopt(4, SOL_TCP, TCP_INFO) = {tcpi_state=TCP_CLOSE_WAIT}\n" +
			`write(4, "apple\nfig\npear\n", 15) = 15` + "\nclose(4) = 0\n",
		c: "shutdown(3, SHUT_WR) = 0\n" + `read(3, "apple\nfig\npear\n", 4096) = 15` + "\n" +
			`read(3, "", 4096) = 0` + "\n",
	} {
		if !strings.Contains(p.Output(), want) {
			t.Errorf("output lacks\n%s\nit is:\n%s", want, p.Output())
		}
	}
}

// TestTranscriptReset: -close linger0 and -close unread end the connection
// with RST: the server's read fails with ECONNRESET, neither side keeps
// TIME_WAIT, and the server goes on accepting.
func TestTranscriptReset(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server")
	server := netip.MustParseAddrPort(srv.Addr())
	for i, args := range [][]string{
		{"-client", "-close", "linger0", "-addr", srv.Addr()},
		{"-client", "-close", "unread", "-addr", srv.Addr(), "-msg", "one", "-msg", "two"},
	} {
		c := s.Run("client", args...)
		if code := c.ExitCode(); code != 0 {
			t.Fatalf("client exit status %d:\n%s", code, c.Output())
		}
		srv.WaitForN("connection reset by peer\n", i+1)
		client := clientAddr(t, c)
		waitState(t, client, server, 0)
		waitState(t, server, client, 0)
	}
	srv.Interrupt()
	s.Check("reset")
	if got := strings.Count(srv.Output(), `read(4, "", 4096) = -1 ECONNRESET (Connection reset by peer)`); got != 2 {
		t.Errorf("%d reads failed with ECONNRESET, want 2:\n%s", got, srv.Output())
	}
}

// TestTranscriptServerFirst: Ctrl-C stops the server while a client is
// connected: its shutdown sends the first FIN, so once the client closes
// too, TIME_WAIT is on the server's side, on port 8080.
func TestTranscriptServerFirst(t *testing.T) {
	s := booktest.New(t)
	// Ctrl-C wakes two goroutines, one per socket, and their shutdown lines
	// come in either order; the transcript shows the listening socket's first.
	s.Replace(`shutdown\(3, SHUT_RDWR\) = 0\n`, "")
	s.Replace(`\^C\n`, "^C\nshutdown(3, SHUT_RDWR) = 0\n")
	srv := s.Start("server")
	server := netip.MustParseAddrPort(srv.Addr())
	c := s.Spawn("client", "-client", "-hold", "-addr", srv.Addr())
	c.WaitFor("sending nothing until Ctrl-C\n")
	srv.WaitFor("connection: TCP")
	client := clientAddr(t, c)
	srv.Interrupt()
	// The server is gone; its side of the connection is not.
	if e, ok := find(t, server, client); !ok || (e.state != stFinWait1 && e.state != stFinWait2) {
		t.Errorf("server side after exit: %v (listed %v), want FIN_WAIT_1 or FIN_WAIT_2", e, ok)
	}
	// ss shows Recv-Q 1 for the client: the FIN takes a sequence number,
	// though there is no byte to read.
	if e, _ := find(t, client, server); e.state != stCloseWait || e.rxQueue != 1 {
		t.Errorf("client side: %v, Recv-Q %d; want CLOSE_WAIT, Recv-Q 1", e, e.rxQueue)
	}
	c.Interrupt()
	waitState(t, server, client, stTimeWait)
	waitState(t, client, server, 0)

	// With TIME_WAIT on its port, the server can listen again only because
	// it sets SO_REUSEADDR (chapter 3).
	for _, reuse := range []bool{false, true} {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		if reuse {
			unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		}
		err = unix.Bind(fd, &unix.SockaddrInet4{Port: int(server.Port()), Addr: server.Addr().As4()})
		unix.Close(fd)
		if want := map[bool]error{false: unix.EADDRINUSE, true: nil}[reuse]; err != want {
			t.Errorf("bind %s with SO_REUSEADDR %v: %v, want %v", server, reuse, err, want)
		}
	}
	s.Check("serverfirst")
}

// TCP states as the kernel numbers them (include/net/tcp_states.h), which is
// how /proc/net/tcp shows them, in hex, in its st column.
const (
	stEstablished = 0x01
	stFinWait1    = 0x04
	stFinWait2    = 0x05
	stTimeWait    = 0x06
	stCloseWait   = 0x08
	stLastAck     = 0x09
	stListen      = 0x0A
)

var stateNames = map[int]string{
	0x01: "ESTABLISHED", 0x02: "SYN_SENT", 0x03: "SYN_RECV", 0x04: "FIN_WAIT_1",
	0x05: "FIN_WAIT_2", 0x06: "TIME_WAIT", 0x07: "CLOSE", 0x08: "CLOSE_WAIT",
	0x09: "LAST_ACK", 0x0A: "LISTEN", 0x0B: "CLOSING",
}

// A tcpEntry is one line of /proc/net/tcp or /proc/net/tcp6: one socket in
// the kernel's TCP tables, seen from its own side.
type tcpEntry struct {
	local, remote netip.AddrPort
	state         int
	rxQueue       int // ss's Recv-Q: received sequence numbers not yet read
	timer         int // 3 is the TIME_WAIT timer
	ticks         int // what is left of it, in clock ticks (USER_HZ, 100 a second)
}

func (e tcpEntry) String() string {
	return fmt.Sprintf("%s %s %s", e.local, e.remote, stateNames[e.state])
}

// tcpTable reads the kernel's TCP tables, as ss -tan does.
func tcpTable(t *testing.T) []tcpEntry {
	t.Helper()
	var entries []tcpEntry
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 6 {
				continue
			}
			var e tcpEntry
			var err error
			if e.local, err = procAddr(f[1]); err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			if e.remote, err = procAddr(f[2]); err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			st, _ := strconv.ParseInt(f[3], 16, 32)
			e.state = int(st)
			_, rx, _ := strings.Cut(f[4], ":")
			rxq, _ := strconv.ParseInt(rx, 16, 64)
			e.rxQueue = int(rxq)
			timer, when, _ := strings.Cut(f[5], ":")
			tm, _ := strconv.ParseInt(timer, 16, 32)
			ticks, _ := strconv.ParseInt(when, 16, 64)
			e.timer, e.ticks = int(tm), int(ticks)
			entries = append(entries, e)
		}
	}
	return entries
}

// procAddr decodes "0100007F:1F90": the address as the kernel stores it, 32
// bits at a time in host byte order, and the port in hex.
func procAddr(s string) (netip.AddrPort, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if !ok || err != nil || (len(hexIP) != 8 && len(hexIP) != 32) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	var b [16]byte
	for i := 0; i < len(hexIP)/8; i++ {
		w, err := strconv.ParseUint(hexIP[8*i:8*i+8], 16, 32)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
		}
		// Little-endian words (x86, arm64): the first byte is the lowest.
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(w), byte(w>>8), byte(w>>16), byte(w>>24)
	}
	ip := netip.AddrFrom16(b)
	if len(hexIP) == 8 {
		ip = netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// find returns the entry of the socket whose local address is local and
// whose peer is remote.
func find(t *testing.T, local, remote netip.AddrPort) (tcpEntry, bool) {
	t.Helper()
	for _, e := range tcpTable(t) {
		if e.local == local && e.remote == remote {
			return e, true
		}
	}
	return tcpEntry{}, false
}

// waitState waits until the socket local -> remote is in state want (or,
// for want 0, until it is in no table at all) and returns its entry.
func waitState(t *testing.T, local, remote netip.AddrPort, want int) tcpEntry {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		e, ok := find(t, local, remote)
		if (want == 0 && !ok) || (ok && e.state == want) {
			return e
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s -> %s: %v (listed %v), want %s", local, remote, stateNames[e.state], ok, stateNames[want])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A conn is one end of a test connection; close is idempotent, so that a
// test can close it when it means to and the cleanup never closes a number
// that has been handed out again.
type conn struct {
	fd            int
	local, remote netip.AddrPort
}

func (c *conn) close(t *testing.T) {
	t.Helper()
	if c.fd < 0 {
		return
	}
	fd := c.fd
	c.fd = -1
	if err := unix.Close(fd); err != nil {
		t.Errorf("close(%d): %v", fd, err)
	}
}

func toAddrPort(sa unix.Sockaddr) netip.AddrPort {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port))
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port))
	}
	return netip.AddrPort{}
}

// connected makes a TCP connection on 127.0.0.1 and returns its two ends.
func connected(t *testing.T) (client, server *conn) {
	t.Helper()
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 1); err != nil {
		t.Fatal(err)
	}
	lsa, _ := unix.Getsockname(lfd)
	cfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	client = &conn{fd: cfd}
	t.Cleanup(func() { client.close(t) })
	if err := unix.Connect(cfd, lsa); err != nil {
		t.Fatal(err)
	}
	sfd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	server = &conn{fd: sfd}
	t.Cleanup(func() { server.close(t) })
	csa, _ := unix.Getsockname(cfd)
	client.local, client.remote = toAddrPort(csa), toAddrPort(lsa)
	server.local, server.remote = client.remote, client.local
	return client, server
}

// mustRead reads once and fails the test unless it returns want (with "" for
// a read of 0, end of file).
func mustRead(t *testing.T, c *conn, want string) {
	t.Helper()
	buf := make([]byte, 1024)
	n, err := unix.Read(c.fd, buf)
	if err != nil || string(buf[:n]) != want {
		t.Fatalf("read(%s) = %d %q, %v; want %q", c.local, n, buf[:max(n, 0)], err, want)
	}
}

func mustWrite(t *testing.T, c *conn, s string) {
	t.Helper()
	if n, err := unix.Write(c.fd, []byte(s)); err != nil || n != len(s) {
		t.Fatalf("write(%s, %q) = %d, %v", c.local, s, n, err)
	}
}

// waitInq waits until at least n bytes sit in c's receive buffer (ioctl
// SIOCINQ, as chapter 7 showed).
func waitInq(t *testing.T, c *conn, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		inq, err := unix.IoctlGetInt(c.fd, unix.SIOCINQ)
		if err != nil {
			t.Fatal(err)
		}
		if inq >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d bytes to read, want %d", c.local, inq, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestCloseLastReference: close releases a descriptor; the connection ends
// (FIN, and a read of 0 at the peer) only when the last descriptor for the
// socket is closed.
func TestCloseLastReference(t *testing.T) {
	booktest.CheckFDs(t)
	client, server := connected(t)
	dup, err := unix.FcntlInt(uintptr(client.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	second := &conn{fd: dup, local: client.local, remote: client.remote}
	t.Cleanup(func() { second.close(t) })

	client.close(t)
	// The descriptor is gone, the connection is not: the copy still writes,
	// and the server reads what it wrote and no end of file after it.
	if _, err := unix.FcntlInt(uintptr(dup), unix.F_GETFD, 0); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, second, "still here")
	mustRead(t, server, "still here")
	if n, _, err := unix.Recvfrom(server.fd, make([]byte, 16), unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Fatalf("server read = %d, %v; want EAGAIN: nothing to read, no end of file", n, err)
	}
	if e, _ := find(t, client.local, client.remote); e.state != stEstablished {
		t.Fatalf("after closing one of two descriptors: %v, want ESTABLISHED", e)
	}

	// Closing the last one sends the FIN: the server reads 0 and its socket
	// is in CLOSE_WAIT; the client's is in FIN_WAIT_1 or FIN_WAIT_2.
	second.close(t)
	// The FIN is in: ss counts it in Recv-Q, yet there is no byte to read.
	e := waitState(t, server.local, server.remote, stCloseWait)
	if inq, err := unix.IoctlGetInt(server.fd, unix.SIOCINQ); e.rxQueue != 1 || inq != 0 || err != nil {
		t.Errorf("CLOSE_WAIT: Recv-Q %d, FIONREAD %d, %v; want 1 and 0", e.rxQueue, inq, err)
	}
	mustRead(t, server, "")
	if e, _ := find(t, server.local, server.remote); e.state != stCloseWait {
		t.Errorf("server after reading 0: %v, want CLOSE_WAIT", e)
	}
	if e, ok := find(t, client.local, client.remote); !ok || (e.state != stFinWait1 && e.state != stFinWait2) {
		t.Errorf("client after close: %v, want FIN_WAIT_1 or FIN_WAIT_2", e)
	}
	// CLOSE_WAIT lasts until the server closes: reading again changes nothing.
	mustRead(t, server, "")
	if e, _ := find(t, server.local, server.remote); e.state != stCloseWait {
		t.Errorf("server after a second read: %v, want CLOSE_WAIT", e)
	}
	server.close(t)
	waitState(t, client.local, client.remote, stTimeWait)
	waitState(t, server.local, server.remote, 0)
}

// TestTimeWaitOnFirstCloser: the side that closes first keeps the
// connection in TIME_WAIT, for at most 60 s; the other side keeps nothing.
func TestTimeWaitOnFirstCloser(t *testing.T) {
	for _, first := range []string{"client", "server"} {
		t.Run(first+" first", func(t *testing.T) {
			booktest.CheckFDs(t)
			client, server := connected(t)
			a, b := client, server
			if first == "server" {
				a, b = server, client
			}
			a.close(t)
			mustRead(t, b, "")
			b.close(t)
			e := waitState(t, a.local, a.remote, stTimeWait)
			waitState(t, b.local, b.remote, 0)
			// The timer is TCP_TIMEWAIT_LEN, 60 s, counting down.
			if e.timer != 3 || e.ticks <= 0 || e.ticks > 60*100 {
				t.Errorf("TIME_WAIT timer %d, %d ticks left; want timer 3, at most 6000 ticks (60 s)", e.timer, e.ticks)
			}
		})
	}
}

// TestHalfClose: after shutdown(SHUT_WR) the peer reads 0, yet the
// connection still carries data the other way; writing after it fails.
func TestHalfClose(t *testing.T) {
	booktest.CheckFDs(t)
	client, server := connected(t)
	mustWrite(t, client, "request")
	if err := unix.Shutdown(client.fd, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	mustRead(t, server, "request")
	mustRead(t, server, "")
	if _, err := unix.Write(client.fd, []byte("more")); err != unix.EPIPE {
		t.Errorf("write after SHUT_WR: %v, want EPIPE", err)
	}
	mustWrite(t, server, "the whole reply")
	server.close(t)
	mustRead(t, client, "the whole reply")
	mustRead(t, client, "")
	client.close(t)
	// shutdown sent the client's FIN first: TIME_WAIT is the client's.
	waitState(t, client.local, client.remote, stTimeWait)
	waitState(t, server.local, server.remote, 0)
}

// TestShutdownActsOnTheSocket: unlike close, shutdown ends the connection
// even while another descriptor for the socket is open.
func TestShutdownActsOnTheSocket(t *testing.T) {
	booktest.CheckFDs(t)
	client, server := connected(t)
	dup, err := unix.FcntlInt(uintptr(client.fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	second := &conn{fd: dup}
	t.Cleanup(func() { second.close(t) })
	if err := unix.Shutdown(client.fd, unix.SHUT_WR); err != nil {
		t.Fatal(err)
	}
	mustRead(t, server, "")
	if _, err := unix.Write(dup, []byte("x")); err != unix.EPIPE {
		t.Errorf("write through the other descriptor: %v, want EPIPE", err)
	}
}

// TestLingerZero: with SO_LINGER {1, 0}, close sends RST: the peer's read
// fails with ECONNRESET (once; then it reads 0), and neither side keeps the
// connection, in TIME_WAIT or any other state.
func TestLingerZero(t *testing.T) {
	booktest.CheckFDs(t)
	client, server := connected(t)
	if err := unix.SetsockoptLinger(client.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		t.Fatal(err)
	}
	client.close(t)
	buf := make([]byte, 16)
	if n, err := unix.Read(server.fd, buf); err != unix.ECONNRESET {
		t.Fatalf("server read = %d, %v; want ECONNRESET", n, err)
	}
	mustRead(t, server, "")
	waitState(t, client.local, client.remote, 0)
	waitState(t, server.local, server.remote, 0) // before close, too
	server.close(t)
}

// TestUnreadDataResets: closing a socket with unread data in its receive
// buffer sends RST, not FIN: the peer's read fails with ECONNRESET.
func TestUnreadDataResets(t *testing.T) {
	booktest.CheckFDs(t)
	client, server := connected(t)
	mustWrite(t, server, "a reply the client never reads")
	waitInq(t, client, 1)
	client.close(t)
	buf := make([]byte, 16)
	if n, err := unix.Read(server.fd, buf); err != unix.ECONNRESET {
		t.Fatalf("server read = %d, %v; want ECONNRESET", n, err)
	}
	waitState(t, client.local, client.remote, 0)
	server.close(t)
}

// TestDataBeforeReset: bytes that arrived before the RST are still read
// first; the read after them fails with ECONNRESET.
func TestDataBeforeReset(t *testing.T) {
	booktest.CheckFDs(t)
	client, server := connected(t)
	mustWrite(t, server, "last words")
	if err := unix.SetsockoptLinger(server.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		t.Fatal(err)
	}
	server.close(t)
	waitState(t, client.local, client.remote, 0) // the RST has arrived
	mustRead(t, client, "last words")
	if n, err := unix.Read(client.fd, make([]byte, 16)); err != unix.ECONNRESET {
		t.Fatalf("client read = %d, %v; want ECONNRESET", n, err)
	}
}

// TestShutRead: on Linux, shutdown(SHUT_RD) sends nothing: a read returns
// 0 at once, the peer can still write, and what it writes can still be read.
func TestShutRead(t *testing.T) {
	booktest.CheckFDs(t)
	client, server := connected(t)
	if err := unix.Shutdown(server.fd, unix.SHUT_RD); err != nil {
		t.Fatal(err)
	}
	mustRead(t, server, "")
	for _, c := range []*conn{client, server} {
		if e, _ := find(t, c.local, c.remote); e.state != stEstablished {
			t.Errorf("after SHUT_RD: %v, want ESTABLISHED", e)
		}
	}
	mustWrite(t, client, "late")
	waitInq(t, server, 4)
	mustRead(t, server, "late")
	mustRead(t, server, "")
}

// fillSendBuffer writes from c until its send buffer is full (the peer is
// not reading, so its receive buffer fills first) and returns how many
// bytes the kernel accepted. It leaves c non-blocking.
func fillSendBuffer(t *testing.T, c *conn) int {
	t.Helper()
	if err := unix.SetNonblock(c.fd, true); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	total := 0
	for {
		n, err := unix.Write(c.fd, chunk)
		if err == unix.EAGAIN {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if outq, err := unix.IoctlGetInt(c.fd, unix.SIOCOUTQ); err != nil || outq == 0 {
		t.Fatalf("SIOCOUTQ = %d, %v; want bytes still waiting in the send buffer", outq, err)
	}
	return total
}

// readAll reads c to end of file or error and returns the byte count.
func readAll(t *testing.T, c *conn) (int, error) {
	t.Helper()
	buf := make([]byte, 64<<10)
	total := 0
	for {
		n, err := unix.Read(c.fd, buf)
		if err != nil {
			return total, err
		}
		if n == 0 {
			return total, nil
		}
		total += n
	}
}

// TestCloseDeliversQueuedData: close returns while data is still in the
// send buffer; the kernel delivers all of it, then the FIN.
func TestCloseDeliversQueuedData(t *testing.T) {
	booktest.CheckFDs(t)
	client, server := connected(t)
	sent := fillSendBuffer(t, client)
	client.close(t)
	got, err := readAll(t, server)
	if err != nil || got != sent {
		t.Errorf("server read %d bytes, then %v; want all %d, then end of file", got, err, sent)
	}
}

// TestLingerZeroDiscards: with SO_LINGER {1, 0}, data still in the send
// buffer is thrown away: the peer reads less than was written, then
// ECONNRESET.
func TestLingerZeroDiscards(t *testing.T) {
	booktest.CheckFDs(t)
	client, server := connected(t)
	sent := fillSendBuffer(t, client)
	if err := unix.SetsockoptLinger(client.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		t.Fatal(err)
	}
	client.close(t)
	got, err := readAll(t, server)
	if err != unix.ECONNRESET || got >= sent {
		t.Errorf("server read %d of %d bytes, then %v; want fewer, then ECONNRESET", got, sent, err)
	}
}

// TestOrphanFinWait2: a socket closed first, whose peer never closes, waits
// in FIN_WAIT_2 for at most net.ipv4.tcp_fin_timeout; the peer stays in
// CLOSE_WAIT.
func TestOrphanFinWait2(t *testing.T) {
	booktest.CheckFDs(t)
	data, err := os.ReadFile("/proc/sys/net/ipv4/tcp_fin_timeout")
	if err != nil {
		t.Fatal(err)
	}
	finTimeout, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	client, server := connected(t)
	client.close(t)
	mustRead(t, server, "")
	e := waitState(t, client.local, client.remote, stFinWait2)
	if e.ticks <= 0 || e.ticks > finTimeout*100 {
		t.Errorf("FIN_WAIT_2 timer: %d ticks left, want at most tcp_fin_timeout, %d s", e.ticks, finTimeout)
	}
	if e, _ := find(t, server.local, server.remote); e.state != stCloseWait {
		t.Errorf("server: %v, want CLOSE_WAIT", e)
	}
}

// TestNetPackage: Go's net package makes the same calls. CloseWrite is
// shutdown(SHUT_WR): the peer reads end of file and can still reply.
// SetLinger(0) before Close makes the peer's read fail with ECONNRESET.
func TestNetPackage(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// After the first net socket, which opens the runtime's poller for good.
	booktest.CheckFDs(t)
	for _, abort := range []bool{false, true} {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		s, err := ln.Accept()
		if err != nil {
			c.Close()
			t.Fatal(err)
		}
		if abort {
			c.(*net.TCPConn).SetLinger(0)
			c.Close()
			if _, err := s.Read(make([]byte, 8)); !errors.Is(err, unix.ECONNRESET) {
				t.Errorf("read after SetLinger(0) and Close: %v, want ECONNRESET", err)
			}
		} else {
			c.Write([]byte("request"))
			c.(*net.TCPConn).CloseWrite()
			if got, err := io.ReadAll(s); string(got) != "request" || err != nil {
				t.Errorf("server read %q, %v; want the request, then end of file", got, err)
			}
			s.Write([]byte("reply"))
			s.Close()
			if got, err := io.ReadAll(c); string(got) != "reply" || err != nil {
				t.Errorf("client read %q, %v; want the reply after CloseWrite", got, err)
			}
			c.Close()
		}
		s.Close()
	}
}

// awaitReset waits, with poll and no events asked for, until c reports an
// error or a hang-up: an RST has arrived, or c sent one itself.
func awaitReset(t *testing.T, c *conn) {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(c.fd)}}
	for {
		n, err := unix.Poll(pfd, 15000)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n != 1 {
			t.Fatalf("poll(%s) = %d, %v: no reset within 15 s", c.local, n, err)
		}
		return
	}
}

// TestShutdownThenData: what becomes of data the peer sends after this
// side's shutdown depends on whether the shutdown sent a FIN. After
// SHUT_RD alone the socket is still ESTABLISHED, and the data is queued
// and can be read. After SHUT_RDWR (or SHUT_RD and SHUT_WR) the FIN has
// moved the socket to FIN_WAIT_2, and data arriving there draws an RST:
// a read that runs before it returns 0 (a shut-down side reads end of
// file), a read after it fails with ECONNRESET. That race is the chapter's "Try it" with a -sort server.
func TestShutdownThenData(t *testing.T) {
	t.Run("SHUT_RD queues", func(t *testing.T) {
		booktest.CheckFDs(t)
		client, server := connected(t)
		if err := unix.Shutdown(client.fd, unix.SHUT_RD); err != nil {
			t.Fatal(err)
		}
		mustWrite(t, server, "reply")
		waitInq(t, client, 5)
		for _, c := range []*conn{client, server} {
			if e, _ := find(t, c.local, c.remote); e.state != stEstablished {
				t.Errorf("after SHUT_RD and the reply: %v, want ESTABLISHED", e)
			}
		}
		mustRead(t, client, "reply")
	})
	for _, readFirst := range []bool{true, false} {
		name := map[bool]string{true: "SHUT_RDWR, read first", false: "SHUT_RDWR, data first"}[readFirst]
		t.Run(name, func(t *testing.T) {
			booktest.CheckFDs(t)
			client, server := connected(t)
			if err := unix.Shutdown(client.fd, unix.SHUT_RDWR); err != nil {
				t.Fatal(err)
			}
			mustRead(t, server, "") // the client's FIN
			waitState(t, client.local, client.remote, stFinWait2)
			if readFirst {
				mustRead(t, client, "") // nothing has come: end of file
			}
			mustWrite(t, server, "reply")
			awaitReset(t, client) // the client's kernel answered with RST
			waitState(t, client.local, client.remote, 0)
			waitState(t, server.local, server.remote, 0)
			// Either way the reset is recorded, and the next read reports it:
			// the program's client closes after its first read, and never
			// sees it when that read came first.
			if n, err := unix.Read(client.fd, make([]byte, 16)); err != unix.ECONNRESET {
				t.Errorf("read after the reply = %d, %v; want ECONNRESET", n, err)
			}
		})
	}
}

// TestLineLimit: a line is at most maxLine bytes, newline included, as
// chapter 7 says, however the reads cut the stream. A line of maxLine bytes
// sent in one write comes back; one byte more, in one write, after a short
// line in the same write, or across two reads, and the server drops the
// client (on stderr, "no newline in 1024 bytes") and serves the next. The
// server reads up to 4096 bytes at a time, so one read holds the whole
// line: the check must not wait for a read that finds no newline.
func TestLineLimit(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server")
	fits := strings.Repeat("x", maxLine-1) + "\n"
	tooLong := "x" + fits
	refused := 0
	for i, c := range []struct {
		name   string
		writes []string // one write each; the server reads each before the next
		echo   string   // what comes back before the server closes
		ok     bool     // the server takes the client's lines
	}{
		{"a line of maxLine bytes", []string{fits}, fits, true},
		{"a line of maxLine+1 bytes", []string{tooLong}, "", false},
		{"a short line and one too long", []string{"hi\n" + tooLong}, "hi\n", false},
		{"a line too long, in two reads", []string{tooLong[:1000], tooLong[1000:]}, "", false},
	} {
		conn, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(30 * time.Second))
		for j, w := range c.writes {
			if _, err := io.WriteString(conn, w); err != nil {
				t.Fatalf("%s: write: %v", c.name, err)
			}
			if j < len(c.writes)-1 { // wait until the server has read it
				srv.WaitFor(fmt.Sprintf(", 4096) = %d\n", len(w)))
			}
		}
		// End of file, so that a server that takes the line closes too.
		conn.(*net.TCPConn).CloseWrite()
		if !c.ok {
			refused++
		}
		// A refused client's unread bytes may turn the close into a reset.
		got, err := io.ReadAll(conn)
		if err != nil && !errors.Is(err, unix.ECONNRESET) {
			t.Errorf("%s: read: %v", c.name, err)
		}
		conn.Close()
		srv.WaitForN("close(4) = 0", i+1)
		if string(got) != c.echo {
			t.Errorf("%s: the server sent back %d bytes, want %d", c.name, len(got), len(c.echo))
		}
		if n := strings.Count(srv.Output(), ": no newline in 1024 bytes\n"); n != refused {
			t.Errorf("%s: the server reported %d lines too long, want %d. Its output:\n%s", c.name, n, refused, srv.Output())
		}
	}
	srv.Interrupt()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("server exit status %d after SIGINT, want 0", code)
	}
}
