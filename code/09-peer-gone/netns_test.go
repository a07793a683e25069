//go:build linux

package main

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
	"golang.org/x/sys/unix"
)

// A vanished peer needs a network that can lose packets, and loopback never
// does. So these tests build a small network of their own: two network
// namespaces, a and b, joined by a veth pair (a virtual cable), with
// addresses from 198.18.0.0/15, the block set aside for network tests (RFC
// 2544), that exist only inside the two namespaces. Removing a's address
// makes a vanish: b's packets for it are dropped without a word.
type testNet struct {
	t            *testing.T
	a, b         string // namespace names
	linkA, linkB string
}

var addrB = [4]byte{198, 18, 9, 2}

// newTestNet builds the network, and removes it when the test ends. It
// needs root and ip(8) from iproute2; without them the test is skipped.
func newTestNet(t *testing.T) *testNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and a veth pair with ip(8)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8), from iproute2")
	}
	id := strconv.Itoa(os.Getpid())
	n := &testNet{t: t, a: "peergone-a-" + id, b: "peergone-b-" + id, linkA: "pga" + id, linkB: "pgb" + id}
	n.ip("netns", "add", n.a)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.a).Run() })
	n.ip("netns", "add", n.b)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.b).Run() })
	n.ip("link", "add", n.linkA, "netns", n.a, "type", "veth", "peer", "name", n.linkB, "netns", n.b)
	n.ip("-n", n.a, "addr", "add", "198.18.9.1/30", "dev", n.linkA)
	n.ip("-n", n.b, "addr", "add", "198.18.9.2/30", "dev", n.linkB)
	n.ip("-n", n.a, "link", "set", n.linkA, "up")
	n.ip("-n", n.b, "link", "set", n.linkB, "up")
	n.ip("-n", n.b, "link", "set", "lo", "up") // b talks to itself too
	return n
}

func (n *testNet) ip(args ...string) {
	n.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		n.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// vanishA removes a's address: from then on nothing in a answers.
func (n *testNet) vanishA() {
	n.t.Helper()
	n.ip("-n", n.a, "addr", "flush", "dev", n.linkA)
}

// in runs f with this goroutine's thread moved into namespace ns. Sockets
// that f creates, and processes that it starts, belong to ns for good.
// While the thread is locked the runtime starts no other thread from it.
func (n *testNet) in(ns string, f func()) {
	n.t.Helper()
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		n.t.Fatal(err)
	}
	defer unix.Close(orig)
	target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		n.t.Fatal(err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		n.t.Fatal(err)
	}
	defer func() {
		// A thread that cannot go back stays locked, and the runtime ends
		// it with its goroutine.
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	f()
}

// listen makes a listening socket on 198.18.9.2 in b, on a free port.
func (n *testNet) listen() int {
	t := n.t
	t.Helper()
	var lfd int
	n.in(n.b, func() { lfd = mustSocket(t) })
	t.Cleanup(func() { unix.Close(lfd) })
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: addrB}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 4); err != nil {
		t.Fatal(err)
	}
	return lfd
}

// conn connects a socket in a to lfd and returns b's end, accepted.
func (n *testNet) conn(lfd int) int {
	t := n.t
	t.Helper()
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		t.Fatal(err)
	}
	n.in(n.a, func() { connectTo(t, sa) })
	b, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(b) })
	return b
}

func setInt(t *testing.T, fd, level, opt, v int) {
	t.Helper()
	if err := unix.SetsockoptInt(fd, level, opt, v); err != nil {
		t.Fatal(err)
	}
}

func keepaliveOn(t *testing.T, fd, idle, intvl, cnt int) {
	t.Helper()
	setInt(t, fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	setInt(t, fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, idle)
	setInt(t, fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, intvl)
	setInt(t, fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, cnt)
}

// readTimeout bounds a test's blocking read (SO_RCVTIMEO), so that a
// keepalive that never fires fails the test instead of hanging it.
func readTimeout(t *testing.T, fd int) {
	t.Helper()
	tv := unix.Timeval{Sec: 60}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
}

func tcpInfo(t *testing.T, fd int) *unix.TCPInfo {
	t.Helper()
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// TestKeepaliveDefaults: keepalive is off on a new socket; its defaults are
// 7200 s, 75 s and 9 probes, and a connection retransmits up to 15 times.
// In a fresh namespace (as root) the values are the kernel's own; otherwise
// the socket's values are compared with this machine's sysctls.
func TestKeepaliveDefaults(t *testing.T) {
	booktest.CheckFDs(t)
	want := []int{0, 7200, 75, 9}
	retries2 := 15
	var fd int
	if os.Geteuid() == 0 {
		n := newTestNet(t)
		n.in(n.b, func() {
			fd = mustSocket(t)
			// /proc/sys/net is the namespace of the thread that opens it.
			if v := sysctl(t, "tcp_retries2"); v != retries2 {
				t.Errorf("tcp_retries2 = %d, want %d", v, retries2)
			}
		})
	} else {
		t.Log("not root: comparing with this machine's sysctls, not the kernel's defaults")
		fd = mustSocket(t)
		want = []int{0, sysctl(t, "tcp_keepalive_time"), sysctl(t, "tcp_keepalive_intvl"), sysctl(t, "tcp_keepalive_probes")}
	}
	defer unix.Close(fd)
	checkKeepalive(t, fd, want...)
	if v, err := unix.GetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT); v != 0 || err != nil {
		t.Errorf("TCP_USER_TIMEOUT = %d, %v; want 0 (off)", v, err)
	}
}

func sysctl(t *testing.T, name string) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/" + name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestKeepaliveVanishedPeer: three connections to a peer that vanishes. The
// one with keepalive (idle 1 s, interval 1 s, 3 probes) sends probes and
// then fails its read with ETIMEDOUT. At that moment the one without
// keepalive has noticed nothing, and the one with keepalive but with
// unacknowledged data has sent no probe: it is retransmitting instead.
func TestKeepaliveVanishedPeer(t *testing.T) {
	booktest.CheckFDs(t)
	n := newTestNet(t)
	lfd := n.listen()
	idle, without, busy := n.conn(lfd), n.conn(lfd), n.conn(lfd)
	keepaliveOn(t, idle, 1, 1, 3)
	keepaliveOn(t, busy, 1, 1, 3)
	n.vanishA()
	if nw, err := unix.Write(busy, []byte("hello\n")); nw != 6 || err != nil {
		t.Fatalf("write = %d, %v; want 6", nw, err)
	}
	// Watch the probes go out, by the kernel's count of unanswered ones.
	for deadline := time.Now().Add(30 * time.Second); tcpInfo(t, idle).Probes == 0; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no keepalive probe in 30 s")
		}
	}
	readTimeout(t, idle)
	if nr, err := unix.Read(idle, make([]byte, 16)); err != unix.ETIMEDOUT {
		t.Fatalf("read with keepalive = %d, %v; want ETIMEDOUT", nr, err)
	}
	pfd := []unix.PollFd{{Fd: int32(without), Events: unix.POLLIN}}
	if nr, err := unix.Poll(pfd, 0); nr != 0 || err != nil {
		t.Errorf("without keepalive: poll = %d (revents %#x), %v; want nothing to report", nr, pfd[0].Revents, err)
	}
	if info := tcpInfo(t, busy); info.State != tcpEstablished || info.Unacked == 0 || info.Probes != 0 {
		t.Errorf("busy: state %d, unacked %d, probes %d; want ESTABLISHED (%d), unacknowledged data, no probe",
			info.State, info.Unacked, info.Probes, tcpEstablished)
	}
	if _, err := unix.Write(idle, []byte("x")); err != unix.EPIPE {
		t.Errorf("write after ETIMEDOUT = %v, want EPIPE", err)
	}
}

// TestUserTimeout: with TCP_USER_TIMEOUT, data that a vanished peer never
// acknowledges ends the connection with ETIMEDOUT; without it, the same
// data is still unacknowledged on an ESTABLISHED connection at that moment.
func TestUserTimeout(t *testing.T) {
	booktest.CheckFDs(t)
	n := newTestNet(t)
	lfd := n.listen()
	withUT, without := n.conn(lfd), n.conn(lfd)
	setInt(t, withUT, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, 1000)
	n.vanishA()
	for _, fd := range []int{withUT, without} {
		if nw, err := unix.Write(fd, []byte("hello\n")); nw != 6 || err != nil {
			t.Fatalf("write = %d, %v; want 6: the data is only queued", nw, err)
		}
	}
	readTimeout(t, withUT)
	if nr, err := unix.Read(withUT, make([]byte, 16)); err != unix.ETIMEDOUT {
		t.Fatalf("read with TCP_USER_TIMEOUT = %d, %v; want ETIMEDOUT", nr, err)
	}
	if info := tcpInfo(t, without); info.State != tcpEstablished || info.Unacked == 0 {
		t.Errorf("without: state %d, unacked %d; want ESTABLISHED (%d) with unacknowledged data",
			info.State, info.Unacked, tcpEstablished)
	}
}

// TestTranscriptKeepalive records the keepalive transcript: the server, in
// b with -keepalive 1s, serves a client from a that then vanishes, while a
// second client, in b, waits in the accept queue. The server's read fails
// with ETIMEDOUT, and it goes on to serve the second client.
func TestTranscriptKeepalive(t *testing.T) {
	n := newTestNet(t)
	s := booktest.New(t)
	s.Renumber(`198\.18\.9\.\d:(\d+)`, 40001)
	var srv *booktest.Proc
	// b is private to this test: a fixed port cannot clash with anything.
	n.in(n.b, func() { srv = s.Start("server", "-addr", "198.18.9.2:8080", "-keepalive", "1s") })
	server := &unix.SockaddrInet4{Addr: addrB, Port: 8080}
	var vanishing int
	n.in(n.a, func() { vanishing = connectTo(t, server) })
	roundTrip(t, vanishing, "hello\n")
	var b *booktest.Proc
	n.in(n.b, func() { b = s.Spawn("client B", "-client", "-addr", "198.18.9.2:8080") })
	b.WaitFor("sendmsg(")
	n.vanishA()
	srv.WaitFor("ETIMEDOUT")
	b.Wait()
	// Client B is gone; the server ends its connection after it, as it
	// did the first one's: wait for that before Ctrl-C.
	srv.WaitForN("close(4) = 0", 2)
	srv.Interrupt()
	if !strings.Contains(srv.Output(), `read(4, "", 4096) = -1 ETIMEDOUT (Connection timed out)`+"\n") || b.ExitCode() != 0 {
		t.Errorf("want the server's read to time out and client B served; server:\n%s\nclient B (exit %d):\n%s", srv.Output(), b.ExitCode(), b.Output())
	}
	s.Check("keepalive")
}

// TestShutdownWakesConnect: shutdown with SHUT_RD, as the program's Ctrl-C
// does, wakes a connect that is waiting for an answer that will not come.
func TestShutdownWakesConnect(t *testing.T) {
	booktest.CheckFDs(t)
	n := newTestNet(t)
	n.vanishA()
	var fd int
	n.in(n.b, func() { fd = mustSocket(t) })
	defer unix.Close(fd)
	result := make(chan error, 1)
	go func() {
		result <- unix.Connect(fd, &unix.SockaddrInet4{Addr: [4]byte{198, 18, 9, 1}, Port: 8080})
	}()
	// A shutdown before connect has begun does not stop it: repeat until
	// connect returns.
	for deadline := time.Now().Add(30 * time.Second); ; {
		if err := unix.Shutdown(fd, unix.SHUT_RD); err != nil && err != unix.ENOTCONN {
			t.Fatal(err)
		}
		select {
		case err := <-result:
			if err == nil {
				t.Error("connect succeeded; want it woken with an error")
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("connect still waiting after 30 s of shutdowns")
		}
	}
}
