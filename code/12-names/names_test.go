//go:build linux

package main

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/socket-to-server/book/tools/booktest"
)

// python runs a Python script with the system's python3, whose socket
// module calls the C library's getaddrinfo: a resolver no one here wrote.
func python(t *testing.T, script string, args ...string) string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("needs /usr/bin/python3")
	}
	out, err := exec.Command("/usr/bin/python3", append([]string{"-c", script}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("python3: %v\n%s", err, out)
	}
	return string(out)
}

// runLookup runs the program with -lookup and the environment env, and
// returns its stdout and stderr.
func runLookup(t *testing.T, bin, addr string, env ...string) (stdout, stderr string) {
	t.Helper()
	cmd := exec.Command(bin, "-lookup", "-addr", addr)
	cmd.Env = booktest.ProgramEnv(env...)
	var o, e strings.Builder
	cmd.Stdout, cmd.Stderr = &o, &e
	if err := cmd.Run(); err != nil {
		t.Fatalf("-lookup -addr %s: %v\n%s%s", addr, err, o.String(), e.String())
	}
	return o.String(), e.String()
}

// TestResolvers: Go's own resolver and the C library's (GODEBUG=netdns=go
// and cgo) give the same addresses for localhost from the test's hosts
// file, in the same order, ::1 first, although the file lists 127.0.0.1
// first: both sort by RFC 6724. Go's gives an IPv4 address in its IPv6
// form. Python's getaddrinfo and getent agree.
func TestResolvers(t *testing.T) {
	needNS(t)
	bin := booktest.Build(t)
	const want = "AF_INET6 [::1]:8080\nAF_INET 127.0.0.1:8080\n"
	goOut, goDebug := runLookup(t, bin, "localhost:http-alt", "GODEBUG=netdns=go+2")
	cgoOut, cgoDebug := runLookup(t, bin, "localhost:http-alt", "GODEBUG=netdns=cgo+2")
	for _, c := range []struct{ name, out, debug, raw, order string }{
		{"go", goOut, goDebug, "[::1 ::ffff:127.0.0.1]", "files,dns"},
		{"cgo", cgoOut, cgoDebug, "[::1 127.0.0.1]", "cgo"},
	} {
		if !strings.HasSuffix(c.out, want) || !strings.Contains(c.out, `LookupNetIP(ip, "localhost") = `+c.raw) {
			t.Errorf("netdns=%s: want LookupNetIP = %s and then\n%s\ngot:\n%s", c.name, c.raw, want, c.out)
		}
		if !strings.Contains(c.debug, "hostLookupOrder(localhost) = "+c.order) {
			t.Errorf("netdns=%s+2: want hostLookupOrder(localhost) = %s on stderr:\n%s", c.name, c.order, c.debug)
		}
	}
	py := python(t, `import socket
for f, _, _, _, a in socket.getaddrinfo("localhost", "http-alt", type=socket.SOCK_STREAM):
    print(f.name, a[0], a[1])
print(socket.gethostbyname("localhost"))`)
	if py != "AF_INET6 ::1 8080\nAF_INET 127.0.0.1 8080\n127.0.0.1\n" {
		t.Errorf("Python's getaddrinfo and gethostbyname:\n%s", py)
	}
	getent, err := exec.Command("getent", "ahosts", "localhost").CombinedOutput()
	if got := lines(string(getent), `\S+ +STREAM.*`); err != nil || len(got) != 2 ||
		!strings.HasPrefix(got[0], "::1 ") || !strings.HasPrefix(got[1], "127.0.0.1 ") {
		t.Errorf("getent ahosts localhost: want ::1, then 127.0.0.1: %v\n%s", err, getent)
	}
}

// TestHostsOrder: the order of the lines in /etc/hosts does not decide
// the order of the answer, and a hosts file without a ::1 line (as on
// machines whose localhost is IPv4 only) gives one address. Each case
// mounts a hosts file of its own over /etc/hosts, in a mount namespace of
// its own.
func TestHostsOrder(t *testing.T) {
	needNS(t)
	bin := booktest.Build(t)
	for hosts, want := range map[string]string{
		"127.0.0.1 localhost\n::1 localhost\n": "AF_INET6 [::1]:8080\nAF_INET 127.0.0.1:8080\n",
		"::1 localhost\n127.0.0.1 localhost\n": "AF_INET6 [::1]:8080\nAF_INET 127.0.0.1:8080\n",
		"127.0.0.1 localhost\n":                "AF_INET 127.0.0.1:8080\n",
	} {
		file := t.TempDir() + "/hosts"
		if err := os.WriteFile(file, []byte(hosts), 0o644); err != nil {
			t.Fatal(err)
		}
		out, err := booktest.Shell(t, fmt.Sprintf("mount --bind %s /etc/hosts && %s -q -lookup -addr localhost:8080", file, bin))
		if err != nil || out != want {
			t.Errorf("hosts file %q: %v\n%s\nwant:\n%s", hosts, err, out, want)
		}
	}
}

// TestPorts: the service names come from /etc/services (Python's
// getservbyname agrees); a name it lacks is an error; the kernel picks a
// client's port from ip_local_port_range, and ports below
// ip_unprivileged_port_start need privilege.
func TestPorts(t *testing.T) {
	needNS(t)
	var r net.Resolver
	for name, want := range map[string]int{"http": 80, "www": 80, "http-alt": 8080, "8080": 8080} {
		if got, err := r.LookupPort(context.Background(), "tcp", name); err != nil || got != want {
			t.Errorf("LookupPort(tcp, %q) = %d, %v; want %d", name, got, err, want)
		}
	}
	if _, err := r.LookupPort(context.Background(), "tcp", "no-such-service"); err == nil {
		t.Error("LookupPort of an unknown service: no error")
	}
	if py := python(t, `import socket; print(socket.getservbyname("http-alt", "tcp"))`); py != "8080\n" {
		t.Errorf("Python's getservbyname(http-alt): %q", py)
	}
	var lo, hi int
	data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if _, serr := fmt.Sscan(string(data), &lo, &hi); err != nil || serr != nil || lo >= hi {
		t.Fatalf("ip_local_port_range: %q %v %v", data, err, serr)
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if p := c.LocalAddr().(*net.TCPAddr).Port; p < lo || p > hi {
		t.Errorf("the client's port %d is outside ip_local_port_range %d-%d", p, lo, hi)
	}
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err != nil || string(data) != "1024\n" {
		t.Errorf("ip_unprivileged_port_start: %q %v, want 1024", data, err)
	}
}

// TestByteOrder reads back a real sockaddr_in with a raw getsockname: the
// port 8080 is stored as the bytes 1f 90, most significant first (htons),
// so a little-endian machine reading the field as a number sees 0x901f.
// netip does inet_pton's and inet_ntop's work, and agrees with Python's.
func TestByteOrder(t *testing.T) {
	needNS(t) // port 8080 must be free
	booktest.CheckFDs(t)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Port: 8080, Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	var raw unix.RawSockaddrInet4
	size := uint32(unsafe.Sizeof(raw))
	if _, _, e := unix.Syscall(unix.SYS_GETSOCKNAME, uintptr(fd), uintptr(unsafe.Pointer(&raw)), uintptr(unsafe.Pointer(&size))); e != 0 {
		t.Fatal(e)
	}
	bytes := unsafe.Slice((*byte)(unsafe.Pointer(&raw)), size)
	if got, want := spaced(bytes), "02 00 1f 90 7f 00 00 01 00 00 00 00 00 00 00 00"; got != want {
		t.Errorf("sockaddr_in of 127.0.0.1:8080: %s, want %s", got, want)
	}
	htons := binary.BigEndian.AppendUint16(nil, 8080)
	if spaced(htons) != "1f 90" || binary.NativeEndian.Uint16(htons) != raw.Port {
		t.Errorf("htons(8080) = % x; sin_port read as a number: %#x", htons, raw.Port)
	}
	if binary.NativeEndian.Uint16([]byte{1, 0}) == 1 && raw.Port != 0x901f { // little-endian
		t.Errorf("sin_port read as a number on a little-endian machine: %#x, want 0x901f", raw.Port)
	}
	ip := netip.MustParseAddr("127.0.0.1")
	if ip.As4() != raw.Addr || netip.AddrFrom4(raw.Addr).String() != "127.0.0.1" {
		t.Errorf("inet_pton: %v, sin_addr: %v", ip.As4(), raw.Addr)
	}
	mapped := netip.MustParseAddr("::ffff:127.0.0.1")
	a16 := mapped.As16()
	py := python(t, `import socket; print(socket.inet_pton(socket.AF_INET6, "::ffff:127.0.0.1").hex())`)
	if !mapped.Is4In6() || mapped.Unmap() != ip || hex.EncodeToString(a16[:])+"\n" != py {
		t.Errorf("::ffff:127.0.0.1: As16 %x, Python's inet_pton %s, Unmap %v", a16, py, mapped.Unmap())
	}
}

func spaced(b []byte) string { return fmt.Sprintf("% x", b) }

// listen6 makes an AF_INET6 listening socket on [::]:port with
// IPV6_V6ONLY set to v6only, and returns it and its port.
func listen6(t *testing.T, port, v6only int) (int, int) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only); err != nil {
		t.Fatal(err)
	}
	if err := unix.Bind(fd, &unix.SockaddrInet6{Port: port}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 8); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return fd, sa.(*unix.SockaddrInet6).Port
}

// bind4 binds a new AF_INET socket to 0.0.0.0:port and closes it.
func bind4(port int) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Bind(fd, &unix.SockaddrInet4{Port: port})
}

// TestDualStack: an AF_INET6 socket on [::] with IPV6_V6ONLY 0 takes an
// IPv4 client, whose address it sees as ::ffff:127.0.0.1, and holds the
// port for IPv4 too (0.0.0.0 then fails with EADDRINUSE). With 1 the IPv4
// client is refused, and 0.0.0.0 is free. The default comes from
// /proc/sys/net/ipv6/bindv6only. (The wildcard is bound in the test's own
// network namespace, where loopback is the only link.)
func TestDualStack(t *testing.T) {
	needNS(t)
	booktest.CheckFDs(t)
	if data, err := os.ReadFile("/proc/sys/net/ipv6/bindv6only"); err != nil || string(data) != "0\n" {
		t.Errorf("bindv6only: %q %v, want 0", data, err)
	}
	fd, port := listen6(t, 0, 0)
	c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("an IPv4 client of [::]:%d with V6ONLY 0: %v", port, err)
	}
	defer c.Close()
	cfd, peer, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	unix.Close(cfd)
	if got := addrString(peer); !strings.HasPrefix(got, "[::ffff:127.0.0.1]:") {
		t.Errorf("the IPv4 client's address as the IPv6 socket sees it: %s, want [::ffff:127.0.0.1]:PORT", got)
	}
	if err := bind4(port); err != unix.EADDRINUSE {
		t.Errorf("bind 0.0.0.0:%d beside [::] with V6ONLY 0: %v, want EADDRINUSE", port, err)
	}

	_, port = listen6(t, 0, 1)
	if c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port)); !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("an IPv4 client of [::]:%d with V6ONLY 1: %v, want connection refused", port, err)
		if c != nil {
			c.Close()
		}
	}
	if err := bind4(port); err != nil {
		t.Errorf("bind 0.0.0.0:%d beside [::] with V6ONLY 1: %v, want success", port, err)
	}
}

// TestDualStackProgram records the program on [::] with -v6only=false:
// one socket, and an IPv4 client that it sees as ::ffff:127.0.0.1. With no
// host it binds [::] and 0.0.0.0: with IPV6_V6ONLY 1 both binds succeed,
// with 0 the second fails with EADDRINUSE.
func TestDualStackProgram(t *testing.T) {
	needNS(t)
	wild := booktest.New(t)
	both := wild.Start("wild", "-addr", ":0")
	both.WaitFor("listening on 0.0.0.0:")
	both.Interrupt()
	one := wild.Run("wild", "-addr", ":0", "-v6only=false")
	if !regexp.MustCompile(`bind\(4, 0\.0\.0\.0:\d+\) = -1 EADDRINUSE`).MatchString(one.Output()) || one.ExitCode() != 1 {
		t.Errorf("-addr :0 -v6only=false: want bind 0.0.0.0 to fail with EADDRINUSE, exit 1:\n%s", one.Output())
	}

	s := booktest.New(t)
	s.Renumber(`\[::ffff:127\.0\.0\.1\]:(\d+)`, 40001)
	srv := s.Start("server", "-addr", "[::]:8080", "-v6only=false")
	s.Run("client", "-client", "-addr", "127.0.0.1:8080", "-msg", "from IPv4")
	srv.WaitFor("close(4) = 0")
	srv.Interrupt()
	s.Check("dualstack")
	if !strings.Contains(srv.Output(), "connection: TCP, local [::ffff:127.0.0.1]:8080, remote [::ffff:127.0.0.1]:") {
		t.Errorf("want the IPv4 client as ::ffff:127.0.0.1:\n%s", srv.Output())
	}
}

// TestNetListen: what net.Listen("tcp", ":PORT") makes is one AF_INET6
// socket on [::] with IPV6_V6ONLY 0 and SO_REUSEADDR 1, and a backlog of
// net.core.somaxconn (4096 here), as ss shows. It takes IPv4 clients, and
// Go shows their addresses unmapped.
func TestNetListen(t *testing.T) {
	needNS(t)
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	rc, err := ln.(*net.TCPListener).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	rc.Control(func(fd uintptr) {
		for name, opt := range map[string][2]int{
			"SO_DOMAIN":    {unix.SOL_SOCKET, unix.SO_DOMAIN},
			"SO_REUSEADDR": {unix.SOL_SOCKET, unix.SO_REUSEADDR},
			"IPV6_V6ONLY":  {unix.IPPROTO_IPV6, unix.IPV6_V6ONLY},
		} {
			got[name], err = unix.GetsockoptInt(int(fd), opt[0], opt[1])
		}
	})
	if want := map[string]int{"SO_DOMAIN": unix.AF_INET6, "SO_REUSEADDR": 1, "IPV6_V6ONLY": 0}; fmt.Sprint(got) != fmt.Sprint(want) || err != nil {
		t.Errorf("net.Listen(tcp, :0): %v (%v), want %v", got, err, want)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ss, err := exec.Command("ss", "-Hltn", fmt.Sprintf("sport = :%d", port)).CombinedOutput()
	somaxconn, _ := os.ReadFile("/proc/sys/net/core/somaxconn")
	if err != nil || !regexp.MustCompile(`^LISTEN +0 +4096 +\*:\d+ +\*:\*`).Match(ss) || string(somaxconn) != "4096\n" {
		t.Errorf("ss: want a listener on *:%d with Send-Q (the backlog) 4096 = somaxconn (%q): %v\n%s", port, somaxconn, err, ss)
	}
	c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if got := sc.RemoteAddr().String(); !strings.HasPrefix(got, "127.0.0.1:") {
		t.Errorf("Go's RemoteAddr for an IPv4 client of [::]: %s, want 127.0.0.1:PORT", got)
	}
}

// blackhole makes a listening socket on [::1]:0 whose accept queue is
// full (backlog 0, one connection waiting), so that the kernel drops every
// further SYN: a connect there waits, as to a machine that never answers.
func blackhole(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet6{Addr: netip.IPv6Loopback().As16()}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(fd)
	port := sa.(*unix.SockaddrInet6).Port
	c, err := net.Dial("tcp6", fmt.Sprintf("[::1]:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return port
}

// TestHappyEyeballs: localhost is ::1 first, and ::1 never answers here;
// net.Dial starts a connect to 127.0.0.1 after its fallback delay
// (Dialer.FallbackDelay, 300 ms) without waiting for the first, and
// returns the connection that succeeds.
func TestHappyEyeballs(t *testing.T) {
	needNS(t)
	port := blackhole(t)
	ln, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", fmt.Sprintf("localhost:%d", port))
	if err != nil {
		t.Fatalf("net.Dial localhost:%d with ::1 silent: %v", port, err)
	}
	defer c.Close()
	if got := c.RemoteAddr().String(); got != fmt.Sprintf("127.0.0.1:%d", port) {
		t.Errorf("net.Dial connected to %s, want 127.0.0.1:%d", got, port)
	}
}

// TestLostDatagram: a UDP receiver on 127.0.0.1, and a sender that
// resolved localhost and took its first address, ::1. sendto succeeds,
// and the datagram is lost: the receiver gets only the one sent to
// 127.0.0.1 afterwards, and the kernel counts the other in Udp6NoPorts.
func TestLostDatagram(t *testing.T) {
	needNS(t)
	booktest.CheckFDs(t)
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	port := rx.LocalAddr().(*net.UDPAddr).Port
	before := noPorts6(t)
	tx, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(tx)
	if err := unix.Sendto(tx, []byte("lost"), 0, &unix.SockaddrInet6{Port: port, Addr: netip.IPv6Loopback().As16()}); err != nil {
		t.Errorf("sendto [::1]:%d: %v, want success", port, err)
	}
	tx4, err := net.Dial("udp4", rx.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer tx4.Close()
	if _, err := tx4.Write([]byte("found")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	rx.SetReadDeadline(time.Now().Add(10 * time.Second)) // a bound, not a measurement
	n, _, err := rx.ReadFromUDP(buf)
	if err != nil || string(buf[:n]) != "found" {
		t.Errorf("the receiver's first datagram: %q, %v; want \"found\"", buf[:n], err)
	}
	if after := noPorts6(t); after != before+1 {
		t.Errorf("Udp6NoPorts went from %d to %d, want one more", before, after)
	}
}

// noPorts6 reads the count of IPv6 datagrams that found no socket.
func noPorts6(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile("/proc/net/snmp6")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	m := regexp.MustCompile(`(?m)^Udp6NoPorts\s+(\d+)$`).FindSubmatch(data)
	if m == nil {
		t.Fatalf("no Udp6NoPorts in /proc/net/snmp6")
	}
	fmt.Sscan(string(m[1]), &n)
	return n
}

// TestBlockingLookup: a name not in /etc/hosts goes to the DNS server in
// /etc/resolv.conf (127.0.0.1 here). One that takes the query and never
// answers holds the lookup until the caller's context ends; without one,
// the resolver would wait its own timeout, and an iterative server with
// it, doing nothing else.
func TestBlockingLookup(t *testing.T) {
	needNS(t)
	dns, err := net.ListenPacket("udp4", "127.0.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	_, err = (&net.Resolver{PreferGo: true}).LookupNetIP(ctx, "ip", "nosuch.example")
	var dnsErr *net.DNSError
	if !errors.As(err, &dnsErr) || !dnsErr.IsTimeout {
		t.Errorf("a lookup whose server never answers: %v, want a DNS timeout", err)
	}
	dns.SetReadDeadline(time.Now().Add(5 * time.Second))
	buf := make([]byte, 512)
	n, _, err := dns.ReadFrom(buf)
	if err != nil || !strings.Contains(string(buf[:n]), "nosuch") {
		t.Errorf("the server on 127.0.0.1:53 got no query for nosuch.example: %v", err)
	}
}
