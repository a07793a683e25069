//go:build linux

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/socket-to-server/book/tools/booktest"
	"golang.org/x/sys/unix"
)

// Some tests run this test binary again as a child process, as another user.
const childEnv = "BIND_CHAPTER_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(booktest.Run(m))
	case "bind":
		// Bind 127.0.0.1:PORT for each PORT argument; print what happened.
		for _, arg := range os.Args[1:] {
			port, _ := strconv.Atoi(arg)
			fmt.Printf("%d %s\n", port, errnoName(bindOnce(port)))
		}
	}
	os.Exit(0)
}

func bindOnce(port int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Bind(fd, &unix.SockaddrInet4{Addr: loopback4, Port: port})
}

func errnoName(err error) string {
	var errno unix.Errno
	if err == nil {
		return "ok"
	} else if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	return err.Error()
}

var loopback4 = [4]byte{127, 0, 0, 1}

// PIDs change from run to run; the transcripts show them renumbered.
const pidRE = `(?:pid |/proc/|kill )(\d+)`

// TestTranscript is the chapter's first run: the program binds and holds;
// a second copy without SO_REUSEADDR is refused the same address; the bound
// socket is in the descriptor table but in none of the tables ss reads.
func TestTranscript(t *testing.T) {
	s := booktest.New(t)
	s.Renumber(pidRE, 4242)
	srv := s.Start("server")
	srv.WaitFor("closes it and exits\n")

	pid := strconv.Itoa(srv.Pid())
	target, err := os.Readlink("/proc/" + pid + "/fd/3")
	if err != nil || !strings.HasPrefix(target, "socket:[") {
		t.Fatalf("/proc/%s/fd/3 -> %q, %v; want socket:[INODE]", pid, target, err)
	}
	inode := strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")
	if _, ok := procNetTCP(t, "tcp")[inode]; ok {
		t.Errorf("the bound socket (inode %s) is in /proc/net/tcp; the chapter says it is in no table ss reads", inode)
	}
	if ss, err := exec.LookPath("ss"); err == nil {
		out, err := exec.Command(ss, "-tanp").Output()
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(out), "pid="+pid+",") {
			t.Errorf("ss -tanp shows the bound socket; the chapter says it does not:\n%s", out)
		}
	}

	other := s.Run("second terminal", "-addr", srv.Addr(), "-reuseaddr=false")
	if code := other.ExitCode(); code != 1 {
		t.Errorf("second bind: exit status %d, want 1:\n%s", code, other.Output())
	}
	srv.Interrupt()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGINT, want 0", code)
	}
	for _, c := range []struct {
		p    *booktest.Proc
		want string
	}{
		{srv, "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, 0) = 3\nsetsockopt(3, SOL_SOCKET, SO_REUSEADDR, 1) = 0\nbind(3, 127.0.0.1:0) = 0\n"},
		{srv, "getsockname(3) = " + srv.Addr() + "\nbound to " + srv.Addr() + "\n"},
		{srv, "closes it and exits\nclose(3) = 0\n"},
		{other, "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, 0) = 3\nbind(3, " + srv.Addr() + ") = -1 EADDRINUSE (Address already in use)\nclose(3) = 0\n"},
		{other, "bind " + srv.Addr() + ": address already in use\n"},
	} {
		if !strings.Contains(c.p.Output(), c.want) {
			t.Errorf("output lacks %q:\n%s", c.want, c.p.Output())
		}
	}
	s.Check("run")
}

// TestTwice: two sockets that both set SO_REUSEADDR may bind the same
// address, as long as neither listens.
func TestTwice(t *testing.T) {
	s := booktest.New(t)
	s.Renumber(pidRE, 4242)
	first := s.Start("server", "-q")
	second := s.Start("second terminal", "-q", "-addr", first.Addr())
	if second.Addr() != first.Addr() {
		t.Errorf("second copy bound %s, want %s too", second.Addr(), first.Addr())
	}
	// Neither listens, so no connection can arrive.
	if c, err := net.DialTimeout("tcp", first.Addr(), 15*time.Second); !errors.Is(err, unix.ECONNREFUSED) {
		if err == nil {
			c.Close()
		}
		t.Errorf("connect to a bound socket that does not listen: %v, want ECONNREFUSED", err)
	}
	// Each prints how to stop it after "bound to": wait for that, so that
	// the transcript's ^C comes where a reader's would.
	first.WaitFor("closes it and exits")
	second.WaitFor("closes it and exits")
	second.Interrupt()
	first.Interrupt()
	for _, p := range []*booktest.Proc{first, second} {
		if code := p.ExitCode(); code != 0 {
			t.Errorf("exit status %d, want 0:\n%s", code, p.Output())
		}
	}
	s.Check("twice")
}

// TestTimeWait: a Go net server (which sets SO_REUSEADDR) closes a
// connection first, so its side, on the server's port, is left in
// TIME_WAIT; then the server exits. Binding that port without SO_REUSEADDR
// fails with EADDRINUSE; with it, it succeeds.
func TestTimeWait(t *testing.T) {
	port := timeWait(t, true)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	s := booktest.New(t)
	s.Renumber(pidRE, 4242)
	refused := s.Run("terminal", "-addr", addr, "-reuseaddr=false")
	if code := refused.ExitCode(); code != 1 || !strings.Contains(refused.Output(), ") = -1 EADDRINUSE (Address already in use)\n") {
		t.Errorf("without SO_REUSEADDR: exit status %d, want 1 and EADDRINUSE:\n%s", code, refused.Output())
	}
	bound := s.Start("terminal", "-addr", addr)
	bound.Interrupt()
	if code := bound.ExitCode(); code != 0 {
		t.Errorf("with SO_REUSEADDR: exit status %d, want 0:\n%s", code, bound.Output())
	}
	if n := timeWaitCount(t, port); n == 0 {
		t.Errorf("no TIME_WAIT left on port %d after the runs; the test showed nothing", port)
	}
	s.Check("timewait")
}

// TestTimeWaitBothSides: SO_REUSEADDR on the new socket is not enough; the
// socket in TIME_WAIT keeps the setting of the server it came from, and
// both must have it.
func TestTimeWaitBothSides(t *testing.T) {
	booktest.CheckFDs(t)
	port := timeWait(t, false) // an old server without SO_REUSEADDR
	for _, reuse := range []bool{false, true} {
		err := run(booktest.Context(t), config{addr: netip.AddrPortFrom(netip.AddrFrom4(loopback4), uint16(port)), reuseaddr: reuse, quiet: true}, io.Discard)
		if !errors.Is(err, unix.EADDRINUSE) {
			t.Errorf("reuseaddr=%v: %v, want EADDRINUSE", reuse, err)
		}
	}
}

// timeWait makes a connection whose server side closes first and leaves
// TIME_WAIT on the server's port, closes the server, and returns the port.
func timeWait(t *testing.T, reuse bool) int {
	t.Helper()
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(lfd)
	if reuse {
		// What net.Listen does on every listening socket.
		if err := unix.SetsockoptInt(lfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: loopback4}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 1); err != nil {
		t.Fatal(err)
	}
	port := boundPort(t, lfd)
	c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	afd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(afd) // the server's side closes first
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("client read %d, %v; want EOF", n, err)
	}
	c.Close()
	for i := 0; timeWaitCount(t, port) == 0; i++ {
		if i == 1500 {
			t.Fatalf("no TIME_WAIT on port %d", port)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return port
}

// timeWaitCount counts the connections in TIME_WAIT (state 06) whose local
// port is port, in /proc/net/tcp.
func timeWaitCount(t *testing.T, port int) int {
	t.Helper()
	n := 0
	for _, f := range procNetTCP(t, "tcp") {
		if strings.HasSuffix(f[1], fmt.Sprintf(":%04X", port)) && f[3] == "06" {
			n++
		}
	}
	return n
}

// procNetTCP reads /proc/net/TABLE: the fields of each line, by inode.
func procNetTCP(t *testing.T, table string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile("/proc/net/" + table)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string][]string{}
	for i, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if i > 0 && len(f) > 9 {
			// A socket in TIME_WAIT has inode 0; keep each line apart.
			key := f[9]
			if key == "0" {
				key = "tw" + f[0]
			}
			m[key] = f
		}
	}
	return m
}

func boundPort(t *testing.T, fd int) int {
	t.Helper()
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return a.Port
	case *unix.SockaddrInet6:
		return a.Port
	}
	t.Fatalf("getsockname: %T", sa)
	return 0
}

// TestListening: SO_REUSEADDR does not let a socket take a port another
// socket is listening on; the error names the call and the address.
func TestListening(t *testing.T) {
	booktest.CheckFDs(t)
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
		if v, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_REUSEADDR); err != nil || v != 1 {
			t.Errorf("net.Listen socket: SO_REUSEADDR = %d, %v; want 1", v, err)
		}
	})
	addr := netip.MustParseAddrPort(ln.Addr().String())
	var out strings.Builder
	err = run(booktest.Context(t), config{addr: addr, reuseaddr: true}, &out)
	if !errors.Is(err, unix.EADDRINUSE) {
		t.Fatalf("bind %s while a socket listens there: %v, want EADDRINUSE", addr, err)
	}
	if want := "bind " + addr.String() + ": address already in use"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
	want := `(?m)^bind\((\d+), ` + regexp.QuoteMeta(addr.String()) + `\) = -1 EADDRINUSE \(Address already in use\)\nclose\((\d+)\) = 0\n$`
	if m := regexp.MustCompile(want).FindStringSubmatch(out.String()); m == nil || m[1] != m[2] {
		t.Errorf("narration\n%s\ndoes not end with a failed bind and the close of its socket", out.String())
	}
}

// TestEmptyHost: net.Listen("tcp", ":0") binds the wildcard, [::] where
// the machine has IPv6.
func TestEmptyHost(t *testing.T) {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := "0.0.0.0:"
	if hasIPv6() {
		want = "[::]:"
	}
	if got := ln.Addr().String(); !strings.HasPrefix(got, want) {
		t.Errorf(`net.Listen("tcp", ":0") bound %s, want %sPORT`, got, want)
	}
}

// TestReuseRules: two sockets may bind one address only if both set
// SO_REUSEADDR and neither listens; a wildcard bind takes the port for
// every address.
func TestReuseRules(t *testing.T) {
	booktest.CheckFDs(t)
	for _, c := range []struct {
		first, second bool // SO_REUSEADDR
		listen        bool // the first listens
		want          error
	}{
		{false, false, false, unix.EADDRINUSE},
		{true, false, false, unix.EADDRINUSE},
		{false, true, false, unix.EADDRINUSE},
		{true, true, false, nil},
		{true, true, true, unix.EADDRINUSE},
	} {
		a := tcpSocket(t, unix.AF_INET, c.first)
		if err := unix.Bind(a, &unix.SockaddrInet4{Addr: loopback4}); err != nil {
			t.Fatal(err)
		}
		if c.listen {
			if err := unix.Listen(a, 1); err != nil {
				t.Fatal(err)
			}
		}
		b := tcpSocket(t, unix.AF_INET, c.second)
		if err := unix.Bind(b, &unix.SockaddrInet4{Addr: loopback4, Port: boundPort(t, a)}); err != c.want && !(err == nil && c.want == nil) {
			t.Errorf("first reuse=%v listen=%v, second reuse=%v: bind %v, want %v", c.first, c.listen, c.second, err, c.want)
		}
	}

	// Two bound with SO_REUSEADDR: the first may listen, the second not.
	a := tcpSocket(t, unix.AF_INET, true)
	if err := unix.Bind(a, &unix.SockaddrInet4{Addr: loopback4}); err != nil {
		t.Fatal(err)
	}
	b := tcpSocket(t, unix.AF_INET, true)
	if err := unix.Bind(b, &unix.SockaddrInet4{Addr: loopback4, Port: boundPort(t, a)}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(a, 1); err != nil {
		t.Errorf("first listen: %v", err)
	}
	if err := unix.Listen(b, 1); err != unix.EADDRINUSE {
		t.Errorf("second listen on a shared address: %v, want EADDRINUSE", err)
	}

	// SO_REUSEPORT on both: both bind and listen.
	var rp []int
	for i := 0; i < 2; i++ {
		fd := tcpSocket(t, unix.AF_INET, false)
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			t.Fatal(err)
		}
		port := 0
		if i > 0 {
			port = boundPort(t, rp[0])
		}
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: loopback4, Port: port}); err != nil {
			t.Fatalf("SO_REUSEPORT socket %d: bind: %v", i+1, err)
		}
		if err := unix.Listen(fd, 1); err != nil {
			t.Errorf("SO_REUSEPORT socket %d: listen: %v", i+1, err)
		}
		rp = append(rp, fd)
	}

	// [::]:P, with IPV6_V6ONLY 0, takes 0.0.0.0:P as well.
	if hasIPv6() {
		v6 := tcpSocket(t, unix.AF_INET6, false)
		if err := unix.Bind(v6, &unix.SockaddrInet6{}); err != nil {
			t.Fatal(err)
		}
		v4 := tcpSocket(t, unix.AF_INET, false)
		if err := unix.Bind(v4, &unix.SockaddrInet4{Port: boundPort(t, v6)}); err != unix.EADDRINUSE {
			t.Errorf("bind 0.0.0.0:%d after [::]:%d: %v, want EADDRINUSE", boundPort(t, v6), boundPort(t, v6), err)
		}
	}

	// 0.0.0.0:P takes P on 127.0.0.1 and 127.0.0.2 as well.
	w := tcpSocket(t, unix.AF_INET, false)
	if err := unix.Bind(w, &unix.SockaddrInet4{}); err != nil {
		t.Fatal(err)
	}
	for _, ip := range [][4]byte{loopback4, {127, 0, 0, 2}} {
		s := tcpSocket(t, unix.AF_INET, false)
		if err := unix.Bind(s, &unix.SockaddrInet4{Addr: ip, Port: boundPort(t, w)}); err != unix.EADDRINUSE {
			t.Errorf("bind %v:%d after 0.0.0.0:%d: %v, want EADDRINUSE", ip, boundPort(t, w), boundPort(t, w), err)
		}
	}

	// A socket is bound once: a second bind on it is EINVAL.
	if err := unix.Bind(w, &unix.SockaddrInet4{Addr: loopback4}); err != unix.EINVAL {
		t.Errorf("second bind on one socket: %v, want EINVAL", err)
	}
}

// tcpSocket is a TCP socket that the test closes when it ends.
func tcpSocket(t *testing.T, domain int, reuse bool) int {
	t.Helper()
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Skipf("socket %s: %v", domainName(domain), err) // no IPv6 here, say
	}
	t.Cleanup(func() { unix.Close(fd) })
	if reuse {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			t.Fatal(err)
		}
	}
	return fd
}

// localPortRange reads net.ipv4.ip_local_port_range, which IPv6 uses too.
func localPortRange(t *testing.T) (lo, hi int) {
	t.Helper()
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fmt.Sscan(string(data), &lo, &hi); err != nil {
		t.Fatalf("ip_local_port_range %q: %v", data, err)
	}
	return lo, hi
}

// TestPortZero: with port 0 the kernel chooses a free port in
// ip_local_port_range, and getsockname is how the program learns it. On
// Linux, bind prefers odd ports (connect takes the even ones).
func TestPortZero(t *testing.T) {
	booktest.CheckFDs(t)
	lo, hi := localPortRange(t)
	for _, a := range []string{"127.0.0.1:0", "[::1]:0"} {
		addr := netip.MustParseAddrPort(a)
		if addr.Addr().Is6() && !hasIPv6() {
			continue
		}
		ctx, cancel := context.WithCancel(booktest.Context(t))
		cancel()
		var out strings.Builder
		if err := run(ctx, config{addr: addr, reuseaddr: true}, &out); err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^getsockname\(\d+\) = (\S+)\nbound to (\S+)\n`).FindStringSubmatch(out.String())
		if m == nil || m[1] != m[2] {
			t.Fatalf("%s: no matching getsockname and bound lines:\n%s", a, out.String())
		}
		got := netip.MustParseAddrPort(m[2])
		if got.Addr() != addr.Addr() {
			t.Errorf("%s: bound to %s, want the same IP", a, got)
		}
		if p := int(got.Port()); p < lo || p > hi {
			t.Errorf("%s: kernel chose port %d, outside ip_local_port_range %d-%d", a, p, lo, hi)
		}
	}
	for i := 0; i < 20; i++ {
		fd := tcpSocket(t, unix.AF_INET, false)
		if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: loopback4}); err != nil {
			t.Fatal(err)
		}
		if p := boundPort(t, fd); p%2 != 1 {
			t.Errorf("bind to port 0 got port %d, even; the chapter says bind prefers odd ports", p)
		}
	}
}

func hasIPv6() bool {
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	return unix.Bind(fd, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()}) == nil
}

// TestClientAutobind: a client need not bind. Its socket has no address
// until connect, which binds it to the local IP the route to the server
// uses and to an ephemeral port (on Linux, an even one).
func TestClientAutobind(t *testing.T) {
	booktest.CheckFDs(t)
	lo, hi := localPortRange(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	server := ln.Addr().(*net.TCPAddr)
	for i := 0; i < 10; i++ {
		fd := tcpSocket(t, unix.AF_INET, false)
		before, err := unix.Getsockname(fd)
		if err != nil || addrString(before) != "0.0.0.0:0" {
			t.Fatalf("before connect: getsockname = %s, %v; want 0.0.0.0:0", addrString(before), err)
		}
		if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: loopback4, Port: server.Port}); err != nil {
			t.Fatal(err)
		}
		after, err := unix.Getsockname(fd)
		if err != nil {
			t.Fatal(err)
		}
		got := netip.MustParseAddrPort(addrString(after))
		if p := int(got.Port()); got.Addr() != netip.AddrFrom4(loopback4) || p < lo || p > hi || p%2 != 0 {
			t.Errorf("after connect: getsockname = %s; want 127.0.0.1 and an even port in %d-%d", got, lo, hi)
		}
	}
}

// TestWildcard: a socket bound to 127.0.0.1 is reachable only at 127.0.0.1;
// one bound to 0.0.0.0 at every local IPv4 address, here two of the 127/8
// loopback addresses; [::] takes IPv4 connections too (IPV6_V6ONLY is 0 by
// default on Linux), and [::1] does not (binding a specific IPv6 address
// sets IPV6_V6ONLY).
func TestWildcard(t *testing.T) {
	booktest.CheckFDs(t)
	for _, c := range []struct {
		bind  string
		dial  string
		reach bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
		{"127.0.0.1", "127.0.0.2", false},
		{"0.0.0.0", "127.0.0.1", true},
		{"0.0.0.0", "127.0.0.2", true},
		{"::", "::1", true},
		{"::", "127.0.0.1", true},
		{"::1", "::1", true},
		{"::1", "127.0.0.1", false},
	} {
		ip := netip.MustParseAddr(c.bind)
		if ip.Is6() && !hasIPv6() {
			continue
		}
		sa, _ := sockaddr(netip.AddrPortFrom(ip, 0))
		domain := unix.AF_INET
		if ip.Is6() {
			domain = unix.AF_INET6
		}
		lfd := tcpSocket(t, domain, true)
		if err := unix.Bind(lfd, sa); err != nil {
			t.Fatal(err)
		}
		if err := unix.Listen(lfd, 4); err != nil {
			t.Fatal(err)
		}
		to := netip.AddrPortFrom(netip.MustParseAddr(c.dial), uint16(boundPort(t, lfd)))
		conn, err := net.DialTimeout("tcp", to.String(), 15*time.Second)
		if err == nil {
			conn.Close()
		}
		if reached := err == nil; reached != c.reach || (!reached && !errors.Is(err, unix.ECONNREFUSED)) {
			t.Errorf("bound to %s, connect to %s: %v; want reachable=%v (else ECONNREFUSED)", c.bind, to, err, c.reach)
		}
		if ip.Is6() {
			want := 1 // binding a specific IPv6 address sets it
			if ip.IsUnspecified() {
				want = 0 // Linux's default
			}
			if v, err := unix.GetsockoptInt(lfd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY); err != nil || v != want {
				t.Errorf("bound to %s: IPV6_V6ONLY = %d, %v; want %d", c.bind, v, err, want)
			}
		}
		if ip.Is6() && c.reach && to.Addr().Is4() {
			// The IPv4 client arrives as an IPv4-mapped IPv6 address.
			nfd, peer, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
			if err != nil {
				t.Fatal(err)
			}
			unix.Close(nfd)
			if got := addrString(peer); !strings.HasPrefix(got, "[::ffff:127.0.0.1]:") {
				t.Errorf("IPv4 client of [::] seen as %s, want [::ffff:127.0.0.1]:PORT", got)
			}
		}
	}
}

// TestPrivileged: below net.ipv4.ip_unprivileged_port_start (1024 unless
// changed) an unprivileged user's bind fails with EACCES, before the kernel
// even looks at whether the port is free; root may bind there. The test runs
// the unprivileged side as nobody when it runs as root, and as itself
// otherwise.
func TestPrivileged(t *testing.T) {
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Fatal(err)
	}
	start, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil {
		t.Fatal(err)
	}
	if start == 0 {
		t.Skip("ip_unprivileged_port_start is 0 here (Docker sets it so in containers): every port is open to every user")
	}
	port := start - 1
	addr := fmt.Sprintf("127.0.0.1:%d", port)

	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		cred = &syscall.Credential{Uid: 65534, Gid: 65534} // nobody
	} else if hasCapNetBindService(t) {
		t.Skip("this user has CAP_NET_BIND_SERVICE; ports below 1024 are open to it")
	}
	// The programs must be where nobody may run them.
	dir, err := os.MkdirTemp("", "03-bind-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	prog := filepath.Join(dir, "03-bind")
	copyFile(t, booktest.Build(t), prog)
	self := filepath.Join(dir, "test")
	copyFile(t, os.Args[0], self)

	cmd := exec.Command(prog, "-addr", addr)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Errorf("unprivileged bind %s: exit status %d, want 1", addr, code)
	}
	if want := fmt.Sprintf("bind(3, %s) = -1 EACCES (Permission denied)\nclose(3) = 0\n", addr); !strings.HasSuffix(stdout.String(), want) {
		t.Errorf("unprivileged: stdout\n%s\nwant it to end\n%s", stdout.String(), want)
	}
	if want := "bind " + addr + ": permission denied\n"; stderr.String() != want {
		t.Errorf("unprivileged: stderr %q, want %q", stderr.String(), want)
	}

	// The same user may bind the first unprivileged port, or find it in
	// use: either way not EACCES. And EACCES comes first even for a port
	// that is in use.
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	child := exec.Command(self, strconv.Itoa(start), strconv.Itoa(busyPort))
	child.Env = append(os.Environ(), childEnv+"=bind")
	child.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	out, err := child.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 2 || lines[0] == fmt.Sprintf("%d EACCES", start) || lines[1] != fmt.Sprintf("%d EADDRINUSE", busyPort) {
		t.Errorf("unprivileged binds: %q; want port %d not EACCES and port %d EADDRINUSE", lines, start, busyPort)
	}

	if cred == nil {
		return
	}
	// Root may bind below start: find a free port there.
	free := 0
	for p := port; p > 0 && free == 0; p-- {
		switch err := bindOnce(p); err {
		case nil:
			free = p
		case unix.EADDRINUSE:
		default:
			t.Fatalf("root: bind 127.0.0.1:%d: %v, want success", p, err)
		}
	}
	if free == 0 {
		t.Fatalf("root: every port below %d is in use on 127.0.0.1", start)
	}
	// So may nobody, given only the capability CAP_NET_BIND_SERVICE.
	child = exec.Command(self, strconv.Itoa(free))
	child.Env = append(os.Environ(), childEnv+"=bind")
	child.SysProcAttr = &syscall.SysProcAttr{Credential: cred, AmbientCaps: []uintptr{unix.CAP_NET_BIND_SERVICE}}
	out, err = child.Output()
	if got, want := string(out), fmt.Sprintf("%d ok\n", free); err != nil || got != want {
		t.Errorf("nobody with CAP_NET_BIND_SERVICE: %q, %v; want %q", got, err, want)
	}
}

// hasCapNetBindService reads bit 10 of CapEff in /proc/self/status.
func hasCapNetBindService(t *testing.T) bool {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^CapEff:\s*([0-9a-f]+)$`).FindSubmatch(data)
	if m == nil {
		return false
	}
	caps, _ := strconv.ParseUint(string(m[1]), 16, 64)
	return caps&(1<<unix.CAP_NET_BIND_SERVICE) != 0
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestByteOrder: the kernel keeps the port in network byte order (big-endian)
// in sockaddr_in (16 bytes) and sockaddr_in6 (28 bytes); x/sys converts, so
// Go code sees a plain int.
func TestByteOrder(t *testing.T) {
	booktest.CheckFDs(t)
	if unix.SizeofSockaddrInet4 != 16 || unix.SizeofSockaddrInet6 != 28 {
		t.Errorf("sizes %d and %d, want 16 and 28", unix.SizeofSockaddrInet4, unix.SizeofSockaddrInet6)
	}
	fd := tcpSocket(t, unix.AF_INET, false)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: loopback4}); err != nil {
		t.Fatal(err)
	}
	var raw unix.RawSockaddrInet4
	size := uint32(unsafe.Sizeof(raw))
	if _, _, errno := unix.Syscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&raw)), uintptr(unsafe.Pointer(&size))); errno != 0 {
		t.Fatal(errno)
	}
	b := (*[2]byte)(unsafe.Pointer(&raw.Port))
	if got, want := int(b[0])<<8|int(b[1]), boundPort(t, fd); got != want || size != 16 {
		t.Errorf("raw sin_port bytes %v read big-endian = %d (size %d); x/sys says port %d", b, got, size, want)
	}
	if raw.Addr != loopback4 || raw.Family != unix.AF_INET {
		t.Errorf("raw sin_addr %v family %d, want 127.0.0.1 and AF_INET", raw.Addr, raw.Family)
	}
}

// TestQuiet: -q prints only what the program has to say, no system calls.
func TestQuiet(t *testing.T) {
	booktest.CheckFDs(t)
	ctx, cancel := context.WithCancel(booktest.Context(t))
	cancel()
	var out strings.Builder
	if err := run(ctx, config{addr: netip.MustParseAddrPort("127.0.0.1:0"), quiet: true, reuseaddr: true}, &out); err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^\w+\(.*\) = `).FindString(out.String()); m != "" {
		t.Errorf("-q printed a system call: %q", m)
	}
	if !strings.HasPrefix(out.String(), "bound to 127.0.0.1:") {
		t.Errorf("-q output does not start with the bound address:\n%s", out.String())
	}
}

// TestSIGTERM: kill PID ends the program as Ctrl-C does: it closes its
// socket and exits with status 0.
func TestSIGTERM(t *testing.T) {
	p := booktest.New(t).Start("server")
	p.WaitFor("closes it and exits\n")
	held := len(p.Output())
	p.Signal(syscall.SIGTERM)
	if code := p.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	if got := p.Output()[held:]; got != "close(3) = 0\n" {
		t.Errorf("after SIGTERM the program printed %q, want %q", got, "close(3) = 0\n")
	}
}

// TestNotLocal: an address this machine does not have cannot be bound:
// EADDRNOTAVAIL. 192.0.2.1 is reserved for documentation (RFC 5737); bind
// sends nothing anywhere.
func TestNotLocal(t *testing.T) {
	booktest.CheckFDs(t)
	var out strings.Builder
	err := run(booktest.Context(t), config{addr: netip.MustParseAddrPort("192.0.2.1:8080")}, &out)
	if !errors.Is(err, unix.EADDRNOTAVAIL) || err.Error() != "bind 192.0.2.1:8080: cannot assign requested address" {
		t.Errorf("bind 192.0.2.1:8080: %v, want EADDRNOTAVAIL", err)
	}
	if hasIPv6() {
		fd := tcpSocket(t, unix.AF_INET6, false)
		ll := netip.MustParseAddr("fe80::1").As16()
		if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: ll}); err != unix.EINVAL {
			t.Errorf("bind [fe80::1]:0 without a zone: %v, want EINVAL", err)
		}
	}
	if _, err := sockaddr(netip.MustParseAddrPort("[fe80::1%lo]:8080")); err == nil {
		t.Errorf("sockaddr accepted a zone; the chapter says the program refuses one")
	}
	if want := `(?m)^bind\(\d+, 192\.0\.2\.1:8080\) = -1 EADDRNOTAVAIL \(Cannot assign requested address\)$`; !regexp.MustCompile(want).MatchString(out.String()) {
		t.Errorf("narration lacks %s:\n%s", want, out.String())
	}
}

// TestBadAddr: -addr is parsed as a flag; a bad value is reported the way
// the flag package reports any bad flag, with exit status 2.
func TestBadAddr(t *testing.T) {
	cmd := exec.Command(booktest.Build(t), "-addr", "localhost:8080")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 || err == nil {
		t.Errorf("exit status %d, want 2:\n%s", code, out)
	}
	if want := `invalid value "localhost:8080" for flag -addr`; !strings.Contains(string(out), want) {
		t.Errorf("output lacks %q:\n%s", want, out)
	}
}
