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
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestMain builds the program once for all the tests, not once per session
// (booktest.Run).
func TestMain(m *testing.M) { os.Exit(booktest.Run(m)) }

// TestTranscript records what the chapter shows: an echo server reading
// through a 16-byte buffer, a client that sends two lines and checks each
// echo, and a client that sends three lines in one write and reads the
// three replies in one read.
func TestTranscript(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server", "-bufsize", "16")
	s.Run("client", "-client", "-addr", srv.Addr(), "-msg", "hello", "-msg", "a stream has no message boundaries")
	srv.WaitForN("close(4) = 0", 1)
	s.Run("client", "-client", "-batch", "-addr", srv.Addr(), "-msg", "one", "-msg", "two", "-msg", "three")
	srv.WaitForN("close(4) = 0", 2)
	srv.Interrupt()
	s.Check("run")

	out := srv.Output()
	for _, want := range []string{
		// One write of 35 bytes, three reads of 16, 16 and 3.
		`read(4, "a stream has no ", 16) = 16` + "\n" +
			`read(4, "message boundari", 16) = 16` + "\n" +
			`read(4, "es\n", 16) = 3` + "\n" +
			`write(4, "a stream has no message boundari"..., 35) = 35`,
		// One read with three lines in it, three writes.
		`read(4, "one\ntwo\nthree\n", 16) = 14` + "\n" +
			`write(4, "one\n", 4) = 4` + "\n" + `write(4, "two\n", 4) = 4` + "\n" + `write(4, "three\n", 6) = 6`,
		// EOF: a read of 0 once the client has closed.
		`read(4, "", 16) = 0` + "\nclose(4) = 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the server did not print\n%s\nIt printed:\n%s", want, out)
		}
	}
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("server exit status %d after SIGINT, want 0", code)
	}
}

// quiet is a narrator that prints nothing.
var quiet = narrator{w: io.Discard, quiet: true, mu: new(sync.Mutex)}

// socket is a TCP socket for tests, closed when the test ends unless the
// test closed it first (and its number went to another descriptor).
func socket(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeIfSame(t, fd))
	return fd
}

// closeIfSame returns a function that closes fd if it is still the socket
// it is now.
func closeIfSame(t *testing.T, fd int) func() {
	path := "/proc/self/fd/" + strconv.Itoa(fd)
	was, err := os.Readlink(path)
	if err != nil {
		t.Fatal(err)
	}
	return func() {
		if now, err := os.Readlink(path); err == nil && now == was {
			unix.Close(fd)
		}
	}
}

// connPair connects a client socket to a server socket over loopback and
// returns both ends. setup, if not nil, runs on the client socket before
// connect.
func connPair(t *testing.T, setup func(fd int)) (client, server int) {
	t.Helper()
	ln := socket(t)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(ln)
	if err != nil {
		t.Fatal(err)
	}
	client = socket(t)
	if setup != nil {
		setup(client)
	}
	if err := unix.Connect(client, sa); err != nil {
		t.Fatal(err)
	}
	server, _, err = unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeIfSame(t, server))
	unix.Close(ln)
	return client, server
}

// queued waits until fd's receive buffer holds want bytes, so that what a
// read returns no longer depends on timing.
func queued(t *testing.T, fd, want int) {
	t.Helper()
	if err := waitQueued(context.Background(), quiet, fd, want); err != nil {
		t.Fatal(err)
	}
}

// TestTwoWritesOneRead: two writes, both in the receive buffer before the
// reader reads: one read returns both, with nothing between them.
func TestTwoWritesOneRead(t *testing.T) {
	booktest.CheckFDs(t)
	c, s := connPair(t, nil)
	for _, m := range []string{"one\n", "two\n"} {
		if err := writeAll(quiet, c, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	queued(t, s, 8)
	buf := make([]byte, 64)
	k, err := readFD(quiet, s, buf)
	if err != nil || string(buf[:k]) != "one\ntwo\n" {
		t.Errorf("read = %d %q, %v; want 8 \"one\\ntwo\\n\"", k, buf[:k], err)
	}
}

// TestOneWriteThreeReads: one write of 35 bytes, read through a 16-byte
// buffer, takes three reads: 16, 16 and 3 bytes.
func TestOneWriteThreeReads(t *testing.T) {
	booktest.CheckFDs(t)
	c, s := connPair(t, nil)
	msg := "a stream has no message boundaries\n"
	if err := writeAll(quiet, c, []byte(msg)); err != nil {
		t.Fatal(err)
	}
	queued(t, s, len(msg))
	var sizes []int
	var got []byte
	buf := make([]byte, 16)
	for len(got) < len(msg) {
		k, err := readFD(quiet, s, buf)
		if err != nil || k == 0 {
			t.Fatalf("read = %d, %v", k, err)
		}
		sizes = append(sizes, k)
		got = append(got, buf[:k]...)
	}
	if fmt.Sprint(sizes) != "[16 16 3]" || string(got) != msg {
		t.Errorf("reads of %v bytes: %q; want [16 16 3]: %q", sizes, got, msg)
	}
}

// TestShortRead: a 1 MiB write does not fit in the receiver's buffer: the
// first read returns fewer bytes than asked for, at most what the receive
// buffer holds; readFull gets them all, in order.
func TestShortRead(t *testing.T) {
	booktest.CheckFDs(t)
	c, s := connPair(t, nil)
	rcvbuf, err := unix.GetsockoptInt(s, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	done := make(chan error, 1)
	go func() { done <- writeAll(quiet, c, big) }()
	buf := make([]byte, len(big))
	k, err := readFD(quiet, s, buf)
	if err != nil || k <= 0 || k > rcvbuf {
		t.Errorf("first read of a 1 MiB write = %d, %v; want 1 to SO_RCVBUF (%d) bytes", k, err, rcvbuf)
	}
	t.Logf("the first read of a 1 MiB write returned %d bytes", k)
	if err := readFull(quiet, s, buf[k:]); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf, big) {
		t.Error("readFull: the bytes differ from those written")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestShortWrite: on a non-blocking socket with a small send buffer and a
// peer that does not read, write takes fewer bytes than offered, and once
// there is no room it fails with EAGAIN instead of waiting. A blocking
// socket with a send timeout returns a short count too.
func TestShortWrite(t *testing.T) {
	booktest.CheckFDs(t)
	c, _ := connPair(t, func(fd int) {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
			t.Fatal(err)
		}
	})
	if err := unix.SetNonblock(c, true); err != nil {
		t.Fatal(err)
	}
	big := make([]byte, 1<<20)
	rest := big
	var writes []int
	var err error
	for len(rest) > 0 {
		var k int
		if k, err = writeFD(quiet, c, rest); err != nil {
			break
		}
		writes = append(writes, k)
		rest = rest[k:]
	}
	if !errors.Is(err, unix.EAGAIN) {
		t.Fatalf("non-blocking writes took %v bytes, then %v; want EAGAIN", writes, err)
	}
	if len(writes) == 0 || writes[0] >= len(big) {
		t.Errorf("non-blocking writes took %v bytes of %d: want the first one short", writes, len(big))
	}
	t.Logf("non-blocking writes of 1 MiB took %v bytes, then EAGAIN", writes)

	c, _ = connPair(t, nil)
	if err := unix.SetsockoptTimeval(c, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Usec: 200_000}); err != nil {
		t.Fatal(err)
	}
	// More than the largest send buffer and the peer's receive buffer hold.
	huge := make([]byte, 2*sysctl(t, "ipv4/tcp_wmem")[2]+1<<20)
	k, err := unix.Write(c, huge)
	if err != nil || k <= 0 || k >= len(huge) {
		t.Errorf("blocking write of %d bytes with SO_SNDTIMEO = %d, %v; want a short count", len(huge), k, err)
	}
	t.Logf("a blocking write of %d bytes with a 200 ms SO_SNDTIMEO returned %d", len(huge), k)
}

// syncBuffer is a strings.Builder that one goroutine writes while another
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// waitOutput waits until out contains text.
func waitOutput(t *testing.T, out *syncBuffer, text string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(out.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in:\n%s", text, out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestWriteAllNonblocking: the program's writeAll on a non-blocking socket
// with a full send buffer: a short write, EAGAIN, poll until there is room;
// every byte arrives, in order, once the peer reads.
func TestWriteAllNonblocking(t *testing.T) {
	booktest.CheckFDs(t)
	c, s := connPair(t, func(fd int) {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
			t.Fatal(err)
		}
	})
	if err := unix.SetNonblock(c, true); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	var out syncBuffer
	done := make(chan error, 1)
	go func() { done <- writeAll(narrator{w: &out, mu: new(sync.Mutex)}, c, big) }()
	// Nobody reads yet, so the writer must come to EAGAIN and wait in poll.
	waitOutput(t, &out, "EAGAIN")
	got := make([]byte, len(big))
	if err := readFull(quiet, s, got); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, big) {
		t.Error("the bytes read differ from those written")
	}
	lines := strings.Split(out.String(), "\n")
	t.Logf("writeAll of 1 MiB, the first calls:\n%s", strings.Join(lines[:min(6, len(lines))], "\n"))
	m := regexp.MustCompile(`^write\(\d+, ".*"\.\.\., 1048576\) = (\d+)$`).FindStringSubmatch(lines[0])
	if k, _ := strconv.Atoi(m[1]); m == nil || k <= 0 || k >= len(big) {
		t.Errorf("first call %q: want a short write of the 1048576 bytes", lines[0])
	}
	if !regexp.MustCompile(`(?m)^write\(.*\) = -1 EAGAIN \(Resource temporarily unavailable\)\npoll\(\[\{fd=\d+, events=POLLOUT\}\], 1, -1\) = 1 \(\[\{fd=\d+, revents=POLLOUT\}\]\)$`).MatchString(out.String()) {
		t.Errorf("no EAGAIN followed by poll in:\n%s", out.String())
	}
}

// TestEOF: once the peer has closed, read returns what was still queued,
// then 0, and 0 again. With nothing sent yet a read does not return 0: a
// blocking one waits (until SO_RCVTIMEO, then EAGAIN), a non-blocking one
// fails with EAGAIN. SIOCINQ is FIONREAD's number, and waitQueued narrates
// the ioctl and gives up when told to. readFull says io.EOF at a message
// boundary and io.ErrUnexpectedEOF inside one.
func TestEOF(t *testing.T) {
	booktest.CheckFDs(t)
	c, s := connPair(t, nil)
	if err := writeAll(quiet, c, []byte("bye\n")); err != nil {
		t.Fatal(err)
	}
	unix.Close(c)
	buf := make([]byte, 16)
	var got []string
	for range 3 {
		k, err := readFD(quiet, s, buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, strconv.Quote(string(buf[:k])))
	}
	if strings.Join(got, " ") != `"bye\n" "" ""` {
		t.Errorf("reads after the peer closed: %v; want \"bye\\n\", then \"\" twice", got)
	}

	// Nothing yet is not 0: a blocking read waits (here until its
	// SO_RCVTIMEO runs out, which it reports as EAGAIN), and a non-blocking
	// one fails with EAGAIN at once.
	_, s = connPair(t, nil) // the client stays open, and silent
	if err := unix.SetsockoptTimeval(s, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 100_000}); err != nil {
		t.Fatal(err)
	}
	if k, err := readFD(quiet, s, buf); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("blocking read with nothing sent = %d, %v; want it to wait, then EAGAIN", k, err)
	}
	if err := unix.SetNonblock(s, true); err != nil {
		t.Fatal(err)
	}
	if k, err := readFD(quiet, s, buf); !errors.Is(err, unix.EAGAIN) {
		t.Errorf("non-blocking read with nothing sent = %d, %v; want EAGAIN", k, err)
	}
	// FIONREAD, the request strace names, is SIOCINQ in x/sys.
	if unix.SIOCINQ != 0x541B {
		t.Errorf("SIOCINQ = %#x, want 0x541B (FIONREAD)", unix.SIOCINQ)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out strings.Builder
	err := waitQueued(ctx, narrator{w: &out, mu: new(sync.Mutex)}, s, 1)
	if want := "0 of 1 bytes arrived"; err == nil || err.Error() != want {
		t.Errorf("waitQueued with nothing sent: %v, want %q", err, want)
	}
	if want := fmt.Sprintf("ioctl(%d, FIONREAD, [0]) = 0\n", s); out.String() != want {
		t.Errorf("waitQueued narrated %q, want %q", out.String(), want)
	}

	c, s = connPair(t, nil)
	if err := writeAll(quiet, c, []byte("half")); err != nil {
		t.Fatal(err)
	}
	unix.Close(c)
	if err := readFull(quiet, s, make([]byte, 8)); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("readFull of 8 when 4 came before EOF: %v, want unexpected EOF", err)
	}
	if err := readFull(quiet, s, make([]byte, 8)); err != io.EOF {
		t.Errorf("readFull after that: %v, want EOF", err)
	}
}

// sysctl reads the numbers in a file under /proc/sys/net.
func sysctl(t *testing.T, name string) []int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var nums []int
	for _, f := range strings.Fields(string(b)) {
		v, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: %q", name, b)
		}
		nums = append(nums, v)
	}
	return nums
}

func bufSizes(t *testing.T, fd int) (rcv, snd int) {
	t.Helper()
	rcv, err1 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	snd, err2 := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	return rcv, snd
}

// TestBufferSizes: a new TCP socket's buffers are the middle numbers of
// tcp_rmem and tcp_wmem; setsockopt doubles what it is given, after capping
// it at rmem_max or wmem_max. Once connected, the kernel grows the send
// buffer of a socket whose size was not set, up to tcp_wmem's maximum, and
// leaves a set one alone; the receive buffer grows as the program reads.
func TestBufferSizes(t *testing.T) {
	booktest.CheckFDs(t)
	rmem, wmem := sysctl(t, "ipv4/tcp_rmem"), sysctl(t, "ipv4/tcp_wmem")
	fd := socket(t)
	if rcv, snd := bufSizes(t, fd); rcv != rmem[1] || snd != wmem[1] {
		t.Errorf("new socket: SO_RCVBUF %d, SO_SNDBUF %d; want tcp_rmem[1] %d, tcp_wmem[1] %d", rcv, snd, rmem[1], wmem[1])
	}
	rmax, wmax := sysctl(t, "core/rmem_max")[0], sysctl(t, "core/wmem_max")[0]
	for _, set := range []int{4096, 10000, 100000, 2 * max(rmax, wmax)} {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, set); err != nil {
			t.Fatal(err)
		}
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, set); err != nil {
			t.Fatal(err)
		}
		if rcv, snd := bufSizes(t, fd); rcv != 2*min(set, rmax) || snd != 2*min(set, wmax) {
			t.Errorf("set %d: SO_RCVBUF %d, SO_SNDBUF %d; want %d, %d", set, rcv, snd, 2*min(set, rmax), 2*min(set, wmax))
		}
	}

	c, s := connPair(t, func(fd int) {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
			t.Fatal(err)
		}
	})
	if _, snd := bufSizes(t, c); snd != 8192 {
		t.Errorf("connected, SO_SNDBUF set to 4096: %d, want 8192", snd)
	}
	_, snd := bufSizes(t, s)
	if snd <= wmem[1] || snd > wmem[2] {
		t.Errorf("accepted, SO_SNDBUF not set: %d, want more than tcp_wmem[1] %d, at most tcp_wmem[2] %d", snd, wmem[1], wmem[2])
	}
	t.Logf("tcp_rmem %v, tcp_wmem %v, rmem_max %d, wmem_max %d; an accepted socket's SO_SNDBUF: %d", rmem, wmem, rmax, wmax, snd)

	c, s = connPair(t, nil)
	big := make([]byte, 16<<20)
	done := make(chan error, 1)
	go func() { done <- writeAll(quiet, c, big) }()
	if err := readFull(quiet, s, big); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rcv, _ := bufSizes(t, s)
	if rcv <= rmem[1] || rcv > rmem[2] {
		t.Errorf("after reading 16 MiB: SO_RCVBUF %d, want more than tcp_rmem[1] %d, at most tcp_rmem[2] %d", rcv, rmem[1], rmem[2])
	}
	t.Logf("SO_RCVBUF after reading 16 MiB: %d", rcv)
}

// TestNetPackage: a socket of our own has Nagle's algorithm on
// (TCP_NODELAY 0); Go's net package turns it off on every TCP connection,
// its Write does the writeAll loop, and its Read turns a read of 0 into
// io.EOF.
func TestNetPackage(t *testing.T) {
	c, _ := connPair(t, nil)
	if v, err := unix.GetsockoptInt(c, unix.IPPROTO_TCP, unix.TCP_NODELAY); err != nil || v != 0 {
		t.Errorf("TCP_NODELAY on our socket: %d, %v; want 0", v, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	peer, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	raw, err := conn.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	raw.Control(func(fd uintptr) {
		if v, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_NODELAY); err != nil || v != 1 {
			t.Errorf("TCP_NODELAY on a net.Dial connection: %d, %v; want 1", v, err)
		}
	})

	big := make([]byte, 16<<20)
	done := make(chan error, 1)
	go func() {
		_, err := io.ReadFull(peer, make([]byte, len(big)))
		done <- err
	}()
	if k, err := conn.Write(big); k != len(big) || err != nil {
		t.Errorf("net.Conn Write of 16 MiB = %d, %v; want all of it", k, err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if k, err := peer.Read(make([]byte, 16)); k != 0 || err != io.EOF {
		t.Errorf("net.Conn Read after the peer closed = %d, %v; want 0, io.EOF", k, err)
	}
}

// startServer runs the server in-process on a port the kernel picks and
// returns its address, its output on stdout and on stderr, and a function
// that stops it and returns run's error.
func startServer(t *testing.T, cfg config) (netip.AddrPort, *syncBuffer, *syncBuffer, func() error) {
	t.Helper()
	cfg.addr = netip.MustParseAddrPort("127.0.0.1:0")
	ctx, cancel := context.WithCancel(booktest.Context(t))
	out := &syncBuffer{}
	done := make(chan error, 1)
	errOut := &syncBuffer{}
	go func() { done <- run(ctx, cfg, out, errOut) }()
	waitOutput(t, out, "listening on ")
	m := regexp.MustCompile(`listening on (\S+)`).FindStringSubmatch(out.String())
	stop := func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(30 * time.Second):
			t.Fatalf("the server did not stop:\n%s", out.String())
			return nil
		}
	}
	return netip.MustParseAddrPort(m[1]), out, errOut, stop
}

// dialTest connects a test socket to addr.
func dialTest(t *testing.T, addr netip.AddrPort) int {
	t.Helper()
	fd := socket(t)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: addr.Addr().As4(), Port: int(addr.Port())}); err != nil {
		t.Fatal(err)
	}
	return fd
}

// TestEchoServer, in-process: the server echoes every line, whatever
// pieces it arrives in, until EOF; it drops a client that sends more than
// maxLine bytes without a newline or that stops in the middle of a line,
// and goes on serving the next one; it reports what went wrong with a
// client on stderr. The client checks every reply.
func TestEchoServer(t *testing.T) {
	booktest.CheckFDs(t)
	addr, out, errOut, stop := startServer(t, config{bufsize: 16, quiet: true})

	var cout strings.Builder
	msgs := []string{"hello", "a stream has no message boundaries", strings.Repeat("x", maxLine-1)}
	for _, batch := range []bool{false, true} {
		cout.Reset()
		if err := run(booktest.Context(t), config{client: true, addr: addr, msgs: msgs, batch: batch, quiet: true}, &cout, &cout); err != nil {
			t.Fatalf("client (batch %v): %v", batch, err)
		}
		var want strings.Builder
		for _, m := range msgs {
			fmt.Fprintf(&want, "echoed %q\n", m+"\n")
		}
		if batch {
			want.Reset()
			fmt.Fprintf(&want, "echoed %q\n", strings.Join(msgs, "\n")+"\n")
		}
		// After the line that names the connection, one line per echo.
		if _, got, _ := strings.Cut(cout.String(), "\n"); got != want.String() {
			t.Errorf("client (batch %v) printed %q, want %q after the connection", batch, cout.String(), want.String())
		}
	}

	// Bytes one at a time, and two lines in one write: the same echo.
	fd := dialTest(t, addr)
	for _, b := range []byte("ab\n") {
		if err := writeAll(quiet, fd, []byte{b}); err != nil {
			t.Fatal(err)
		}
	}
	if err := writeAll(quiet, fd, []byte("cd\nef\n")); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 9)
	if err := readFull(quiet, fd, got); err != nil || string(got) != "ab\ncd\nef\n" {
		t.Errorf("echo of ab, cd, ef = %q, %v", got, err)
	}
	unix.Close(fd)

	// A line that never ends: the server gives up on it after maxLine
	// bytes and closes the connection with the rest unread, which resets
	// it (chapter 8).
	fd = dialTest(t, addr)
	if err := writeAll(quiet, fd, bytes.Repeat([]byte("x"), 2*maxLine)); err != nil {
		t.Fatal(err)
	}
	if err := readFull(quiet, fd, make([]byte, 1)); !errors.Is(err, unix.ECONNRESET) {
		t.Errorf("after %d bytes without a newline: %v, want ECONNRESET", 2*maxLine, err)
	}
	unix.Close(fd)

	// EOF in the middle of a line.
	fd = dialTest(t, addr)
	if err := writeAll(quiet, fd, []byte("half")); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	waitOutput(t, errOut, "end of file after 4 bytes of a line")

	// And the server still serves.
	cout.Reset()
	if err := run(booktest.Context(t), config{client: true, addr: addr, msgs: []string{"still here"}, quiet: true}, &cout, &cout); err != nil {
		t.Fatal(err)
	}
	if err := stop(); err != nil {
		t.Errorf("server: %v", err)
	}
	if !strings.Contains(errOut.String(), ": no newline in 1024 bytes\n") {
		t.Errorf("the server did not report the endless line on stderr:\n%s", errOut.String())
	}
	// Errors about one client go to stderr, and only there.
	if strings.Contains(out.String(), "no newline") || strings.Contains(out.String(), "end of file after") {
		t.Errorf("the server printed an error about a client on stdout:\n%s", out.String())
	}
}

// TestClientChecksEcho: a server that answers with other bytes makes the
// client fail, naming what it sent and what came back.
func TestClientChecksEcho(t *testing.T) {
	booktest.CheckFDs(t)
	ln := socket(t)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		t.Fatal(err)
	}
	sa, _ := unix.Getsockname(ln)
	addr := netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(sa.(*unix.SockaddrInet4).Port))
	served := make(chan struct{})
	defer func() { unix.Shutdown(ln, unix.SHUT_RDWR); <-served }()
	go func() {
		defer close(served)
		fd, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
		if err != nil {
			return
		}
		defer unix.Close(fd)
		line := make([]byte, 6)
		if readFull(quiet, fd, line) == nil {
			writeAll(quiet, fd, bytes.ToUpper(line))
		}
	}()
	err := run(booktest.Context(t), config{client: true, addr: addr, msgs: []string{"hello"}, quiet: true}, io.Discard, io.Discard)
	if want := addr.String() + `: sent "hello\n", got back "HELLO\n"`; err == nil || err.Error() != want {
		t.Errorf("client: %v, want %s", err, want)
	}
}

// TestInterrupt: Ctrl-C ends a client that waits in read for an echo (the
// server is busy with another client) and a server that waits in read for
// a client that sends nothing; both exit with status 0, closing what they
// opened.
func TestInterrupt(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server")
	hold := s.Spawn("hold", "-client", "-hold", "-addr", srv.Addr())
	hold.WaitFor("sending nothing until Ctrl-C")
	srv.WaitFor("accept4(3,")
	waiting := s.Spawn("client", "-client", "-addr", srv.Addr())
	waiting.WaitFor(`write(3, "hello\n", 6) = 6`)
	waiting.Interrupt()
	srv.Interrupt()
	hold.Interrupt()
	for _, c := range []struct {
		p    *booktest.Proc
		want []string
	}{
		{waiting, []string{"shutdown(3, SHUT_RDWR) = 0\n" + `read(3, "", 6) = 0` + "\nclose(3) = 0\n"}},
		{srv, []string{"shutdown(4, SHUT_RDWR) = 0", `read(4, "", 4096) = 0` + "\nclose(4) = 0\n", "shutdown(3, SHUT_RDWR) = 0", "close(3) = 0\n"}},
		{hold, []string{"shutdown(3, SHUT_RDWR) = 0\nclose(3) = 0\n"}},
	} {
		if code := c.p.ExitCode(); code != 0 {
			t.Errorf("exit status %d after Ctrl-C, want 0:\n%s", code, c.p.Output())
		}
		for _, want := range c.want {
			if !strings.Contains(c.p.Output(), want) {
				t.Errorf("no %q in:\n%s", want, c.p.Output())
			}
		}
	}
}

// TestNonblockingClient: with -timeout the client's socket is non-blocking,
// so its reads and writes may fail with EAGAIN; readFull and writeAll wait
// in poll and the echoes still check out.
func TestNonblockingClient(t *testing.T) {
	booktest.CheckFDs(t)
	addr, _, _, stop := startServer(t, config{bufsize: 4096, quiet: true})
	var out strings.Builder
	msgs := []string{"one", strings.Repeat("y", maxLine-1)}
	err := run(booktest.Context(t), config{client: true, addr: addr, timeout: 10 * time.Second, msgs: msgs}, &out, &out)
	if err != nil {
		t.Fatalf("client: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), "SOCK_NONBLOCK") || strings.Count(out.String(), "echoed ") != 2 {
		t.Errorf("want a non-blocking socket and two echoes:\n%s", out.String())
	}
	if err := stop(); err != nil {
		t.Error(err)
	}
}

// TestBuffersHoldData: what the chapter's ss experiment shows. A connection
// the server has not accepted yet takes data; the sender's write returns
// before any program has read a byte; the bytes wait in the receiver's
// receive buffer and the sender's send buffer, and together those hold all
// of them.
func TestBuffersHoldData(t *testing.T) {
	booktest.CheckFDs(t)
	ln := socket(t)
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 1); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(ln)
	if err != nil {
		t.Fatal(err)
	}
	c := socket(t)
	if err := unix.Connect(c, sa); err != nil {
		t.Fatal(err)
	}
	const total = 1_000_000
	done := make(chan error, 1)
	go func() { done <- writeAll(quiet, c, bytes.Repeat([]byte("x"), total)) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		_, snd := bufSizes(t, c)
		t.Fatalf("a write of %d bytes to a connection nobody reads did not return (SO_SNDBUF %d)", total, snd)
	}
	s, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(closeIfSame(t, s))
	var inq, outq int
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		inq, _ = unix.IoctlGetInt(s, unix.SIOCINQ)
		outq, _ = unix.IoctlGetInt(c, unix.SIOCOUTQ)
		if inq+outq == total {
			break
		}
	}
	if inq == 0 || outq == 0 || inq+outq != total {
		t.Errorf("receive queue %d + send queue %d; want both used, and %d in all", inq, outq, total)
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
