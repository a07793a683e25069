//go:build linux

package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestMain builds the program once for all the tests, not once per session
// (booktest.Run).
func TestMain(m *testing.M) { os.Exit(booktest.Run(m)) }

// waitStopped waits until the process pid is stopped (state T), so that
// nothing it could still do races with what the test does next.
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		// The state follows the command name, which is in parentheses.
		if i := strings.LastIndexByte(string(stat), ')'); i > 0 && strings.HasPrefix(string(stat[i:]), ") T") {
			return
		}
	}
	t.Fatalf("process %d did not stop", pid)
}

// TestTranscript records the chapter's first run: one server socket, two
// clients, their datagrams interleaved. The test stops the server (as
// Ctrl-Z would) while client A and then client B send, so both datagrams
// wait in the one receive queue; once it goes on, the server takes A's,
// then B's, then A's second, each with its sender's address, all on
// descriptor 3, with no listen and no accept.
func TestTranscript(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server")
	srv.Send(syscall.SIGSTOP)
	waitStopped(t, srv.Pid())
	a := s.Spawn("client A", "-client", "-addr", srv.Addr(), "-msg", "from A", "-msg", "A again")
	a.WaitFor("sendto(3, \"from A\\n\"")
	b := s.Spawn("client B", "-client", "-addr", srv.Addr(), "-msg", "from B")
	b.WaitFor("sendto(3, \"from B\\n\"")
	srv.Send(syscall.SIGCONT)
	a.Wait()
	b.Wait()
	srv.WaitForN("sendto(3", 3)
	srv.Interrupt()
	s.Check("run")

	for _, c := range []*booktest.Proc{a, b, srv} {
		if c.ExitCode() != 0 {
			t.Errorf("exit status %d, want 0:\n%s", c.ExitCode(), c.Output())
		}
	}
	out := srv.Output()
	for _, bad := range []string{"listen(", "accept"} {
		if strings.Contains(out, bad) {
			t.Errorf("the server called %s:\n%s", bad, out)
		}
	}
	got := regexp.MustCompile(`(?m)^recvfrom\(3, "([^"]*)\\n", 2048, MSG_TRUNC, 127\.0\.0\.1:(\d+)\) = \d+$`).FindAllStringSubmatch(out, -1)
	if len(got) != 3 || got[0][1] != "from A" || got[1][1] != "from B" || got[2][1] != "A again" ||
		got[0][2] != got[2][2] || got[0][2] == got[1][2] {
		t.Errorf("want datagrams from A, B, A on descriptor 3, A's two from one port and B's from another; got %q:\n%s", got, out)
	}
	if !strings.Contains(out, "shutdown(3, SHUT_RDWR) = -1 ENOTCONN") || !strings.Contains(out, "recvfrom(3, \"\", 2048, MSG_TRUNC, ?) = 0\nclose(3) = 0\n") {
		t.Errorf("Ctrl-C: want shutdown to fail with ENOTCONN and wake recvfrom with 0:\n%s", out)
	}
}

// TestCut records a datagram bigger than the server's buffer: recvfrom
// with MSG_TRUNC returns its real size, the server keeps 8 bytes and says
// so on stderr, the rest is gone, and the next datagram is served whole.
func TestCut(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server", "-bufsize", "8")
	long := s.Run("client", "-client", "-addr", srv.Addr(), "-msg", "longer than eight bytes")
	short := s.Run("client", "-client", "-addr", srv.Addr(), "-msg", "short")
	// The client may have its echo before the server has narrated the
	// sendto that sent it: the Ctrl-C comes after that line, as a reader
	// at the terminal sees it.
	srv.WaitFor(`sendto(3, "short\n", 6, 0, `)
	srv.Interrupt()
	s.Check("cut")
	if !strings.Contains(srv.Output(), `recvfrom(3, "longer t", 8, MSG_TRUNC, `) ||
		!strings.Contains(srv.Output(), ": a datagram of 24 bytes, cut to 8\n") {
		t.Errorf("want the server to receive 8 of 24 bytes and say so:\n%s", srv.Output())
	}
	if long.ExitCode() != 1 || !strings.Contains(long.Output(), `sent "longer than eight bytes\n", got back "longer t"`) {
		t.Errorf("the long datagram's client: want exit status 1 and the cut echo:\n%s", long.Output())
	}
	if short.ExitCode() != 0 {
		t.Errorf("the next client: exit status %d:\n%s", short.ExitCode(), short.Output())
	}
}

// TestRefused records what a client hears when nobody is bound to the
// port: the server has stopped. Connected, its read fails with
// ECONNREFUSED (the kernel matched the ICMP port unreachable to the
// socket); unconnected, it hears nothing and gives up after its timeout.
func TestRefused(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server")
	srv.Interrupt()
	conn := s.Run("client", "-client", "-connect", "-timeout", "1s", "-addr", srv.Addr())
	unconn := s.Run("client", "-client", "-timeout", "1s", "-addr", srv.Addr())
	s.Check("refused")
	if !regexp.MustCompile(`(?m)^read\(3, "", 65536\) = -1 ECONNREFUSED`).MatchString(conn.Output()) || conn.ExitCode() != 1 {
		t.Errorf("connected client: want read ECONNREFUSED and exit status 1:\n%s", conn.Output())
	}
	if !strings.Contains(unconn.Output(), "recvfrom(3, \"\", 65536, 0, ?) = -1 EAGAIN") ||
		!strings.Contains(unconn.Output(), "no echo in 1s") || unconn.ExitCode() != 1 {
		t.Errorf("unconnected client: want EAGAIN after its timeout and exit status 1:\n%s", unconn.Output())
	}
}

// udp is a UDP socket bound to 127.0.0.1, port 0, closed when the test
// ends; it returns the descriptor and the address the kernel gave it.
func udp(t *testing.T) (int, *unix.SockaddrInet4) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, sa.(*unix.SockaddrInet4)
}

// timeout makes fd's receives give up with EAGAIN after d.
func timeout(t *testing.T, fd int, d time.Duration) {
	t.Helper()
	tv := unix.NsecToTimeval(d.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
}

// quiet is a narrator that prints nothing.
var quiet = narrator{w: io.Discard, quiet: true, mu: new(sync.Mutex)}

// TestBoundaries: two sends are two receives, however big the buffer; an
// empty datagram is a datagram (recvfrom returns 0 and an address: not end
// of file); and the first sendto of an unbound socket binds it to a port
// on every address, 0.0.0.0.
func TestBoundaries(t *testing.T) {
	booktest.CheckFDs(t)
	rfd, raddr := udp(t)
	sfd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(sfd)
	for _, m := range []string{"one\n", "two\n", ""} {
		if _, err := sendTo(quiet, sfd, []byte(m), raddr); err != nil {
			t.Fatal(err)
		}
	}
	local, _ := unix.Getsockname(sfd)
	if l, ok := local.(*unix.SockaddrInet4); !ok || l.Addr != [4]byte{} || l.Port == 0 {
		t.Errorf("after sendto, the sender's address is %s, want 0.0.0.0 and a port", addrString(local))
	}
	buf := make([]byte, maxDatagram)
	for _, want := range []string{"one\n", "two\n", ""} {
		got, from, err := recvFrom(quiet, rfd, buf, 0)
		if err != nil || string(buf[:got]) != want || from == nil {
			t.Errorf("recvfrom: %q from %s, %v; want %q and the sender's address", buf[:got], addrString(from), err, want)
		}
	}
}

// TestTruncate: a datagram bigger than the buffer is cut. recvmsg says so
// with MSG_TRUNC in its flags, and the rest is gone: the next receive gets
// the next datagram. MSG_PEEK|MSG_TRUNC tells the real size and leaves the
// datagram queued, so a buffer that big then takes it whole.
func TestTruncate(t *testing.T) {
	booktest.CheckFDs(t)
	rfd, raddr := udp(t)
	sfd, _ := udp(t)
	for _, m := range []string{"twenty bytes, really", "next", "a datagram of 27 bytes here"} {
		if err := unix.Sendto(sfd, []byte(m), 0, raddr); err != nil {
			t.Fatal(err)
		}
	}
	small := make([]byte, 8)
	got, _, flags, _, err := unix.Recvmsg(rfd, small, nil, 0)
	if err != nil || got != 8 || flags&unix.MSG_TRUNC == 0 || string(small) != "twenty b" {
		t.Errorf("recvmsg into 8 bytes: %d, %q, flags %#x, %v; want 8, MSG_TRUNC", got, small, flags, err)
	}
	got, _, flags, _, err = unix.Recvmsg(rfd, small, nil, 0)
	if err != nil || string(small[:got]) != "next" || flags&unix.MSG_TRUNC != 0 {
		t.Errorf("the next recvmsg: %q, flags %#x, %v; want \"next\", the rest of the first is gone", small[:got], flags, err)
	}
	size, _, err := recvFrom(quiet, rfd, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
	if err != nil || size != 27 {
		t.Errorf("recvfrom MSG_PEEK|MSG_TRUNC: %d, %v; want the real size, 27", size, err)
	}
	whole := make([]byte, size)
	got, _, flags, _, err = unix.Recvmsg(rfd, whole, nil, 0)
	if err != nil || got != 27 || flags&unix.MSG_TRUNC != 0 {
		t.Errorf("recvmsg into %d bytes after the peek: %d, flags %#x, %v; want the whole datagram", size, got, flags, err)
	}
}

// TestLargest: over IPv4 a UDP datagram carries at most 65,507 bytes
// (65,535 for the IP packet, less 20 of IP header and 8 of UDP header);
// 65,508 fails with EMSGSIZE. Loopback's MTU, 65,536, is bigger than any
// IP packet: with fragmentation forbidden (IP_PMTUDISC_DO), the largest
// datagram still goes, in one piece.
func TestLargest(t *testing.T) {
	booktest.CheckFDs(t)
	rfd, raddr := udp(t)
	sfd, _ := udp(t)
	if err := unix.SetsockoptInt(sfd, unix.IPPROTO_IP, unix.IP_MTU_DISCOVER, unix.IP_PMTUDISC_DO); err != nil {
		t.Fatal(err)
	}
	var out strings.Builder
	n := newNarrator(&out, false)
	big := make([]byte, 65508)
	if _, err := sendTo(n, sfd, big[:65507], raddr); err != nil {
		t.Errorf("sendto 65,507 bytes: %v, want success", err)
	}
	buf := make([]byte, maxDatagram)
	if got, _, err := unix.Recvfrom(rfd, buf, 0); err != nil || got != 65507 {
		t.Errorf("recvfrom: %d, %v; want all 65,507 bytes in one datagram", got, err)
	}
	if _, err := sendTo(n, sfd, big, raddr); err == nil || !strings.Contains(out.String(), ", 65508, 0, 127.0.0.1:") ||
		!strings.Contains(out.String(), "= -1 EMSGSIZE (Message too long)\n") {
		t.Errorf("sendto 65,508 bytes: %v, want EMSGSIZE:\n%s", err, out.String())
	}
	if err := unix.Connect(sfd, raddr); err != nil {
		t.Fatal(err)
	}
	// lo's MTU is 65,536, but IP caps a route's at 65,535, the most an IP
	// packet can be.
	if mtu, err := os.ReadFile("/sys/class/net/lo/mtu"); err != nil || string(mtu) != "65536\n" {
		t.Errorf("lo's MTU: %q, %v; want 65536", mtu, err)
	}
	if mtu, err := unix.GetsockoptInt(sfd, unix.IPPROTO_IP, unix.IP_MTU); err != nil || mtu != 65535 {
		t.Errorf("IP_MTU towards 127.0.0.1: %d, %v; want 65535", mtu, err)
	}
}

// TestDrops: a receiver that does not read loses what does not fit in its
// buffer, and the sender never knows: every sendto succeeds. SO_RXQ_OVFL
// makes each datagram carry the socket's count of drops so far; after the
// queue is drained, one more datagram brings the total, and received plus
// dropped is exactly what was sent.
func TestDrops(t *testing.T) {
	booktest.CheckFDs(t)
	rfd, raddr := udp(t)
	sfd, _ := udp(t)
	if err := unix.SetsockoptInt(rfd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4096); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(rfd, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1); err != nil {
		t.Fatal(err)
	}
	const sent = 200
	for range sent {
		if err := unix.Sendto(sfd, []byte("flood\n"), 0, raddr); err != nil {
			t.Fatalf("sendto: %v; a UDP sender is never told its receiver is full", err)
		}
	}
	received, drops := 0, uint32(0)
	receive := func() error {
		buf, oob := make([]byte, 64), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := unix.Recvmsg(rfd, buf, oob, unix.MSG_DONTWAIT)
		if err != nil {
			return err
		}
		received++
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_RXQ_OVFL {
				drops = binary.NativeEndian.Uint32(m.Data)
			}
		}
		return nil
	}
	for receive() == nil {
	}
	if err := unix.Sendto(sfd, []byte("last\n"), 0, raddr); err != nil {
		t.Fatal(err)
	}
	if err := receive(); err != nil {
		t.Fatal(err)
	}
	if drops == 0 || received+int(drops) != sent+1 {
		t.Errorf("sent %d, received %d, SO_RXQ_OVFL says %d dropped; want some dropped and received+dropped = sent", sent+1, received, drops)
	}
}

// TestConnected: a connected UDP socket takes datagrams from its peer only
// (another sender's are dropped), and its next receive after sending to a
// port nobody is bound to fails with ECONNREFUSED. An unconnected socket
// that does the same hears nothing: its receive just waits, and the next
// datagram that comes is returned as if nothing had happened.
func TestConnected(t *testing.T) {
	booktest.CheckFDs(t)
	cfd, caddr := udp(t)
	peer, paddr := udp(t)
	other, _ := udp(t)
	if err := unix.Connect(cfd, paddr); err != nil {
		t.Fatal(err)
	}
	for _, fd := range []int{other, peer} {
		if err := unix.Sendto(fd, []byte(fmt.Sprint(fd)), 0, caddr); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 64)
	if got, err := unix.Read(cfd, buf); err != nil || string(buf[:got]) != fmt.Sprint(peer) {
		t.Errorf("connected read: %q, %v; want the peer's datagram only", buf[:max(got, 0)], err)
	}
	if _, _, err := unix.Recvfrom(cfd, buf, unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Errorf("a second read: %v, want EAGAIN: the other sender's datagram was dropped", err)
	}

	// A port nobody is bound to: bind one, learn it, close it.
	gone, gaddr := udp(t)
	unix.Close(gone)
	if err := unix.Connect(cfd, gaddr); err != nil {
		t.Fatal(err)
	}
	if _, err := unix.Write(cfd, []byte("anyone?")); err != nil {
		t.Fatalf("write to nobody: %v, want success: the datagram leaves before the refusal comes", err)
	}
	timeout(t, cfd, 5*time.Second)
	if _, err := unix.Read(cfd, buf); err != unix.ECONNREFUSED {
		t.Errorf("connected read after sending to nobody: %v, want ECONNREFUSED", err)
	}

	ufd, _ := udp(t)
	if err := unix.Sendto(ufd, []byte("anyone?"), 0, gaddr); err != nil {
		t.Fatal(err)
	}
	timeout(t, ufd, 300*time.Millisecond)
	if _, _, err := unix.Recvfrom(ufd, buf, 0); err != unix.EAGAIN {
		t.Errorf("unconnected recvfrom after sending to nobody: %v, want EAGAIN after the timeout (no error)", err)
	}
}

// TestUnixDatagrams: SOCK_DGRAM in the Unix domain keeps boundaries like
// UDP, but loses nothing: when the receiver's queue is full, a
// non-blocking send fails with EAGAIN (a blocking one waits) instead of
// the datagram being dropped.
func TestUnixDatagrams(t *testing.T) {
	booktest.CheckFDs(t)
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	sent := 0
	for ; ; sent++ {
		err := unix.Sendto(fds[0], []byte(fmt.Sprintf("datagram %d\n", sent)), unix.MSG_DONTWAIT, nil)
		if err == unix.EAGAIN {
			break
		}
		if err != nil || sent > 100000 {
			t.Fatalf("send %d: %v, want EAGAIN once the queue is full", sent, err)
		}
	}
	buf := make([]byte, 64)
	for i := range sent {
		got, err := unix.Read(fds[1], buf)
		if want := fmt.Sprintf("datagram %d\n", i); err != nil || string(buf[:got]) != want {
			t.Fatalf("read %d: %q, %v; want %q: every datagram, in order, one per read", i, buf[:max(got, 0)], err, want)
		}
	}
	if _, _, err := unix.Recvfrom(fds[1], buf, unix.MSG_DONTWAIT); err != unix.EAGAIN {
		t.Errorf("after %d datagrams: %v, want an empty queue", sent, err)
	}
}

// TestSeqpacket: SOCK_SEQPACKET is a connection (listen, accept, connect,
// end of file when the peer closes) that keeps boundaries: two writes are
// two reads, and a message bigger than the buffer is cut, with MSG_TRUNC.
func TestSeqpacket(t *testing.T) {
	booktest.CheckFDs(t)
	sa := &unix.SockaddrUnix{Name: fmt.Sprintf("@11-seqpacket-%d", os.Getpid())}
	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ln)
	if err := unix.Bind(ln, sa); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		t.Fatal(err)
	}
	c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(c)
	if err := unix.Connect(c, sa); err != nil {
		t.Fatal(err)
	}
	s, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(s)
	for _, m := range []string{"one\n", "two\n", "a longer message\n"} {
		if _, err := unix.Write(c, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 64)
	for _, want := range []string{"one\n", "two\n"} {
		if got, err := unix.Read(s, buf); err != nil || string(buf[:got]) != want {
			t.Errorf("read: %q, %v; want %q, one message per read", buf[:max(got, 0)], err, want)
		}
	}
	got, _, flags, _, err := unix.Recvmsg(s, buf[:8], nil, 0)
	if err != nil || got != 8 || flags&unix.MSG_TRUNC == 0 {
		t.Errorf("recvmsg into 8 bytes: %d, flags %#x, %v; want 8 and MSG_TRUNC", got, flags, err)
	}
	unix.Close(c)
	if got, err := unix.Read(s, buf); got != 0 || err != nil {
		t.Errorf("read after the peer closed: %d, %v; want 0, end of file", got, err)
	}
}

// TestPython: a client no one here wrote, Python's socket module, sends two
// datagrams before reading anything, and gets two echoes, one per recv; an
// empty datagram gets an empty echo; connected, it reads from the server
// the same way. SIGTERM ends the server with status 0, and -q leaves only
// its "bound to" line.
func TestPython(t *testing.T) {
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("needs /usr/bin/python3")
	}
	s := booktest.New(t)
	srv := s.Start("server", "-q")
	const script = `
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
s.sendto(b"one\n", (host, int(port)))
s.sendto(b"two\n", (host, int(port)))
print(s.recvfrom(100)[0], s.recvfrom(100)[0])
s.sendto(b"", (host, int(port)))
print(s.recvfrom(100)[0])
c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
c.settimeout(10)
c.connect((host, int(port)))
c.send(b"connected\n")
print(c.recv(100))
`
	cmd := exec.Command("/usr/bin/python3", "-c", script, srv.Addr())
	cmd.WaitDelay = 15 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil || string(out) != "b'one\\n' b'two\\n'\nb''\nb'connected\\n'\n" {
		t.Errorf("python: %v\n%s", err, out)
	}
	srv.Signal(syscall.SIGTERM)
	if srv.ExitCode() != 0 {
		t.Errorf("after SIGTERM: exit status %d, want 0:\n%s", srv.ExitCode(), srv.Output())
	}
	if want := "bound to " + srv.Addr() + "\n"; srv.Output() != want {
		t.Errorf("with -q the server printed %q, want only %q", srv.Output(), want)
	}
}

// TestRunNoLeak runs the server and the client in this process, and checks
// that each closes its socket: after Ctrl-C (ctx) for the server, after
// its last echo for the client. A bind to a port in use fails with the
// call and the address in the error.
func TestRunNoLeak(t *testing.T) {
	booktest.CheckFDs(t)
	ctx, cancel := context.WithCancel(context.Background())
	r, w := io.Pipe()
	done := make(chan error, 1)
	cfg := config{addr: netip.MustParseAddrPort("127.0.0.1:0"), bufsize: 2048}
	go func() { done <- run(ctx, cfg, w, io.Discard); w.Close() }()
	var addr string
	buf := make([]byte, 4096)
	for out := ""; addr == ""; {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatalf("server: %v\n%s", err, out)
		}
		out += string(buf[:n])
		if m := regexp.MustCompile(`bound to (\S+)\n`).FindStringSubmatch(out); m != nil {
			addr = m[1]
		}
	}
	go io.Copy(io.Discard, r)
	ccfg := config{client: true, msgs: []string{"in process"}, timeout: 10 * time.Second}
	if err := ccfg.addr.UnmarshalText([]byte(addr)); err != nil {
		t.Fatal(err)
	}
	var cout strings.Builder
	if err := run(context.Background(), ccfg, &cout, io.Discard); err != nil || !strings.Contains(cout.String(), `echoed "in process\n"`) {
		t.Errorf("client: %v\n%s", err, cout.String())
	}
	busy := cfg
	busy.addr = ccfg.addr
	if err := run(context.Background(), busy, io.Discard, io.Discard); err == nil || err.Error() != "bind "+addr+": address already in use" {
		t.Errorf("a second server on %s: %v, want bind ADDR: address already in use", addr, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("server after Ctrl-C: %v", err)
	}
}
