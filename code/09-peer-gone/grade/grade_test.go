//go:build grade && linux

// The graders of chapter 9's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names), plays the
// other side with its own sockets on loopback, and reads the program's
// narration. So it grades any copy of the program, whatever its code. Run
// them with
//
//	go run ./tools/grade 09
//	go run ./tools/grade -program DIR 09
//
// A peer that vanishes needs root and network namespaces (the chapter's own
// tests build them); these graders need neither. They decide what loopback
// can show, by events and their order: what the program printed and before
// what, what arrived on a socket. Each wait of their own is bounded by
// waitLimit, booktest's by its own limits. What only a vanished peer shows
// (tcpi_probes climbing to 3, a read that fails with ETIMEDOUT after
// -later) the chapter leaves to be checked by hand.
package grade

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
	"golang.org/x/sys/unix"
)

// waitLimit bounds every wait of the graders' own. The program's answers
// take milliseconds; the slowest event waited for, the kernel dropping a
// connection under a 1-second TCP_USER_TIMEOUT, takes about 2 seconds.
const waitLimit = 15 * time.Second

// Exercise 1: after end of file, -close write-after-eof writes five times,
// and waits for the reset (poll) once, after the first: one write returns
// its count, four fail with EPIPE.
func TestExercise1CountTheFailures(t *testing.T) {
	t.Parallel()
	s := booktest.NewGrader(t)
	ln := listen(t)
	cl := s.Spawn("client", "-client", "-close", "write-after-eof", "-addr", ln.Addr().String())

	// Be the server that has closed: echo the client's line, then close.
	c := accept(t, ln, cl)
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("the client connected but sent no line (%v); its output:\n%s", describe(err), output(cl))
	}
	if _, err := io.WriteString(c, line); err != nil {
		t.Fatalf("echoing the client's line: %v", err)
	}
	c.Close()
	cl.Wait()
	out := cl.Output()
	exited(t, cl, "-client -close write-after-eof")

	m := regexp.MustCompile(`(?m)^read\((\d+), "", \d+\) = 0$`).FindStringSubmatchIndex(out)
	if m == nil {
		t.Fatalf("the client never narrated the read that returns 0 (end of file) once the server had closed, such as %q; its output:\n%s",
			`read(3, "", 4096) = 0`, out)
	}
	fd := out[m[2]:m[3]]
	after := callsOn(out[m[1]:], fd)
	var writes, polls []int // where in after
	for i, l := range after {
		switch {
		case writeRE.MatchString(l):
			writes = append(writes, i)
		case strings.HasPrefix(l, "poll("):
			polls = append(polls, i)
		}
	}
	calls := strings.Join(after, "\n")
	if len(writes) != 5 {
		t.Fatalf("after end of file the client wrote %s, want 5 (one that returns 13, four that fail with EPIPE); its calls on %s after end of file:\n%s",
			count(len(writes), "time", "times"), fd, calls)
	}
	if r := writeRE.FindStringSubmatch(after[writes[0]])[1]; r == "0" || strings.HasPrefix(r, "-") {
		t.Errorf("the first write after end of file returned %s, want the count of bytes: the server's kernel has not reset the connection yet, so it succeeds; its calls:\n%s", r, calls)
	}
	failed := 0
	for _, i := range writes[1:] {
		if strings.Contains(after[i], "= -1 EPIPE") {
			failed++
		}
	}
	if failed != 4 {
		t.Errorf("of the four writes after the first, %d failed with EPIPE, want all four: once reset, the socket stays broken; its calls:\n%s", failed, calls)
	}
	switch {
	case len(polls) != 1:
		t.Errorf("after end of file the client called poll %s, want once: wait for the reset after the first write only; its calls:\n%s",
			count(len(polls), "time", "times"), calls)
	case polls[0] < writes[0] || polls[0] > writes[1]:
		t.Errorf("the client waits for the reset (poll) somewhere else than between the first and second writes; its calls:\n%s", calls)
	}
}

// Exercise 2: -user-timeout sets TCP_USER_TIMEOUT, in milliseconds, on every
// connected socket, the server's and the client's; -later makes the client
// send one more line after its echo, and read that line's echo.
//
// On loopback no data goes unacknowledged, but since Linux 5.11 the option
// also bounds how long a peer may hold the window at 0: the grader's socket
// advertises a tiny receive buffer and reads nothing, and with the option
// set the server's kernel drops the connection with ETIMEDOUT within
// seconds; without it, it would wait for as long as the grader answers its
// probes. So the option is graded by what it does, not only by what is
// narrated.
func TestExercise2AUserTimeout(t *testing.T) {
	t.Parallel()
	s := booktest.NewGrader(t)
	requireFlags(t, s, "user-timeout", "later")

	// The client's part takes five seconds or so: it runs meanwhile.
	ln := listen(t)
	cl := s.Spawn("client", "-client", "-later", "-user-timeout", "1500ms", "-addr", ln.Addr().String())
	peer := make(chan error, 1)
	go func() { peer <- echoLater(ln) }()

	srv := s.Start("server", "-user-timeout", "1s")
	c := dialSmall(t, srv)
	fd := waitAccepted(t, srv, c)
	r := bufio.NewReader(c)
	send(t, c, "hello\n")
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatalf("with -user-timeout 1s the server did not echo %q (%v); its output:\n%s", "hello\n", describe(err), output(srv))
	}
	checkUserTimeout(t, srv.Output(), fd, "1000", "the server's connected socket", "-user-timeout 1s")

	// Hold the window at 0: send the server far more lines than c's
	// receive buffer holds, and read none of their echoes. The server's
	// kernel keeps the rest of the echoes queued and probes the window.
	c.SetWriteDeadline(time.Now().Add(waitLimit))
	if _, err := io.WriteString(c, strings.Repeat(strings.Repeat("x", 999)+"\n", 64)); err != nil {
		t.Fatalf("sending 64 lines of 1000 bytes to the server: %v; the last of its output:\n%s", err, tail(output(srv), 15))
	}
	accepted := acceptLine(srv.Output(), c)
	gone := regexp.MustCompile(`ETIMEDOUT|(?i:connection timed out)`)
	if !waitUntil(func() bool { return gone.MatchString(srv.Output()[accepted:]) }) {
		t.Errorf("with -user-timeout 1s the server's kernel never dropped a connection whose peer kept its window at 0 for %v (no ETIMEDOUT, \"connection timed out\"): set TCP_USER_TIMEOUT on the accepted socket, in milliseconds (this check needs Linux 5.11 or later); the last of its output:\n%s",
			waitLimit, tail(output(srv), 15))
	}

	// The client's part.
	err := <-peer
	cl.Wait()
	out := cl.Output()
	if err != nil {
		t.Fatalf("with -client -later %v; the client's output:\n%s", err, out)
	}
	exited(t, cl, "-client -later -user-timeout 1500ms")
	if code := cl.ExitCode(); code != 0 {
		t.Fatalf("with -client -later -user-timeout 1500ms the client exited with status %d, want 0: the grader echoed both its lines; its output:\n%s", code, out)
	}
	m := regexp.MustCompile(`(?m)^connect\((\d+), ` + regexp.QuoteMeta(ln.Addr().String()) + `\) = 0$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("the client never narrated its connect(N, %s) = 0; its output:\n%s", ln.Addr(), out)
	}
	checkUserTimeout(t, out, m[1], "1500", "the client's connected socket", "-client -user-timeout 1500ms")
	calls := callsOn(out, m[1])
	lastWrite := -1
	for i, l := range calls {
		if writeRE.MatchString(l) {
			lastWrite = i
		}
	}
	readBack := false
	for _, l := range calls[lastWrite+1:] {
		readBack = readBack || regexp.MustCompile(`^read\(\d+, .*\) = [1-9]`).MatchString(l)
	}
	if !readBack {
		t.Errorf("with -later the client does not read the echo of its late line: want a read after that write (it is the read that fails with ETIMEDOUT when the server has vanished); its calls on %s:\n%s",
			m[1], strings.Join(calls, "\n"))
	}
}

// echoLater plays the server for the -later client: it echoes the client's
// first line, then waits for one more, echoes it, and expects the client
// to close. It runs in its own goroutine, so it reports what went wrong
// rather than failing the test.
func echoLater(ln net.Listener) error {
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(waitLimit))
	c, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("the client did not connect to the grader within %v", waitLimit)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(waitLimit))
	r := bufio.NewReader(c)
	first, err := r.ReadString('\n')
	if err != nil {
		return fmt.Errorf("the client sent no line (%v)", describe(err))
	}
	if r.Buffered() > 0 {
		return fmt.Errorf("the client sent its late line together with %q, want it after the echo", first)
	}
	if _, err := io.WriteString(c, first); err != nil {
		return err
	}
	late, err := r.ReadString('\n')
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("after the echo of %q the client closed the connection without sending one more line", first)
		}
		return fmt.Errorf("after the echo of %q the client sent no other line (%v): -later sends one more, 5 seconds after the echo", first, describe(err))
	}
	if _, err := io.WriteString(c, late); err != nil {
		return err
	}
	if rest, err := io.ReadAll(r); err != nil || len(rest) > 0 {
		return fmt.Errorf("after the echo of its late line the client did not close the connection (read %q, %v)", rest, describe(err))
	}
	return nil
}

// Exercise 4: with -probes the server waits for data in poll, a second at a
// time, and prints tcpi_probes after each timeout; data wakes it to read
// and echo; a reset makes poll report POLLERR|POLLHUP, and the read after
// it fails with ECONNRESET; and the server goes on to serve the next
// client. (A vanished peer's climbing count and ETIMEDOUT are checked by
// hand.)
func TestExercise4WatchTheProbes(t *testing.T) {
	t.Parallel()
	s := booktest.NewGrader(t)
	requireFlags(t, s, "probes")
	srv := s.Start("server", "-keepalive", "1s", "-probes")
	c := dial(t, srv)
	fd := waitAccepted(t, srv, c)
	from := acceptLine(srv.Output(), c)
	q := regexp.QuoteMeta(fd)
	timeoutLine := fmt.Sprintf("poll([{fd=%s, events=POLLIN}], 1, 1000) = 0 (Timeout)", fd)
	probesRE := regexp.MustCompile(`^getsockopt\(` + q + `, SOL_TCP, TCP_INFO\) = \{.*tcpi_probes=\d+.*\}$`)

	// A silent client: the server must poll, not read.
	silent := func() []string { return callsOn(srv.Output()[from:], fd) }
	probes := func(calls []string) int {
		n := 0
		for i, l := range calls {
			if probesRE.MatchString(l) && i > 0 && calls[i-1] == timeoutLine {
				n++
			}
		}
		return n
	}
	if !waitUntil(func() bool { return probes(silent()) >= 2 }) {
		t.Fatalf("while the client stayed silent the server did not print, each second,\n  %s\n  getsockopt(%s, SOL_TCP, TCP_INFO) = {tcpi_probes=0}\n(waited %v); its calls on %s:\n%s",
			timeoutLine, fd, waitLimit, fd, strings.Join(silent(), "\n"))
	}
	for _, l := range silent() {
		if strings.HasPrefix(l, "read(") {
			t.Fatalf("the server called read on a connection that had sent nothing (%s), want it to wait in poll; its calls on %s:\n%s",
				l, fd, strings.Join(silent(), "\n"))
		}
	}

	// Data wakes poll, and the server reads and echoes it.
	send(t, c, "hello\n")
	if got, err := bufio.NewReader(c).ReadString('\n'); err != nil || got != "hello\n" {
		t.Fatalf("with -probes, the server did not echo %q (got %q, %v): when poll reports POLLIN, read and echo; its calls on %s:\n%s",
			"hello\n", got, describe(err), fd, strings.Join(callsOn(output(srv)[from:], fd), "\n"))
	}

	// A reset: poll reports POLLERR|POLLHUP, and the read after it fails.
	resetConn(t, c)
	errRE := regexp.MustCompile(`ECONNRESET|(?i:connection reset by peer)`)
	if !waitUntil(func() bool { return errRE.MatchString(srv.Output()[from:]) }) {
		t.Fatalf("after the client reset the connection the server did not report ECONNRESET within %v: when poll reports POLLERR|POLLHUP, read, and the read fails; its calls on %s:\n%s",
			waitLimit, fd, strings.Join(callsOn(output(srv)[from:], fd), "\n"))
	}
	out := output(srv)[from:]
	calls := callsOn(out[:errRE.FindStringIndex(out)[0]], fd)
	last := ""
	for _, l := range calls {
		if strings.HasPrefix(l, "poll(") {
			last = l
		}
	}
	if !strings.Contains(last, "POLLERR") || !strings.Contains(last, "POLLHUP") {
		t.Errorf("before it reported ECONNRESET the server's last poll was\n  %s\nwant revents with POLLERR|POLLHUP, as poll reports a reset connection; its calls on %s:\n%s",
			last, fd, strings.Join(callsOn(out, fd), "\n"))
	}

	// One client's reset is that client's business: the server closes the
	// connection and serves the next client.
	next := dial(t, srv)
	send(t, next, "next\n")
	if got, err := bufio.NewReader(next).ReadString('\n'); err != nil || got != "next\n" {
		t.Errorf("after one client reset its connection, the -probes server did not echo the next client's %q (got %q, %v): a reset ends that connection, not the server; its output:\n%s",
			"next\n", got, describe(err), tail(output(srv), 15))
	}
}

// writeRE matches a narrated write, sendmsg or send, with its result.
var writeRE = regexp.MustCompile(`^(?:sendmsg|sendto|send|write)\(\d+, .*\) = (-?\d+)`)

// callsOn returns the narrated calls on descriptor fd in out, in order:
// those whose first argument is fd, and poll on fd.
func callsOn(out, fd string) []string {
	re := regexp.MustCompile(`^(?:[a-z0-9_]+\(` + regexp.QuoteMeta(fd) + `[,)]|poll\(\[\{fd=` + regexp.QuoteMeta(fd) + `,)`)
	var calls []string
	for _, l := range strings.Split(out, "\n") {
		if re.MatchString(l) {
			calls = append(calls, l)
		}
	}
	return calls
}

// checkUserTimeout checks that out narrates TCP_USER_TIMEOUT set to ms on
// fd, which is what.
func checkUserTimeout(t *testing.T, out, fd, ms, what, with string) {
	t.Helper()
	want := fmt.Sprintf("setsockopt(%s, SOL_TCP, TCP_USER_TIMEOUT, %s) = 0", fd, ms)
	m := regexp.MustCompile(`(?m)^setsockopt\(` + fd + `, (?:SOL_TCP|IPPROTO_TCP), TCP_USER_TIMEOUT, (-?\d+)\) = (.*)$`).FindStringSubmatch(out)
	switch {
	case m == nil:
		t.Errorf("with %s the narration has no line\n  %s\nfor %s (%s): set TCP_USER_TIMEOUT on it, and narrate the call as the program narrates the others",
			with, want, what, fd)
	case m[1] != ms:
		t.Errorf("with %s, %s has TCP_USER_TIMEOUT %s, want %s: the option counts milliseconds; the line:\n  %s", with, what, m[1], ms, m[0])
	case m[2] != "0":
		t.Errorf("with %s, setting TCP_USER_TIMEOUT on %s failed:\n  %s", with, what, m[0])
	}
}

// requireFlags fails the test at once, with a short message, if the
// program's -h does not list every one of the flags.
func requireFlags(t *testing.T, s *booktest.Session, names ...string) {
	t.Helper()
	out := s.Run("help", "-h").Output()
	var have []string
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z0-9-]*)`).FindAllStringSubmatch(out, -1) {
		have = append(have, "-"+m[1])
	}
	if len(have) == 0 {
		t.Fatalf("with -h the program printed no list of its flags; its output:\n%s", out)
	}
	for _, name := range names {
		found := false
		for _, h := range have {
			found = found || h == "-"+name
		}
		if !found {
			t.Fatalf("the program has no -%s flag yet: its -h lists %s", name, strings.Join(have, " "))
		}
	}
}

// exited fails the test if p was killed by a signal or exited with a status
// that says it crashed (a panic's 2), not with the error of exercise 1 (1)
// or success.
func exited(t *testing.T, p *booktest.Proc, with string) {
	t.Helper()
	switch code := p.ExitCode(); {
	case code < 0:
		t.Fatalf("with %s the program was killed by a signal; its output:\n%s", with, p.Output())
	case code > 1:
		t.Fatalf("with %s the program exited with status %d, want 0 or 1; its output:\n%s", with, code, p.Output())
	}
}

// listen opens the grader's own listening socket, for a client to connect to.
func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// accept takes the connection of the client p, or fails the test.
func accept(t *testing.T, ln net.Listener, p *booktest.Proc) net.Conn {
	t.Helper()
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(waitLimit))
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("the client did not connect to %s within %v; its output:\n%s", ln.Addr(), waitLimit, output(p))
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(waitLimit))
	return c
}

// dial connects to the server, or fails the test.
func dial(t *testing.T, srv *booktest.Proc) net.Conn {
	t.Helper()
	return dialWith(t, srv, net.Dialer{Timeout: waitLimit})
}

// dialSmall connects to the server with the smallest receive buffer the
// kernel allows, set before connect so that the window is small from the
// start: a connection whose window is soon 0.
func dialSmall(t *testing.T, srv *booktest.Proc) net.Conn {
	t.Helper()
	return dialWith(t, srv, net.Dialer{Timeout: waitLimit, Control: func(_, _ string, rc syscall.RawConn) error {
		var err error
		if cerr := rc.Control(func(fd uintptr) {
			err = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 1)
		}); cerr != nil {
			return cerr
		}
		return err
	}})
}

func dialWith(t *testing.T, srv *booktest.Proc, d net.Dialer) net.Conn {
	t.Helper()
	c, err := d.Dial("tcp", srv.Addr())
	if err != nil {
		t.Fatalf("could not connect to the server at %s: %v; its output:\n%s", srv.Addr(), err, output(srv))
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(waitLimit))
	return c
}

// resetConn closes c with SO_LINGER 0, so that its kernel sends RST.
func resetConn(t *testing.T, c net.Conn) {
	t.Helper()
	if err := c.(*net.TCPConn).SetLinger(0); err != nil {
		t.Fatal(err)
	}
	c.Close()
}

func send(t *testing.T, c net.Conn, text string) {
	t.Helper()
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatalf("sending %q to the server: %v", text, err)
	}
}

// acceptRE matches the server's narrated accept of the connection from port.
func acceptRE(c net.Conn) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^accept4?\(\d+, ` + regexp.QuoteMeta(c.LocalAddr().String()) + `[,)].* = (\d+)$`)
}

// waitAccepted waits until the server has narrated accepting c, and
// returns the descriptor it got for it.
func waitAccepted(t *testing.T, srv *booktest.Proc, c net.Conn) string {
	t.Helper()
	re := acceptRE(c)
	if !waitUntil(func() bool { return re.MatchString(srv.Output()) }) {
		t.Fatalf("the server did not narrate accepting the connection from %s (a line such as %q) within %v; its output:\n%s",
			c.LocalAddr(), "accept4(3, "+c.LocalAddr().String()+", SOCK_CLOEXEC) = 4", waitLimit, output(srv))
	}
	return re.FindStringSubmatch(srv.Output())[1]
}

// acceptLine is where in out the narrated accept of c starts.
func acceptLine(out string, c net.Conn) int {
	return acceptRE(c).FindStringIndex(out)[0]
}

// describe says in a student's words why a read from the program failed.
func describe(err error) string {
	switch {
	case err == nil:
		return "no error"
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return "it closed the connection"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Sprintf("nothing came within %v", waitLimit)
	}
	return err.Error()
}

// waitUntil polls cond until it holds or waitLimit has passed, and
// reports whether it held.
func waitUntil(cond func() bool) bool {
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// output is what p has printed, for a failure message: it waits (briefly)
// for lines still on their way through the pipe.
func output(p *booktest.Proc) string {
	out := p.Output()
	for i := 0; i < 20; i++ {
		time.Sleep(50 * time.Millisecond)
		now := p.Output()
		if now == out && i >= 3 {
			break
		}
		out = now
	}
	return out
}

// tail is the last n lines of out.
func tail(out string, n int) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// count says "1 time", "2 times".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
