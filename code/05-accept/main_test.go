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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
	"golang.org/x/sys/unix"
)

// childEnv makes the test binary, started again as a child, do one small
// job instead of running the tests: see TestMain.
const childEnv = "BOOK_05_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(booktest.Run(m))
	case "wait":
		// Hold every descriptor inherited until the parent closes stdin.
		io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	case "emfile":
		os.Exit(childEMFILE())
	}
	os.Exit(2)
}

// TestTranscript records the chapter's first run: one server, one client.
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
	s.Check("run")
}

// TestQueueWhileServing: while the server serves one client, a second
// client's connect succeeds (the kernel completes the handshake and queues
// the connection) but it gets no service until the first one is done. The
// order is shown by what the processes print and by the kernel's queue,
// never by time.
func TestQueueWhileServing(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server")
	first := s.Spawn("client 1", "-client", "-hold", "-addr", srv.Addr())
	first.WaitFor("sending nothing")
	srv.WaitFor("getpeername(4) = ")

	second := s.Spawn("client 2", "-client", "-addr", srv.Addr())
	// Client 2's handshake completes and it sends its line...
	second.WaitFor("1 of 1 connected")
	second.WaitFor(`write(3, "hello\n", 6) = 6`)
	addr := netip.MustParseAddrPort(srv.Addr())
	// The server has not accepted it: the connection waits in the queue.
	waitQueue(t, addr, 1)
	if n := strings.Count(srv.Output(), "accept4("); n != 1 {
		t.Fatalf("server called accept4 %d times while serving client 1, want 1:\n%s", n, srv.Output())
	}
	if strings.Contains(second.Output(), "read(") {
		t.Fatalf("client 2 got a reply while client 1 was being served:\n%s", second.Output())
	}
	checkSSOwners(t, srv)

	first.Interrupt() // client 1 leaves without a word
	second.Wait()
	if second.ExitCode() != 0 {
		t.Fatalf("client 2:\n%s", second.Output())
	}
	srv.WaitForN("close(4) = 0", 2)
	srv.Interrupt()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("server exit status %d after SIGINT, want 0", code)
	}

	// In the server's own words: client 1 ended (read returned 0) before
	// client 2 was accepted, on the same descriptor number, 4.
	out := srv.Output()
	accepts := regexp.MustCompile(`accept4\(3, (\S+), SOCK_CLOEXEC\) = 4\n`).FindAllStringSubmatchIndex(out, -1)
	eof := strings.Index(out, `read(4, "", 1024) = 0`)
	if len(accepts) != 2 || eof < 0 || !(accepts[0][0] < eof && eof < accepts[1][0]) {
		t.Errorf("want accept4 of client 1, its read of 0, then accept4 of client 2 (both = 4):\n%s", out)
	}
	if len(accepts) == 2 {
		peer2 := out[accepts[1][2]:accepts[1][3]]
		if want := "hi " + peer2 + ", you said \"hello\"\n"; !strings.Contains(second.Output(), want) {
			t.Errorf("client 2 output lacks %q:\n%s", want, second.Output())
		}
	}
	s.Check("queue")
}

// checkSSOwners: ss shows the accepted connection owned by the server's
// descriptor 4, and the queued one, not yet accepted, owned by no process.
func checkSSOwners(t *testing.T, srv *booktest.Proc) {
	t.Helper()
	if _, err := exec.LookPath("ss"); err != nil {
		t.Log("no ss on this machine; skipping the ss check")
		return
	}
	out, err := exec.Command("ss", "-Htanp", "state", "established", "sport", "= :"+port(srv.Addr())).CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	owned, unowned := 0, 0
	for _, l := range lines {
		switch {
		case strings.Contains(l, fmt.Sprintf("pid=%d,fd=4)", srv.Pid())):
			owned++
		case !strings.Contains(l, "users:"):
			unowned++
		}
	}
	if len(lines) != 2 || owned != 1 || unowned != 1 {
		t.Errorf("ss: want one connection owned by pid %d fd 4 and one owned by no process:\n%s", srv.Pid(), out)
	}
}

// TestDescriptors runs the server in this process: accept4 returns a new
// descriptor, distinct from the listening one, which goes on listening; the
// kernel fills in the client's address; the connected socket's local address
// is the listener's; and the number is handed out again for the next client.
func TestDescriptors(t *testing.T) {
	booktest.CheckFDs(t)
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0"} {
		t.Run(addr, func(t *testing.T) { testDescriptors(t, addr) })
	}
}

func testDescriptors(t *testing.T, addr string) {
	srv := startServer(t, addr)
	cli := dial(t, srv.addr)
	m := srv.waitFor(t, `accept4\((\d+), (\S+), SOCK_CLOEXEC\) = (\d+)\n`)
	lfd, cfd := atoi(t, m[1]), atoi(t, m[3])
	srv.waitFor(t, fmt.Sprintf(`getpeername\(%d\) = \S+\n`, cfd))

	if lfd == cfd {
		t.Fatalf("accept4 returned the listening descriptor %d", lfd)
	}
	lsock, csock := target(t, lfd), target(t, cfd)
	if !strings.HasPrefix(lsock, "socket:[") || !strings.HasPrefix(csock, "socket:[") || lsock == csock {
		t.Errorf("/proc/self/fd: %d -> %s, %d -> %s; want two different sockets", lfd, lsock, cfd, csock)
	}
	for _, c := range []struct{ fd, want int }{{lfd, 1}, {cfd, 0}} {
		if v, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || v != c.want {
			t.Errorf("SO_ACCEPTCONN on %d = %d, %v; want %d", c.fd, v, err, c.want)
		}
	}
	if fl, err := unix.FcntlInt(uintptr(cfd), unix.F_GETFD, 0); err != nil || fl&unix.FD_CLOEXEC == 0 {
		t.Errorf("F_GETFD on the accepted %d = %#x, %v; want FD_CLOEXEC", cfd, fl, err)
	}

	// The address accept4 filled in is the client's own address, and
	// getpeername says the same; getsockname gives the listener's address.
	clientAddr := sockname(t, cli.fd)
	out := srv.out.String()
	for _, want := range []string{
		fmt.Sprintf("accept4(%d, %s, SOCK_CLOEXEC) = %d\n", lfd, clientAddr, cfd),
		fmt.Sprintf("getsockname(%d) = %s\n", cfd, srv.addr),
		fmt.Sprintf("getpeername(%d) = %s\n", cfd, clientAddr),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("server output lacks %q:\n%s", want, out)
		}
	}
	checkSS(t, srv.addr, clientAddr, lsock, csock)

	// Serve, reply, close: the client reads the reply, then end of file.
	cli.write(t, "hello\n")
	if got, want := cli.readAll(t), fmt.Sprintf("hi %s, you said \"hello\"\n", clientAddr); got != want {
		t.Errorf("reply %q, want %q", got, want)
	}
	cli.close()

	// The listening socket goes on listening: the next client is accepted
	// on it, with a descriptor of its own. (Which number depends on what
	// else this process has open; the processes in TestQueueWhileServing
	// show the number coming back.)
	second := dial(t, srv.addr)
	secondAddr := regexp.QuoteMeta(sockname(t, second.fd))
	m = srv.waitFor(t, fmt.Sprintf(`accept4\(%d, %s, SOCK_CLOEXEC\) = (\d+)\n`, lfd, secondAddr))
	if fd2 := atoi(t, m[1]); fd2 == lfd {
		t.Errorf("second accept4 returned the listening descriptor %d", lfd)
	}
	second.close()
	srv.waitFor(t, fmt.Sprintf(`(?s)accept4\(%d, %s, SOCK_CLOEXEC\) = %s\n.*close\(%s\) = 0\n`, lfd, secondAddr, m[1], m[1]))
	if err := srv.stop(t); err != nil {
		t.Fatalf("run: %v", err)
	}
	if got, want := srv.out.String(), fmt.Sprintf("shutdown(%d, SHUT_RDWR) = 0\naccept4(%d, ?, SOCK_CLOEXEC) = -1 EINVAL (Invalid argument)\nclose(%d) = 0\n", lfd, lfd, lfd); !strings.HasSuffix(got, want) {
		t.Errorf("after cancel the output ends:\n%s\nwant it to end:\n%s", got[max(0, len(got)-200):], want)
	}
}

// checkSS: ss lists the listening socket and the connected one, the same
// sockets (by inode) as /proc/self/fd; both have the listener's address.
func checkSS(t *testing.T, local, peer, lsock, csock string) {
	t.Helper()
	if _, err := exec.LookPath("ss"); err != nil {
		t.Log("no ss on this machine; skipping the ss check")
		return
	}
	out, err := exec.Command("ss", "-Htane", "sport", "= :"+port(local)).CombinedOutput()
	if err != nil {
		t.Fatalf("ss: %v\n%s", err, out)
	}
	ino := func(s string) string { return "ino:" + strings.Trim(s, "socket:[]") + " " }
	var listen, estab bool
	for _, l := range strings.Split(string(out), "\n") {
		f := strings.Fields(l)
		if len(f) < 5 {
			continue
		}
		listen = listen || f[0] == "LISTEN" && f[3] == local && strings.Contains(l, ino(lsock))
		estab = estab || f[0] == "ESTAB" && f[3] == local && f[4] == peer && strings.Contains(l, ino(csock))
	}
	if !listen || !estab {
		t.Errorf("ss: want LISTEN %s %s and ESTAB %s %s %s:\n%s", local, ino(lsock), local, peer, ino(csock), out)
	}
}

// TestAcceptFlags: SOCK_CLOEXEC on accept4 sets close-on-exec on the new
// descriptor. Without it the new descriptor has neither close-on-exec nor
// O_NONBLOCK, even when the listening one has both: on Linux nothing of
// the descriptor is inherited from the listener.
func TestAcceptFlags(t *testing.T) {
	booktest.CheckFDs(t)
	lfd, addr := listener(t, unix.SOCK_NONBLOCK)
	for _, c := range []struct {
		flags           int
		cloexec, nonblk int
	}{
		{unix.SOCK_CLOEXEC, unix.FD_CLOEXEC, 0},
		{0, 0, 0},
		{unix.SOCK_CLOEXEC | unix.SOCK_NONBLOCK, unix.FD_CLOEXEC, unix.O_NONBLOCK},
	} {
		dial(t, addr)
		cfd := accept(t, lfd, c.flags).fd
		fd, err1 := unix.FcntlInt(uintptr(cfd), unix.F_GETFD, 0)
		fl, err2 := unix.FcntlInt(uintptr(cfd), unix.F_GETFL, 0)
		if err1 != nil || err2 != nil || fd&unix.FD_CLOEXEC != c.cloexec || fl&unix.O_NONBLOCK != c.nonblk {
			t.Errorf("accept4 flags %#x: F_GETFD %#x, F_GETFL %#x (%v, %v); want FD_CLOEXEC %#x, O_NONBLOCK %#x",
				c.flags, fd, fl, err1, err2, c.cloexec, c.nonblk)
		}
		// A non-blocking socket with nothing to read says EAGAIN at once.
		if c.nonblk != 0 {
			if _, err := unix.Read(cfd, make([]byte, 16)); err != unix.EAGAIN {
				t.Errorf("read with nothing to read on a non-blocking socket: %v, want EAGAIN", err)
			}
		}
	}

	// x/sys's Accept is accept4 with flags 0: no close-on-exec.
	dial(t, addr)
	accept(t, lfd, 0) // let poll wait for it, then take it with Accept
	dial(t, addr)
	waitQueue(t, netip.MustParseAddrPort(addr), 1)
	cfd, _, err := unix.Accept(lfd)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(cfd)
	if fd, err := unix.FcntlInt(uintptr(cfd), unix.F_GETFD, 0); err != nil || fd != 0 {
		t.Errorf("unix.Accept: F_GETFD %#x, %v; want 0", fd, err)
	}

	// Go's net package accepts with SOCK_CLOEXEC|SOCK_NONBLOCK.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	sc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	raw, err := sc.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) {
		fdf, err1 := unix.FcntlInt(fd, unix.F_GETFD, 0)
		fl, err2 := unix.FcntlInt(fd, unix.F_GETFL, 0)
		if err1 != nil || err2 != nil || fdf&unix.FD_CLOEXEC == 0 || fl&unix.O_NONBLOCK == 0 {
			t.Errorf("net.Listener.Accept: F_GETFD %#x, F_GETFL %#x (%v, %v); want FD_CLOEXEC and O_NONBLOCK", fdf, fl, err1, err2)
		}
	})
}

// TestOldestFirst: accept4 takes connections off the queue in the order
// their handshakes completed, and fills in each client's own address.
func TestOldestFirst(t *testing.T) {
	booktest.CheckFDs(t)
	lfd, addr := listener(t, 0)
	var want []string
	for range 3 {
		want = append(want, sockname(t, dial(t, addr).fd))
	}
	waitQueue(t, netip.MustParseAddrPort(addr), 3)
	for i, w := range want {
		fd, sa, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		own(t, fd)
		if got := addrString(sa); got != w {
			t.Errorf("accept4 number %d: peer %s, want %s", i+1, got, w)
		}
	}
}

// TestAcceptedLeaksIntoChild: an accepted descriptor without close-on-exec
// goes to every program this one starts, and the connection then outlives
// the server's close: the client sees the end only when the child exits.
// With SOCK_CLOEXEC the child gets nothing, and close ends the connection.
func TestAcceptedLeaksIntoChild(t *testing.T) {
	booktest.CheckFDs(t)
	for _, flags := range []int{0, unix.SOCK_CLOEXEC} {
		lfd, addr := listener(t, 0)
		cli := dial(t, addr)
		conn := accept(t, lfd, flags)
		inode := target(t, conn.fd)

		child := exec.Command(os.Args[0])
		child.Env = append(os.Environ(), childEnv+"=wait")
		stdin, err := child.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		inherited := hasSocket(t, child.Process.Pid, inode)
		conn.close()
		if flags == 0 {
			if !inherited {
				t.Errorf("without SOCK_CLOEXEC: the child does not hold %s", inode)
			}
			// The server closed its descriptor, but the child's keeps the
			// connection open: no FIN was sent.
			if st := tcpState(t, cli.fd); st != unix.BPF_TCP_ESTABLISHED {
				t.Errorf("client state %d after the server's close, want ESTABLISHED while the child lives", st)
			}
		} else if inherited {
			t.Errorf("with SOCK_CLOEXEC: the child holds %s", inode)
		}
		if flags != 0 {
			waitState(t, cli.fd, unix.BPF_TCP_CLOSE_WAIT) // the FIN came at close
		}
		stdin.Close()
		if err := child.Wait(); err != nil {
			t.Fatal(err)
		}
		waitState(t, cli.fd, unix.BPF_TCP_CLOSE_WAIT) // and now in any case
	}
}

// TestDeadOnArrival: a client that resets its connection while it waits in
// the queue is still handed out by accept4, with its address; getpeername
// then fails with ENOTCONN (and a read would get ECONNRESET). The server
// reports it and serves the next client.
func TestDeadOnArrival(t *testing.T) {
	booktest.CheckFDs(t)
	srv := startServer(t, "127.0.0.1:0")
	holder := dial(t, srv.addr)
	m := srv.waitFor(t, `accept4\((\d+), \S+, SOCK_CLOEXEC\) = (\d+)\n.*\ngetpeername\(\d+\) = `)
	lfd, cfd := m[1], m[2]
	dead := dial(t, srv.addr)
	deadAddr := sockname(t, dead.fd)
	waitQueue(t, netip.MustParseAddrPort(srv.addr), 1)
	// SO_LINGER with a zero timeout makes close send RST instead of FIN.
	if err := unix.SetsockoptLinger(dead.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1}); err != nil {
		t.Fatal(err)
	}
	dead.close()
	holder.close()
	srv.waitFor(t, regexp.QuoteMeta(fmt.Sprintf("accept4(%s, %s, SOCK_CLOEXEC) = %s\n"+
		"getsockname(%s) = %s\n"+
		"getpeername(%s) = -1 ENOTCONN (Transport endpoint is not connected)\n"+
		"close(%s) = 0\n"+
		"getpeername %s: transport endpoint is not connected\n", lfd, deadAddr, cfd, cfd, srv.addr, cfd, cfd, cfd)))
	// The server goes on.
	next := dial(t, srv.addr)
	next.write(t, "hello\n")
	if got := next.readAll(t); !strings.HasSuffix(got, "you said \"hello\"\n") {
		t.Errorf("next client got %q", got)
	}
	if err := srv.stop(t); err != nil {
		t.Fatal(err)
	}

	// The same, by hand: the read gets ECONNRESET.
	l, addr := listener(t, 0)
	c := dial(t, addr)
	unix.SetsockoptLinger(c.fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1})
	c.close()
	rfd := accept(t, l, unix.SOCK_CLOEXEC).fd
	if _, err := unix.Read(rfd, make([]byte, 16)); err != unix.ECONNRESET {
		t.Errorf("read on a connection reset while queued: %v, want ECONNRESET", err)
	}
}

// TestInterruptWhileServing: Ctrl-C ends the server promptly even while it
// waits in read for a client that says nothing: shutdown wakes the read
// with end of file. SIGTERM does the same; both exit with status 0.
func TestInterruptWhileServing(t *testing.T) {
	for _, sig := range []os.Signal{syscall.SIGINT, syscall.SIGTERM} {
		s := booktest.New(t)
		srv := s.Start("server")
		cli := s.Spawn("client", "-client", "-hold", "-addr", srv.Addr())
		cli.WaitFor("sending nothing")
		srv.WaitFor("getpeername(4) = ")
		srv.Signal(sig)
		out := srv.Output()
		if code := srv.ExitCode(); code != 0 {
			t.Errorf("%v: exit status %d, want 0:\n%s", sig, code, out)
		}
		for _, want := range []string{"shutdown(4, SHUT_RDWR) = 0\n", "read(4, \"\", 1024) = 0\n", "close(4) = 0\n", "shutdown(3, SHUT_RDWR) = 0\n",
			"accept4(3, ?, SOCK_CLOEXEC) = -1 EINVAL (Invalid argument)\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("%v: output lacks %q:\n%s", sig, want, out)
			}
		}
		if !strings.HasSuffix(out, "close(3) = 0\n") {
			t.Errorf("%v: output does not end with close(3) = 0:\n%s", sig, out)
		}
		cli.Interrupt()
	}
}

// TestWrongDescriptor: the listening socket has no peer, so read on it fails
// with ENOTCONN and write with EPIPE; a connected socket does not listen, so accept4 on it fails
// with EINVAL.
func TestWrongDescriptor(t *testing.T) {
	booktest.CheckFDs(t)
	lfd, addr := listener(t, 0)
	dial(t, addr)
	cfd := accept(t, lfd, unix.SOCK_CLOEXEC).fd
	if _, err := unix.Read(lfd, make([]byte, 16)); err != unix.ENOTCONN {
		t.Errorf("read on the listening socket: %v, want ENOTCONN", err)
	}
	if _, err := unix.Write(lfd, []byte("x")); err != unix.EPIPE {
		t.Errorf("write on the listening socket: %v, want EPIPE", err)
	}
	if fd, _, err := unix.Accept4(cfd, unix.SOCK_CLOEXEC); err != unix.EINVAL {
		if err == nil {
			unix.Close(fd)
		}
		t.Errorf("accept4 on a connected socket: %v, want EINVAL", err)
	}
}

// TestEMFILE: with no descriptor free, accept4 fails with EMFILE and the
// connection stays in the queue, so a loop that retries at once spins. It
// runs in a child so that this process keeps its limit.
func TestEMFILE(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=emfile")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if want := "accept4 = EMFILE twice; queue length 1; after a close accept4 = 0 errors\n"; string(out) != want {
		t.Errorf("child: %q, want %q", out, want)
	}
}

func childEMFILE() int {
	fail := func(format string, args ...any) int { fmt.Printf(format+"\n", args...); return 1 }
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail("socket: %v", err)
	}
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fail("bind: %v", err)
	}
	if err := unix.Listen(lfd, 5); err != nil {
		return fail("listen: %v", err)
	}
	sa, _ := unix.Getsockname(lfd)
	cli, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail("socket: %v", err)
	}
	if err := unix.Connect(cli, sa); err != nil {
		return fail("connect: %v", err)
	}
	// Lower the soft limit to just above what is open, and fill the rest.
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	lim.Cur = uint64(cli + 8)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return fail("setrlimit: %v", err)
	}
	var last int
	for {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			break
		}
		last = fd
	}
	for range 2 {
		if _, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC); err != unix.EMFILE {
			return fail("accept4 = %v, want EMFILE", err)
		}
	}
	info, err := unix.GetsockoptTCPInfo(lfd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		return fail("TCP_INFO: %v", err)
	}
	unix.Close(last)
	fd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
	if err != nil {
		return fail("accept4 after a close: %v", err)
	}
	unix.Close(fd)
	fmt.Printf("accept4 = EMFILE twice; queue length %d; after a close accept4 = 0 errors\n", info.Unacked)
	return 0
}

// TestEMFILEEndsServer: what the chapter's pitfall shows. The idle server
// holds 0, 1 and 2 and its listening socket, 3. With its limit lowered to
// 4 descriptors (prlimit, as the chapter does) while it waits in accept4,
// that accept4 keeps the descriptor it took before it began to wait, 4,
// and the next client is served; the accept4 after it fails at once with
// EMFILE, and the server ends: it closes 3, names accept4 and the error on
// stderr, and exits with status 1. Then nothing listens on its port.
func TestEMFILEEndsServer(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server")
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", srv.Pid()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range fds {
		names = append(names, e.Name())
	}
	if got := strings.Join(names, " "); got != "0 1 2 3" {
		t.Fatalf("the idle server's descriptors are %s, want 0 1 2 3", got)
	}
	waitInAccept(t, srv.Pid())
	if err := unix.Prlimit(srv.Pid(), unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 4, Max: 4}, nil); err != nil {
		t.Fatalf("prlimit: %v", err)
	}
	if c := s.Run("client", "-client", "-addr", srv.Addr()); c.ExitCode() != 0 {
		t.Fatalf("the client was not served:\n%s", c.Output())
	}
	srv.Wait()
	if code := srv.ExitCode(); code != 1 {
		t.Errorf("server exit status %d, want 1", code)
	}
	want := "close(4) = 0\n" +
		"accept4(3, ?, SOCK_CLOEXEC) = -1 EMFILE (Too many open files)\n" +
		"close(3) = 0\n" +
		"accept4: too many open files\n"
	if out := srv.Output(); !strings.HasSuffix(out, want) {
		t.Errorf("the server's output does not end with\n%s\nIt printed:\n%s", want, out)
	}
	if c, err := net.Dial("tcp", srv.Addr()); err == nil {
		c.Close()
		t.Errorf("connect %s after the server ended: no error, want ECONNREFUSED", srv.Addr())
	} else if !errors.Is(err, unix.ECONNREFUSED) {
		t.Errorf("connect %s after the server ended: %v, want ECONNREFUSED", srv.Addr(), err)
	}
	s.Check("emfile")
}

// waitInAccept waits until a thread of process pid is blocked in
// accept4(3, ...), as /proc/PID/task/TID/syscall shows it.
func waitInAccept(t *testing.T, pid int) {
	t.Helper()
	want := strconv.Itoa(unix.SYS_ACCEPT4) + " 0x3 "
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", pid))
		for _, f := range files {
			if sc, err := os.ReadFile(f); err == nil && strings.HasPrefix(string(sc), want) {
				return
			}
		}
	}
	t.Fatalf("process %d is not blocked in accept4(3, ...)", pid)
}

// --- helpers ---

// inProcess is the server's run function running in this process.
type inProcess struct {
	addr string
	out  *syncBuffer
	stop func(t *testing.T) error
}

func startServer(t *testing.T, addr string) *inProcess {
	t.Helper()
	ctx, cancel := context.WithCancel(booktest.Context(t))
	srv := &inProcess{out: &syncBuffer{}}
	errc := make(chan error, 1)
	cfg := config{addr: netip.MustParseAddrPort(addr), reuseaddr: true, backlog: 5}
	go func() { errc <- run(ctx, cfg, srv.out, srv.out) }()
	var once sync.Once
	var err error
	srv.stop = func(t *testing.T) error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(30 * time.Second):
				t.Fatalf("run did not return after cancel:\n%s", srv.out)
			}
		})
		return err
	}
	t.Cleanup(func() { srv.stop(t) })
	srv.addr = srv.waitFor(t, `listening on (\S+)\n`)[1]
	return srv
}

// waitFor waits until the server's output matches re and returns the match.
func (s *inProcess) waitFor(t *testing.T, re string) []string {
	t.Helper()
	r := regexp.MustCompile(re)
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if m := r.FindStringSubmatch(s.out.String()); m != nil {
			return m
		}
	}
	t.Fatalf("no %q in the server's output:\n%s", re, s.out)
	return nil
}

// sock is a raw socket the test drives itself, closed when the test ends
// unless the test closed it before.
type sock struct {
	fd     int
	closed bool
}

func dial(t *testing.T, addr string) *sock {
	t.Helper()
	ap := netip.MustParseAddrPort(addr)
	sa, err := sockaddr(ap)
	if err != nil {
		t.Fatal(err)
	}
	domain := unix.AF_INET6
	if ap.Addr().Is4() {
		domain = unix.AF_INET
	}
	fd, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := own(t, fd)
	if err := unix.Connect(fd, sa); err != nil {
		t.Fatalf("connect %s: %v", addr, err)
	}
	return c
}

func (c *sock) close() {
	if !c.closed {
		c.closed = true
		unix.Close(c.fd)
	}
}

func own(t *testing.T, fd int) *sock {
	c := &sock{fd: fd}
	t.Cleanup(c.close)
	return c
}

func (c *sock) write(t *testing.T, s string) {
	t.Helper()
	if n, err := unix.Write(c.fd, []byte(s)); err != nil || n != len(s) {
		t.Fatalf("write = %d, %v", n, err)
	}
}

// readAll reads until end of file, with a generous bound.
func (c *sock) readAll(t *testing.T) string {
	t.Helper()
	tv := unix.NsecToTimeval((15 * time.Second).Nanoseconds())
	unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	var b bytes.Buffer
	buf := make([]byte, 1024)
	for {
		n, err := unix.Read(c.fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("read: %v (so far %q)", err, b.String())
		}
		if n == 0 {
			return b.String()
		}
		b.Write(buf[:n])
	}
}

// listener is a listening socket on 127.0.0.1, port chosen by the kernel.
func listener(t *testing.T, flags int) (int, string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|flags, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 5); err != nil {
		t.Fatal(err)
	}
	return fd, sockname(t, fd)
}

// accept takes one connection, waiting for it (the listener may be
// non-blocking).
func accept(t *testing.T, lfd, flags int) *sock {
	t.Helper()
	fds := []unix.PollFd{{Fd: int32(lfd), Events: unix.POLLIN}}
	if n, err := unix.Poll(fds, 15000); n != 1 {
		t.Fatalf("poll on the listener: %d, %v", n, err)
	}
	fd, _, err := unix.Accept4(lfd, flags)
	if err != nil {
		t.Fatalf("accept4: %v", err)
	}
	return own(t, fd)
}

func sockname(t *testing.T, fd int) string {
	t.Helper()
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	return addrString(sa)
}

func target(t *testing.T, fd int) string {
	t.Helper()
	s, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hasSocket reports whether process pid has a descriptor for sock.
func hasSocket(t *testing.T, pid int, sock string) bool {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if s, err := os.Readlink(dir + "/" + e.Name()); err == nil && s == sock {
			return true
		}
	}
	return false
}

func tcpState(t *testing.T, fd int) uint8 {
	t.Helper()
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}

func waitState(t *testing.T, fd int, want uint8) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); tcpState(t, fd) != want; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("socket %d: TCP state %d, want %d", fd, tcpState(t, fd), want)
		}
	}
}

// waitQueue waits until the accept queue of the socket listening on addr
// holds want connections. For a listening socket, /proc/net/tcp's rx_queue
// column is the accept queue's length (what ss shows as Recv-Q).
func waitQueue(t *testing.T, addr netip.AddrPort, want int) {
	t.Helper()
	file := "/proc/net/tcp"
	if addr.Addr().Is6() {
		file = "/proc/net/tcp6"
	}
	got := -1
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(l)
			if len(f) < 5 || f[3] != "0A" || !strings.HasSuffix(f[1], fmt.Sprintf(":%04X", addr.Port())) {
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

func port(addr string) string { return strconv.Itoa(int(netip.MustParseAddrPort(addr).Port())) }

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
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
