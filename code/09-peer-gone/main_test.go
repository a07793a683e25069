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
	"os/signal"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
	"golang.org/x/sys/unix"
)

// TestTranscriptGone records the chapter's main transcript: a client that
// writes to a server that has closed, and a client that waits in the accept
// queue when the server stops. Ordering comes from what each process has
// printed, never from timing.
func TestTranscriptGone(t *testing.T) {
	s := booktest.New(t)
	// Ctrl-C wakes two goroutines, one per socket, and their shutdown lines
	// come in either order; the transcript shows the listening socket's first.
	s.Replace(`shutdown\(3, SHUT_RD\) = 0\n`, "")
	s.Replace(`\^C\n`, "^C\nshutdown(3, SHUT_RD) = 0\n")
	srv := s.Start("server")
	a := s.Spawn("client A", "-client", "-close", "write-after-eof", "-addr", srv.Addr())
	a.WaitFor("echoed")
	// B's connection completes in the kernel and waits in the accept queue,
	// its line in its receive buffer: the server is busy with A.
	b := s.Spawn("client B", "-client", "-addr", srv.Addr())
	b.WaitFor("sendmsg(")
	srv.Interrupt()
	a.Wait()
	b.Wait()
	if srv.ExitCode() != 0 {
		t.Errorf("server exit status %d, want 0", srv.ExitCode())
	}
	// What the chapter says about A: end of file, a write that succeeds,
	// the RST (POLLERR|POLLHUP), then EPIPE. About B: ECONNRESET on read.
	for _, c := range []struct {
		p    *booktest.Proc
		want []string
	}{
		{a, []string{
			`read(3, "", 4096) = 0` + "\n",
			`sendmsg(3, "still there?\n", 13, MSG_NOSIGNAL) = 13` + "\n",
			"= 1 ([{fd=3, revents=POLLERR|POLLHUP}])\n",
			`sendmsg(3, "still there?\n", 13, MSG_NOSIGNAL) = -1 EPIPE (Broken pipe)` + "\n",
		}},
		{b, []string{`= -1 ECONNRESET (Connection reset by peer)` + "\n"}},
	} {
		out, at := c.p.Output(), 0
		for _, w := range c.want {
			i := strings.Index(out[at:], w)
			if i < 0 {
				t.Errorf("no %q (in this order) in:\n%s", w, out)
				break
			}
			at += i + len(w)
		}
	}
	s.Check("gone")
}

// lockedBuffer is what an in-process server writes while the test reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitOutput waits until the output contains want, for at most 15 s.
func waitOutput(t *testing.T, out *lockedBuffer, want string) string {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if s := out.String(); strings.Contains(s, want) {
			return s
		}
	}
	t.Fatalf("no %q in:\n%s", want, out.String())
	return ""
}

// startServer runs the server in this process on a free loopback port.
func startServer(t *testing.T, cfg config) (addr *unix.SockaddrInet4, out *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithCancel(booktest.Context(t))
	out = &lockedBuffer{}
	done := make(chan error, 1)
	cfg.addr = netip.MustParseAddrPort("127.0.0.1:0")
	cfg.reuseaddr, cfg.backlog = true, 2 // the flags' defaults
	go func() { done <- run(ctx, cfg, out, out) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	text := waitOutput(t, out, "listening on ")
	_, rest, _ := strings.Cut(text, "listening on ")
	ap := netip.MustParseAddrPort(strings.Fields(rest)[0])
	return &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}, out
}

// connectTo connects a raw client socket, closed when the test ends.
func connectTo(t *testing.T, sa unix.Sockaddr) int {
	t.Helper()
	fd := mustSocket(t)
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Connect(fd, sa); err != nil {
		t.Fatal(err)
	}
	return fd
}

// roundTrip sends msg and reads its echo.
func roundTrip(t *testing.T, fd int, msg string) {
	t.Helper()
	if _, err := unix.Write(fd, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, len(msg))
	if n, err := unix.Read(fd, buf); err != nil || string(buf[:n]) != msg {
		t.Fatalf("echo: %q, %v; want %q", buf[:n], err, msg)
	}
}

// TestServerSurvivesReset: a client that resets its connection ends that
// connection, not the server, which closes the socket and serves the next
// client.
func TestServerSurvivesReset(t *testing.T) {
	booktest.CheckFDs(t)
	sa, out := startServer(t, config{})
	fd := connectTo(t, sa)
	roundTrip(t, fd, "hello\n")
	// SO_LINGER with a zero timeout: close sends RST instead of FIN.
	if err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	waitOutput(t, out, "ECONNRESET")
	next := connectTo(t, sa)
	roundTrip(t, next, "next\n")
	// In this process the descriptors are not 3 and 4: match any.
	want := regexp.MustCompile(`read\((\d+), "", 4096\) = -1 ECONNRESET \(Connection reset by peer\)\n` +
		`close\((\d+)\) = 0\n` +
		`127\.0\.0\.1:\d+: read \d+: connection reset by peer\n` +
		`accept4\(\d+, 127\.0\.0\.1:\d+, SOCK_CLOEXEC\) = \d+\n`)
	if m := want.FindStringSubmatch(out.String()); m == nil || m[1] != m[2] {
		t.Errorf("want ECONNRESET, the socket closed, the error reported and the next client accepted, in:\n%s", out.String())
	}
}

// TestKeepaliveOptions: -keepalive sets the four options on the server's
// connected socket, as the narration says, and only whole seconds are
// accepted.
func TestKeepaliveOptions(t *testing.T) {
	booktest.CheckFDs(t)
	sa, out := startServer(t, config{keepalive: 2 * time.Second})
	fd := connectTo(t, sa)
	roundTrip(t, fd, "hello\n")
	want := regexp.MustCompile(`accept4\(\d+, 127\.0\.0\.1:\d+, SOCK_CLOEXEC\) = (\d+)\n` +
		`setsockopt\((\d+), SOL_SOCKET, SO_KEEPALIVE, 1\) = 0\n` +
		`setsockopt\(\d+, SOL_TCP, TCP_KEEPIDLE, 2\) = 0\n` +
		`setsockopt\(\d+, SOL_TCP, TCP_KEEPINTVL, 2\) = 0\n` +
		`setsockopt\(\d+, SOL_TCP, TCP_KEEPCNT, 3\) = 0\n`)
	if m := want.FindStringSubmatch(out.String()); m == nil || m[1] != m[2] {
		t.Errorf("want the four options set on the accepted socket, in:\n%s", out.String())
	}
	err := run(booktest.Context(t), config{keepalive: 1500 * time.Millisecond}, io.Discard, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "whole seconds") {
		t.Errorf("-keepalive 1500ms: %v; want a refusal", err)
	}
}

func mustSocket(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

// tcpPair connects two TCP sockets on loopback and returns the client's and
// the server's end. Each is closed when the test ends, unless closed with closeNow first.
func tcpPair(t *testing.T) (c, s *int) {
	t.Helper()
	lfd := mustSocket(t)
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(lfd, 1); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		t.Fatal(err)
	}
	cfd := connectTo(t, sa)
	sfd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	c, s = &cfd, &sfd
	t.Cleanup(func() { closeNow(s) })
	return c, s
}

// closeNow closes *fd and marks it closed.
func closeNow(fd *int) {
	if *fd >= 0 {
		unix.Close(*fd)
		*fd = -1
	}
}

// awaitRST waits with poll, asking for no events, until the socket reports
// an error or a hang-up: the RST has arrived. It returns the revents.
func awaitRST(t *testing.T, fd int) int16 {
	t.Helper()
	pfd := []unix.PollFd{{Fd: int32(fd)}}
	for {
		n, err := unix.Poll(pfd, 15000)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n != 1 {
			t.Fatalf("poll(%d) = %d, %v: no RST within 15 s", fd, n, err)
		}
		return pfd[0].Revents
	}
}

func tcpState(t *testing.T, fd int) uint8 {
	t.Helper()
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}

// Values of tcpi_state, from the kernel's enum of TCP states.
const (
	tcpEstablished = 1
	tcpFinWait1    = 4
	tcpFinWait2    = 5
	tcpClose       = 7
	tcpCloseWait   = 8
)

// TestWriteAfterPeerClosed: after the peer's FIN, the first write succeeds;
// the peer's kernel answers with RST; poll then reports POLLERR|POLLHUP, the
// socket is CLOSED, and every later write fails with EPIPE. Reads still
// return 0: the FIN came first.
func TestWriteAfterPeerClosed(t *testing.T) {
	booktest.CheckFDs(t)
	c, s := tcpPair(t)
	closeNow(s) // FIN
	if n, err := unix.Read(*c, make([]byte, 16)); n != 0 || err != nil {
		t.Fatalf("read = %d, %v; want 0 (EOF)", n, err)
	}
	if st := tcpState(t, *c); st != tcpCloseWait {
		t.Errorf("after the FIN: state %d, want CLOSE_WAIT (%d)", st, tcpCloseWait)
	}
	// The FIN alone raises neither an error nor a hang-up.
	pfd := []unix.PollFd{{Fd: int32(*c)}}
	if n, err := unix.Poll(pfd, 0); n != 0 || err != nil {
		t.Errorf("poll before writing = %d (revents %#x), %v; want 0", n, pfd[0].Revents, err)
	}
	msg := []byte("still there?\n")
	if n, err := unix.Write(*c, msg); n != 13 || err != nil {
		t.Fatalf("first write = %d, %v; want 13", n, err)
	}
	if got := awaitRST(t, *c); got != unix.POLLERR|unix.POLLHUP {
		t.Errorf("revents %#x, want POLLERR|POLLHUP (%#x)", got, unix.POLLERR|unix.POLLHUP)
	}
	if st := tcpState(t, *c); st != tcpClose {
		t.Errorf("after the RST: state %d, want CLOSE (%d)", st, tcpClose)
	}
	for i := 2; i <= 4; i++ {
		if n, err := unix.Write(*c, msg); err != unix.EPIPE {
			t.Errorf("write %d = %d, %v; want EPIPE", i, n, err)
		}
	}
	if n, err := unix.Read(*c, make([]byte, 16)); n != 0 || err != nil {
		t.Errorf("read after the RST = %d, %v; want 0", n, err)
	}
}

// TestSOError: the RST records EPIPE on a socket in CLOSE_WAIT; reading
// SO_ERROR returns it and clears it.
func TestSOError(t *testing.T) {
	booktest.CheckFDs(t)
	c, s := tcpPair(t)
	closeNow(s)
	unix.Read(*c, make([]byte, 1))
	if _, err := unix.Write(*c, []byte("x")); err != nil {
		t.Fatal(err)
	}
	awaitRST(t, *c)
	for _, want := range []unix.Errno{unix.EPIPE, 0} {
		if e, err := unix.GetsockoptInt(*c, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || unix.Errno(e) != want {
			t.Errorf("SO_ERROR = %d (%v), %v; want %d (%v)", e, unix.Errno(e), err, want, want)
		}
	}
}

// TestResetEstablished: an RST on a connection the peer had not closed
// first records ECONNRESET. The next call, read or write, reports it; then
// writes fail with EPIPE and reads return 0.
func TestResetEstablished(t *testing.T) {
	for _, first := range []string{"read", "write"} {
		t.Run(first, func(t *testing.T) {
			booktest.CheckFDs(t)
			c, s := tcpPair(t)
			// Data the server never reads: its close sends RST.
			if _, err := unix.Write(*c, []byte("unread\n")); err != nil {
				t.Fatal(err)
			}
			pfd := []unix.PollFd{{Fd: int32(*s), Events: unix.POLLIN}}
			if n, err := unix.Poll(pfd, 15000); n != 1 || err != nil {
				t.Fatalf("poll for the data = %d, %v", n, err)
			}
			closeNow(s)
			awaitRST(t, *c)
			var err error
			if first == "read" {
				_, err = unix.Read(*c, make([]byte, 16))
			} else {
				_, err = unix.Write(*c, []byte("x"))
			}
			if err != unix.ECONNRESET {
				t.Errorf("%s = %v, want ECONNRESET", first, err)
			}
			if _, err := unix.Write(*c, []byte("x")); err != unix.EPIPE {
				t.Errorf("next write = %v, want EPIPE", err)
			}
			if n, err := unix.Read(*c, make([]byte, 16)); n != 0 || err != nil {
				t.Errorf("next read = %d, %v; want 0", n, err)
			}
		})
	}
}

// TestListenerResetsQueue: closing a listening socket, or shutting it down
// with SHUT_RD as the program does on Ctrl-C, resets the connections still
// in its accept queue: their clients' reads fail with ECONNRESET. After the
// shutdown, accept4 fails with EINVAL.
func TestListenerResetsQueue(t *testing.T) {
	for _, how := range []string{"close", "shutdown"} {
		t.Run(how, func(t *testing.T) {
			booktest.CheckFDs(t)
			lfd := mustSocket(t)
			defer func() { closeNow(&lfd) }()
			if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
				t.Fatal(err)
			}
			if err := unix.Listen(lfd, 1); err != nil {
				t.Fatal(err)
			}
			sa, err := unix.Getsockname(lfd)
			if err != nil {
				t.Fatal(err)
			}
			c := connectTo(t, sa)
			if _, err := unix.Write(c, []byte("hello\n")); err != nil {
				t.Fatal(err)
			}
			if how == "close" {
				closeNow(&lfd)
			} else {
				if err := unix.Shutdown(lfd, unix.SHUT_RD); err != nil {
					t.Fatal(err)
				}
				if fd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC); err != unix.EINVAL {
					t.Errorf("accept4 after shutdown = %d, %v; want EINVAL", fd, err)
				}
			}
			if n, err := unix.Read(c, make([]byte, 16)); err != unix.ECONNRESET {
				t.Errorf("read = %d, %v; want ECONNRESET", n, err)
			}
		})
	}
}

// TestShutdownWhileReading compares the two ways of waking a read on a
// connected socket. SHUT_RDWR sends a FIN at once; a peer that answers it
// with data gets an RST from this socket, which no longer reads, and the
// read here fails with ECONNRESET. SHUT_RD sends nothing: the peer sees
// nothing, the read returns 0, and the FIN leaves with close.
func TestShutdownWhileReading(t *testing.T) {
	t.Run("SHUT_RDWR", func(t *testing.T) {
		booktest.CheckFDs(t)
		c, s := tcpPair(t)
		if err := unix.Shutdown(*s, unix.SHUT_RDWR); err != nil {
			t.Fatal(err)
		}
		if n, err := unix.Read(*c, make([]byte, 16)); n != 0 || err != nil {
			t.Fatalf("peer's read = %d, %v; want 0: the FIN", n, err)
		}
		// The FIN has gone: this socket is in FIN_WAIT_1 or, once the FIN is
		// acknowledged, FIN_WAIT_2, where data for a side shut for reading
		// draws an RST.
		if st := tcpState(t, *s); st != tcpFinWait1 && st != tcpFinWait2 {
			t.Errorf("after SHUT_RDWR: state %d, want FIN_WAIT_1 or FIN_WAIT_2 (%d, %d)", st, tcpFinWait1, tcpFinWait2)
		}
		if _, err := unix.Write(*c, []byte("still there?\n")); err != nil {
			t.Fatal(err)
		}
		awaitRST(t, *c) // this socket reset itself before it sent the RST
		if n, err := unix.Read(*s, make([]byte, 16)); err != unix.ECONNRESET {
			t.Errorf("read = %d, %v; want ECONNRESET", n, err)
		}
	})
	t.Run("SHUT_RD", func(t *testing.T) {
		booktest.CheckFDs(t)
		c, s := tcpPair(t)
		if err := unix.Shutdown(*s, unix.SHUT_RD); err != nil {
			t.Fatal(err)
		}
		pfd := []unix.PollFd{{Fd: int32(*c), Events: unix.POLLIN}}
		if n, err := unix.Poll(pfd, 0); n != 0 || err != nil {
			t.Errorf("peer's poll = %d (revents %#x), %v; want nothing: no FIN yet", n, pfd[0].Revents, err)
		}
		if n, err := unix.Read(*s, make([]byte, 16)); n != 0 || err != nil {
			t.Errorf("read = %d, %v; want 0", n, err)
		}
		closeNow(s)
		if n, err := unix.Read(*c, make([]byte, 16)); n != 0 || err != nil {
			t.Errorf("peer's read after close = %d, %v; want 0: the FIN", n, err)
		}
	})
	// What the peer sends after SHUT_RD alone is queued, not reset: the
	// socket sent no FIN and is still ESTABLISHED (chapter 8).
	t.Run("SHUT_RD, then data", func(t *testing.T) {
		booktest.CheckFDs(t)
		c, s := tcpPair(t)
		if err := unix.Shutdown(*s, unix.SHUT_RD); err != nil {
			t.Fatal(err)
		}
		if _, err := unix.Write(*c, []byte("still there?\n")); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			if inq, err := unix.IoctlGetInt(*s, unix.SIOCINQ); err != nil || inq == 13 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the 13 bytes never arrived")
			}
		}
		if st := tcpState(t, *s); st != tcpEstablished {
			t.Errorf("state %d after SHUT_RD and data, want ESTABLISHED (%d)", st, tcpEstablished)
		}
		if n, err := unix.Read(*s, make([]byte, 16)); n != 13 || err != nil {
			t.Errorf("read = %d, %v; want the 13 bytes, queued", n, err)
		}
	})
}

// TestPollEINTR: a signal handler interrupts poll, which returns EINTR,
// although Go installs its handlers with SA_RESTART.
func TestPollEINTR(t *testing.T) {
	booktest.CheckFDs(t)
	c, _ := tcpPair(t)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGUSR1)
	defer signal.Stop(sigs)
	tid := make(chan int)
	result := make(chan error)
	go func() {
		// A thread of its own, so that the signal can be aimed at it.
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		tid <- unix.Gettid()
		_, err := unix.Poll([]unix.PollFd{{Fd: int32(*c)}}, 60000)
		result <- err
	}()
	id := <-tid
	// The signal may arrive before poll has started; send it until poll
	// reports it.
	for {
		if err := unix.Tgkill(os.Getpid(), id, unix.SIGUSR1); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-result:
			if err != unix.EINTR {
				t.Errorf("poll = %v, want EINTR", err)
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

const childEnv = "PEERGONE_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	os.Exit(booktest.Run(m))
}

// brokenSocket returns a socket whose peer has closed it and answered a
// write with RST.
func brokenSocket() (int, error) {
	lfd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	defer unix.Close(lfd)
	if err := unix.Bind(lfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return -1, err
	}
	if err := unix.Listen(lfd, 1); err != nil {
		return -1, err
	}
	sa, err := unix.Getsockname(lfd)
	if err != nil {
		return -1, err
	}
	c, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	if err := unix.Connect(c, sa); err != nil {
		return -1, err
	}
	s, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
	if err != nil {
		return -1, err
	}
	unix.Close(s)
	if _, err := unix.Write(c, []byte("x")); err != nil {
		return -1, err
	}
	pfd := []unix.PollFd{{Fd: int32(c)}}
	for {
		n, err := unix.Poll(pfd, 15000)
		if err == unix.EINTR {
			continue
		}
		if n != 1 {
			return -1, fmt.Errorf("no RST: poll = %d, %v", n, err)
		}
		return c, nil
	}
}

func errnoName(err error) string {
	var e unix.Errno
	if errors.As(err, &e) {
		return unix.ErrnoName(e)
	}
	return fmt.Sprint(err)
}

// child runs in a process of its own: signal dispositions are per process.
func child(mode string) int {
	switch mode {
	case "write": // no Notify: the runtime ignores a socket write's SIGPIPE
		fd, err := brokenSocket()
		if err != nil {
			fmt.Println(err)
			return 1
		}
		_, err = unix.Write(fd, []byte("x"))
		fmt.Printf("write: %s; still running\n", errnoName(err))
		return 0
	case "notify":
		sigs := make(chan os.Signal, 4)
		signal.Notify(sigs, syscall.SIGPIPE, syscall.SIGALRM)
		fd, err := brokenSocket()
		if err != nil {
			fmt.Println(err)
			return 1
		}
		_, err = unix.SendmsgN(fd, []byte("x"), nil, nil, unix.MSG_NOSIGNAL)
		fmt.Printf("sendmsg MSG_NOSIGNAL: %s\n", errnoName(err))
		// A SIGPIPE from that call would be pending before this SIGALRM
		// is sent, and the runtime hands pending signals out lowest number
		// first: SIGPIPE is 13, SIGALRM 14. So SIGALRM first means no
		// SIGPIPE.
		syscall.Kill(os.Getpid(), syscall.SIGALRM)
		fmt.Printf("first signal: %v\n", <-sigs)
		_, err = unix.Write(fd, []byte("x"))
		fmt.Printf("write: %s\n", errnoName(err))
		fmt.Printf("signal: %v\n", <-sigs)
		return 0
	case "stdout-raw": // stdout is a pipe nobody reads
		_, err := unix.Write(1, []byte("x\n"))
		fmt.Fprintf(os.Stderr, "write(1): %s; still running\n", errnoName(err))
		return 0
	case "stdout-file":
		os.Stdout.Write([]byte("x\n"))
		fmt.Fprintln(os.Stderr, "still running")
		return 0
	case "stdout-ignored": // SIG_IGN, as signal(SIGPIPE, SIG_IGN) in C
		signal.Ignore(syscall.SIGPIPE)
		_, err := os.Stdout.Write([]byte("x\n"))
		fmt.Fprintf(os.Stderr, "os.Stdout.Write: %s; still running\n", errnoName(err))
		return 0
	}
	return 2
}

func childCmd(mode string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+mode)
	return cmd
}

// TestSIGPIPE: a write to a reset socket raises SIGPIPE, unless it passes
// MSG_NOSIGNAL; a Go program that has not asked for the signal ignores it on
// a socket and gets EPIPE.
func TestSIGPIPE(t *testing.T) {
	for _, c := range []struct{ mode, want string }{
		{"write", "write: EPIPE; still running\n"},
		{"notify", "sendmsg MSG_NOSIGNAL: EPIPE\nfirst signal: alarm clock\nwrite: EPIPE\nsignal: broken pipe\n"},
	} {
		out, err := childCmd(c.mode).CombinedOutput()
		if err != nil || string(out) != c.want {
			t.Errorf("%s: %q, %v; want %q", c.mode, out, err, c.want)
		}
	}
}

// TestSIGPIPEStdout: on standard output, the os package turns EPIPE into
// death by SIGPIPE, signal 13; a raw write(1) just returns EPIPE, and so
// does os.Stdout once the program ignores SIGPIPE.
func TestSIGPIPEStdout(t *testing.T) {
	if syscall.SIGPIPE != 13 {
		t.Errorf("SIGPIPE = %d, want 13", syscall.SIGPIPE)
	}
	for _, c := range []struct {
		mode   string
		killed bool
		stderr string
	}{
		{"stdout-raw", false, "write(1): EPIPE; still running\n"},
		{"stdout-file", true, ""},
		{"stdout-ignored", false, "os.Stdout.Write: EPIPE; still running\n"},
	} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		r.Close() // no reader
		cmd := childCmd(c.mode)
		cmd.Stdout = w
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err = cmd.Run()
		w.Close()
		killed := false
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ws := ee.Sys().(syscall.WaitStatus)
			killed = ws.Signaled() && ws.Signal() == syscall.SIGPIPE
		}
		if killed != c.killed || stderr.String() != c.stderr {
			t.Errorf("%s: %v, stderr %q; want killed by SIGPIPE %v, stderr %q", c.mode, err, stderr.String(), c.killed, c.stderr)
		}
	}
}

// TestGoNetKeepalive: Go's net package turns keepalive on for the
// connections it dials and accepts: 15 s idle, 15 s interval, 9 probes.
func TestGoNetKeepalive(t *testing.T) {
	// The first net socket starts the runtime's poller, whose descriptors
	// stay open for good: start it before counting descriptors.
	warm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	warm.Close()
	booktest.CheckFDs(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	dialed, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer dialed.Close()
	accepted, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer accepted.Close()
	for _, conn := range []net.Conn{dialed, accepted} {
		raw, err := conn.(*net.TCPConn).SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		raw.Control(func(fd uintptr) {
			checkKeepalive(t, int(fd), 1, 15, 15, 9)
		})
	}
}

// checkKeepalive compares a socket's SO_KEEPALIVE, TCP_KEEPIDLE,
// TCP_KEEPINTVL and TCP_KEEPCNT with want.
func checkKeepalive(t *testing.T, fd int, want ...int) {
	t.Helper()
	opts := []struct {
		level, opt int
		name       string
	}{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, "SO_KEEPALIVE"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, "TCP_KEEPIDLE"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, "TCP_KEEPINTVL"},
		{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, "TCP_KEEPCNT"},
	}
	for i, o := range opts {
		if v, err := unix.GetsockoptInt(fd, o.level, o.opt); v != want[i] || err != nil {
			t.Errorf("%s = %d, %v; want %d", o.name, v, err, want[i])
		}
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
