//go:build grade && linux

// The graders of chapter 5's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names), plays the
// client with its own sockets on loopback or runs the program's client, and
// reads the server's narration: which descriptor accept4 returned for which
// client, and what the server then did with it. So it grades any copy of
// the program, whatever its code. Run them with
//
//	go run ./tools/grade 05
//	go run ./tools/grade -program DIR 05
//
// They decide by events and their order, never by how long something took.
// Descriptor numbers are read from the narration, not assumed. Every wait
// is bounded by waitLimit.
package grade

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/socket-to-server/book/tools/booktest"
)

// waitLimit bounds every wait of the graders' own. The program's answers
// take milliseconds; only the 5-second receive timeout of exercise 2 is
// slower.
const waitLimit = 15 * time.Second

// readTimeout is the receive timeout exercise 2 asks for.
const readTimeout = 5 * time.Second

// Exercise 1: after each client's close the server prints "client N done",
// counting from 1, and every accept4 returns the same descriptor.
func TestExercise1CountClients(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server")
	var clients []string
	for range 3 {
		c := dial(t, srv)
		clients = append(clients, c.LocalAddr().String())
		converse(t, srv, c, "hello")
	}
	// The third client has read end of file, so the server has closed its
	// descriptor; once the server has stopped, all it printed is in.
	stop(t, srv)
	out := srv.Output()

	if !regexp.MustCompile(`(?m)^client \d+ done$`).MatchString(out) {
		t.Fatalf("the server served 3 clients but printed no %q line: count the clients in the accept loop and print %q after each close; its output:\n%s",
			"client 1 done", "client N done", out)
	}
	var fds []string
	for i, addr := range clients {
		conn := connection(t, out, addr)
		fds = append(fds, conn.fd)
		closed := conn.index(fmt.Sprintf("close(%s) = 0", conn.fd))
		if closed < 0 {
			t.Fatalf("the server never printed close(%s) = 0 for client %d (%s); its output:\n%s", conn.fd, i+1, addr, out)
		}
		done := fmt.Sprintf("client %d done", i+1)
		if at := conn.index(done); at < 0 {
			t.Fatalf("after client %d's close(%s) = 0 the server printed no %q before its next accept4, want one after each close; its output:\n%s",
				i+1, conn.fd, done, out)
		} else if at < closed {
			t.Fatalf("the server printed %q before close(%s) = 0, want it after the close; its output:\n%s", done, conn.fd, out)
		}
	}
	for _, fd := range fds[1:] {
		if fd != fds[0] {
			t.Errorf("accept4 returned %s for the three clients, want the same number each time, the lowest free one: close each client's descriptor before the next accept4; the server's output:\n%s",
				strings.Join(fds, ", "), out)
			break
		}
	}
}

// Exercise 2: each accepted socket has a 5-second receive timeout, so a
// client that says nothing loses its turn: its read fails with EAGAIN, the
// server prints the error, closes it and answers the next client.
func TestExercise2DontWaitForEver(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server")
	silent := dial(t, srv)
	quiet := silent.LocalAddr().String()
	fd := waitAccepted(t, srv, quiet)

	// Where the kernel lets us look, decide at once: once the server waits
	// in read for the silent client, that socket's timeout is set or never
	// will be. Elsewhere the behaviour below decides, 5 seconds later.
	if got, ok := waitingReadTimeout(srv, quiet, fd); ok && got != readTimeout {
		what := fmt.Sprintf("its receive timeout (SO_RCVTIMEO) is %v", got)
		if got == 0 {
			what = "it has no receive timeout (SO_RCVTIMEO is 0)"
		}
		t.Fatalf("the server waits in read(%s) for a client that sends nothing, and %s, want %v: set it with unix.SetsockoptTimeval on each accepted socket before reading; the server's output:\n%s",
			fd, what, readTimeout, output(srv))
	}

	c := dial(t, srv)
	talker := c.LocalAddr().String()
	send(t, c, "hello\n")
	got, err := recvLine(bufio.NewReader(c))
	if err != nil {
		out := output(srv)
		t.Fatalf("while one client stayed silent, a second client got no reply (%v): give each accepted socket a %v receive timeout (SO_RCVTIMEO), so that a silent client loses its turn; the server's output:\n%s%s",
			describe(err), readTimeout, out, eintr(out))
	}
	if want := fmt.Sprintf("hi %s, you said %q", talker, "hello"); got != want {
		t.Fatalf("the second client's reply was %q, want %q", got, want)
	}
	waitAccepted(t, srv, talker)
	out := srv.Output()
	conn := connection(t, out, quiet)
	eagain := fmt.Sprintf(`read(%s, "", 1024) = -1 EAGAIN (Resource temporarily unavailable)`, fd)
	if conn.index(eagain) < 0 {
		t.Fatalf("the server gave up on the silent client (%s) without the line\n  %s\nwant its read to fail with EAGAIN, which is what SO_RCVTIMEO does; the server's output:\n%s%s",
			quiet, eagain, out, eintr(out))
	}
	if conn.index(fmt.Sprintf("close(%s) = 0", fd)) < 0 {
		t.Errorf("the server did not close the silent client's descriptor (no close(%s) = 0) before it accepted the next client; its output:\n%s", fd, out)
	}
	if !regexp.MustCompile(`(?mi)^[^(\n]*` + regexp.QuoteMeta(quiet) + `\S*:.*resource temporarily unavailable`).MatchString(conn.text) {
		t.Errorf("the server did not print the error for the silent client, want a line such as %q; its output:\n%s",
			"read "+quiet+": resource temporarily unavailable", out)
	}
	// Having given up on it, the server closed it: the silent client reads
	// end of file.
	if b, err := io.ReadAll(silent); len(b) != 0 {
		t.Errorf("the server sent %q to the client that sent nothing, want it to close that connection; its output:\n%s", b, output(srv))
	} else if err != nil {
		t.Errorf("after the timeout the silent client's connection was not closed (%v); the server's output:\n%s", describe(err), output(srv))
	}
	if t.Failed() {
		return
	}

	// What a real server meets next. First, no client at all for longer
	// than the timeout: the timeout is for a client's read, and a server
	// with nobody to serve must go on waiting in accept4.
	c.Close()
	if !waitUntil(func() bool { return connection(nil, srv.Output(), talker).closed() }) {
		t.Fatalf("the second client closed its connection, and the server did not close its end (no close(N) = 0 for %s); its output:\n%s", talker, output(srv))
	}
	time.Sleep(readTimeout + time.Second)
	if exited(srv.Pid()) {
		t.Fatalf("the server stopped after %v with no client: a receive timeout on the listening socket makes accept4 fail with EAGAIN too (and accepted sockets inherit it from the listener, which is why the silent client was still dropped); set SO_RCVTIMEO on each accepted socket, not on the listening one; the server's output:\n%s",
			readTimeout+time.Second, output(srv))
	}
	// A client that resets its connection (it crashed, say) costs the
	// server nothing but that client.
	reset := dial(t, srv)
	resetAddr := reset.LocalAddr().String()
	reset.SetLinger(0) // close sends RST, not FIN
	reset.Close()
	// And the next client is served as the first was.
	next := dial(t, srv)
	converse(t, srv, next, "hello")
	// The reply has come, but the server's narration of it may still be on
	// its way through the pipe: wait for it before judging.
	served := func() bool { return connection(nil, srv.Output(), next.LocalAddr().String()).fd != "" }
	if !waitUntil(served) || exited(srv.Pid()) {
		t.Fatalf("after a client (%s) reset its connection, the server did not serve the next one; its output:\n%s", resetAddr, output(srv))
	}

	// A signal while the server waits in read: Go's runtime sends them
	// (SIGURG) whenever it likes; here the grader sends one, to the thread
	// blocked in that read. A read on a socket with SO_RCVTIMEO is never
	// restarted, so it fails with EINTR, and the server must read again.
	last := dial(t, srv)
	lastAddr := last.LocalAddr().String()
	lastFD := waitAccepted(t, srv, lastAddr)
	if tid, ok := readingThread(srv, lastAddr, lastFD); ok {
		if err := unix.Tgkill(srv.Pid(), tid, unix.SIGURG); err != nil {
			t.Fatalf("tgkill SIGURG: %v", err)
		}
		// Let the signal land before the line does: wait until the
		// thread is back in read, or the server has printed its end.
		readingThread(srv, lastAddr, lastFD)
	}
	converse(t, srv, last, "hello")
	stop(t, srv)
}

// readingThread waits until a thread of the server is blocked in read(fd),
// the descriptor of the client at addr, with no signal pending, and
// returns its id; ok is false if the kernel does not show this process the
// server's threads, or the server printed the end of that read first.
func readingThread(srv *booktest.Proc, addr, fd string) (tid int, ok bool) {
	n, err := strconv.Atoi(fd)
	if err != nil {
		return 0, false
	}
	waitUntil(func() bool {
		files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", srv.Pid()))
		if len(files) == 0 {
			return true
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			fields := strings.Fields(string(b))
			if err != nil || len(fields) < 2 || fields[0] != strconv.Itoa(unix.SYS_READ) {
				continue
			}
			arg, err := strconv.ParseUint(strings.TrimPrefix(fields[1], "0x"), 16, 64)
			status, _ := os.ReadFile(filepath.Join(filepath.Dir(f), "status"))
			if err == nil && arg == uint64(n) && strings.Contains(string(status), "\nSigPnd:\t0000000000000000\n") {
				tid, _ = strconv.Atoi(filepath.Base(filepath.Dir(f)))
				ok = true
				return true
			}
		}
		return strings.Contains(connection(nil, srv.Output(), addr).text, "\nread("+fd+",")
	})
	return tid, ok
}

// eintr explains an EINTR in the server's output.
func eintr(out string) string {
	if !strings.Contains(out, "EINTR") {
		return ""
	}
	return "\nA read failed with EINTR: with SO_RCVTIMEO set, Linux never restarts a read that a signal interrupted, and Go's runtime signals its own threads (SIGURG) at any moment. Call read again when it fails with EINTR, as chapter 7 does."
}

// Exercise 4: the server answers every line of a connection until the
// client closes its end; the client's -lines N sends N lines on each
// connection, waiting for each reply; with -n 2 -lines 3 the server is done
// with the first connection before it accepts the second.
func TestExercise4MoreThanOneLine(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server")

	// The server, with a client of our own.
	c := dial(t, srv)
	me := c.LocalAddr().String()
	converse(t, srv, c, "one", "two", "three")
	checkServed(t, srv, me, []string{"one", "two", "three"}, "our own client's three lines")

	// The program's client.
	cl := runClient(t, s, srv, 1, "-client", "-addr", srv.Addr(), "-lines", "3")
	checkServed(t, srv, cl[0], []string{"hello", "hello", "hello"}, "the client's connection with -lines 3")

	cl = runClient(t, s, srv, 2, "-client", "-addr", srv.Addr(), "-n", "2", "-lines", "3")
	for i, addr := range cl {
		checkServed(t, srv, addr, []string{"hello", "hello", "hello"}, fmt.Sprintf("connection %d of the client with -n 2 -lines 3", i+1))
	}
	out := srv.Output()
	first, second := connection(t, out, cl[0]), connection(t, out, cl[1])
	if second.at < first.at {
		t.Fatalf("with -n 2 -lines 3 the server accepted the client's second connection (%s) before its first (%s), want them in the order the client used them; its output:\n%s", cl[1], cl[0], out)
	}
}

// --- the server's narration ---

// A conn is what the server printed for one client: from the accept4 that
// returned its descriptor up to the next accept4 (or the end).
type conn struct {
	fd   string // the descriptor accept4 returned, as printed
	at   int    // where its accept4 line starts in the output
	text string // from the accept4 line, up to the next
}

var acceptRE = regexp.MustCompile(`(?m)^accept4\(\d+, (\S+), [^)]*\) = (\d+)$`)

// connection finds what the server printed for the client at addr. With
// t nil, a client not yet accepted gives the zero conn.
func connection(t *testing.T, out, addr string) conn {
	if t != nil {
		t.Helper()
	}
	all := acceptRE.FindAllStringSubmatchIndex(out, -1)
	for i, m := range all {
		if out[m[2]:m[3]] != addr {
			continue
		}
		end := len(out)
		if i+1 < len(all) {
			end = all[i+1][0]
		}
		return conn{fd: out[m[4]:m[5]], at: m[0], text: out[m[0]:end]}
	}
	if t != nil {
		t.Fatalf("the server printed no line accept4(..., %s, SOCK_CLOEXEC) = N for the client at %s; its output:\n%s", addr, addr, out)
	}
	return conn{at: -1}
}

// index is where line starts, as a whole line, in c's text; -1 if nowhere.
func (c conn) index(line string) int {
	return strings.Index("\n"+c.text+"\n", "\n"+line+"\n")
}

// closed reports whether the server has printed the close of c's
// descriptor.
func (c conn) closed() bool {
	return c.fd != "" && c.index(fmt.Sprintf("close(%s) = 0", c.fd)) >= 0
}

// checkServed checks the server's narration for the client at addr, which
// has ended its side of the connection: a read of each line and a write of
// its answer, in turn, then a read of 0 (end of file) and the close.
func checkServed(t *testing.T, srv *booktest.Proc, addr string, lines []string, what string) {
	t.Helper()
	// The server prints its close soon after the client's end of file.
	waitUntil(func() bool { return connection(nil, srv.Output(), addr).closed() })
	out := srv.Output()
	c := connection(t, out, addr)
	var want, got []string
	for _, l := range lines {
		reply := fmt.Sprintf("hi %s, you said %q\n", addr, l)
		want = append(want,
			fmt.Sprintf("read(%s, %q, 1024) = %d", c.fd, l+"\n", len(l)+1),
			fmt.Sprintf("write(%s, %q, %d) = %d", c.fd, reply, len(reply), len(reply)))
	}
	want = append(want, fmt.Sprintf(`read(%s, "", 1024) = 0`, c.fd), fmt.Sprintf("close(%s) = 0", c.fd))
	for _, l := range strings.Split(c.text, "\n") {
		for _, call := range []string{"read(", "write(", "close("} {
			if strings.HasPrefix(l, call+c.fd+",") || strings.HasPrefix(l, call+c.fd+")") {
				got = append(got, l)
			}
		}
	}
	for i := range want {
		switch {
		case i >= len(got):
			t.Fatalf("for %s the server printed\n  %s\nthen nothing more, want\n  %s\n(one read and one write per line, then a read of 0, end of file, and the close); its output:\n%s",
				what, strings.Join(got, "\n  "), strings.Join(want[i:], "\n  "), out)
		case got[i] != want[i]:
			hint := ""
			if strings.HasPrefix(got[i], "read(") && strings.Contains(got[i], "EAGAIN") {
				hint = "\nThat read timed out: the client never ended the connection (close, or shutdown with SHUT_WR) once its lines were answered."
			}
			t.Fatalf("for %s the server printed\n  %s\nwhere it should print\n  %s\n(one read and one write per line, then a read of 0, end of file, and the close).%s All it printed for that connection:\n  %s",
				what, got[i], want[i], hint, strings.Join(got, "\n  "))
		}
	}
}

// --- the program's client ---

var replyRE = regexp.MustCompile(`(?m)^hi (127\.0\.0\.1:\d+), you said "hello"$`)

// runClient runs the program's client with args to its end, which must come
// within waitLimit, with exit status 0 and one reply per line on each of
// its conns connections, and returns the addresses the replies name, one
// per connection, in order.
func runClient(t *testing.T, s *booktest.Session, srv *booktest.Proc, conns int, args ...string) []string {
	t.Helper()
	with := strings.Join(args[3:], " ") // after -client -addr ADDR
	p := s.Spawn("client", args...)
	ended := waitUntil(func() bool { return exited(p.Pid()) })
	replies := replyRE.FindAllStringSubmatch(p.Output(), -1)
	if !ended {
		t.Fatalf("with %s the client was still running after %v, with %s of %d: the server answers a connection until it reads end of file, and accepts the next only after that, so the client must end each connection (close, or shutdown with SHUT_WR) once its lines are answered, before it starts the next; the client's output:\n%s\nthe server's output:\n%s",
			with, waitLimit, count(len(replies), "reply", "replies"), 3*conns, p.Output(), output(srv))
	}
	p.Wait() // it has ended: this returns once all it printed is read
	out := p.Output()
	// Counted again: before Wait, the last lines may still have been on
	// their way through the pipe.
	replies = replyRE.FindAllStringSubmatch(out, -1)
	if m := regexp.MustCompile(`flag provided but not defined: (\S+)`).FindStringSubmatch(out); m != nil {
		t.Fatalf("the client has no %s flag yet: with %s it printed %q", m[1], with, m[0])
	}
	if code := p.ExitCode(); code != 0 {
		t.Fatalf("with %s the client exited with status %d, want 0; its output:\n%s", with, code, out)
	}
	if len(replies) != 3*conns {
		t.Fatalf("with %s the client printed %s, want %d (the plain lines %q, one per line sent); its output:\n%s",
			with, count(len(replies), "reply", "replies"), 3*conns, `hi 127.0.0.1:PORT, you said "hello"`, out)
	}
	var addrs []string
	for i, r := range replies {
		if i%3 == 0 {
			addrs = append(addrs, r[1])
		} else if r[1] != addrs[len(addrs)-1] {
			t.Fatalf("with %s reply %d came on a new connection (%s, after %s), want the three lines of a connection answered on it; the client's output:\n%s",
				with, i+1, r[1], addrs[len(addrs)-1], out)
		}
	}
	return addrs
}

// exited reports whether process pid has ended: it is gone, or a zombie
// not yet reaped.
func exited(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	// The state is the field after the command, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// --- the kernel's view of the server ---

// waitingReadTimeout waits until a thread of the server is blocked in
// read(fd), the descriptor of the client at addr, and returns that
// socket's receive timeout. ok is false when the kernel does not let this
// process look (/proc/PID/task/TID/syscall, pidfd_getfd), or when the
// server never blocks in that read: then the program's behaviour decides.
func waitingReadTimeout(srv *booktest.Proc, addr, fd string) (timeout time.Duration, ok bool) {
	n, err := strconv.Atoi(fd)
	if err != nil {
		return 0, false
	}
	blocked := false
	waitUntil(func() bool {
		var seen bool
		blocked, seen = inRead(srv.Pid(), n)
		// Stop looking if the kernel will not say, or if the server has
		// already printed the end of that read.
		return blocked || !seen || strings.Contains(connection(nil, srv.Output(), addr).text, "\nread("+fd+",")
	})
	if !blocked {
		return 0, false
	}
	pidfd, err := unix.PidfdOpen(srv.Pid(), 0)
	if err != nil {
		return 0, false
	}
	defer unix.Close(pidfd)
	// A copy of the server's descriptor: the same socket, so the same
	// options. Closed at once, so that the server's close still ends the
	// connection.
	dup, err := unix.PidfdGetfd(pidfd, n, 0)
	if err != nil {
		return 0, false
	}
	defer unix.Close(dup)
	tv, err := unix.GetsockoptTimeval(dup, unix.SOL_SOCKET, unix.SO_RCVTIMEO)
	if err != nil {
		return 0, false
	}
	return time.Duration(tv.Nano()), true
}

// inRead reports whether a thread of process pid is blocked in read(fd);
// seen is false if the kernel does not show this process its threads'
// system calls.
func inRead(pid, fd int) (blocked, seen bool) {
	files, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", pid))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		seen = true
		// "NR ARG1 ARG2 ...": the call's number in decimal, then its
		// arguments in hex; "running" for a thread not in a system call.
		fields := strings.Fields(string(b))
		if len(fields) < 2 || fields[0] != strconv.Itoa(unix.SYS_READ) {
			continue
		}
		if arg, err := strconv.ParseUint(strings.TrimPrefix(fields[1], "0x"), 16, 64); err == nil && arg == uint64(fd) {
			return true, true
		}
	}
	return false, seen
}

// --- our own clients ---

// dial connects to the server, or fails the test.
func dial(t *testing.T, srv *booktest.Proc) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.Addr(), waitLimit)
	if err != nil {
		t.Fatalf("could not connect to the server at %s: %v; its output:\n%s", srv.Addr(), err, srv.Output())
	}
	t.Cleanup(func() { c.Close() })
	// No read on this connection waits for longer.
	c.SetReadDeadline(time.Now().Add(waitLimit))
	return c.(*net.TCPConn)
}

// converse sends each line on c and reads its reply, then closes c's
// sending end and reads until the server closes the connection.
func converse(t *testing.T, srv *booktest.Proc, c *net.TCPConn, lines ...string) {
	t.Helper()
	local := c.LocalAddr().String()
	r := bufio.NewReader(c)
	for i, msg := range lines {
		send(t, c, msg+"\n")
		got, err := recvLine(r)
		if err != nil {
			out := output(srv)
			if i == 0 {
				t.Fatalf("no reply to the line %q (%v); the server's output:\n%s%s", msg, describe(err), out, eintr(out))
			}
			t.Fatalf("the server answered the first line but not line %d, %q, on the same connection (%v): serve must answer every line until the client closes its end (a read of 0); the server's output:\n%s%s",
				i+1, msg, describe(err), out, eintr(out))
		}
		if want := fmt.Sprintf("hi %s, you said %q", local, msg); got != want {
			t.Fatalf("the reply to %q was %q, want %q", msg, got, want)
		}
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if len(rest) != 0 {
		t.Fatalf("after the client closed its end the server sent %q, want it to close the connection; its output:\n%s", rest, output(srv))
	}
	if err != nil {
		t.Fatalf("after the client closed its end the server did not close the connection (%v); its output:\n%s", describe(err), output(srv))
	}
}

func send(t *testing.T, c net.Conn, text string) {
	t.Helper()
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatalf("sending %q to the server: %v", text, err)
	}
}

// recvLine reads one line from the server, without its newline.
func recvLine(r *bufio.Reader) (string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

// describe says in a student's words why a read from the server failed.
func describe(err error) string {
	switch {
	case err == nil:
		return "no error"
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
		return "the server closed the connection"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Sprintf("nothing came within %v", waitLimit)
	}
	return err.Error()
}

// waitAccepted waits until the server has printed the accept4 of the
// client at addr, and returns the descriptor it got.
func waitAccepted(t *testing.T, srv *booktest.Proc, addr string) string {
	t.Helper()
	var c conn
	if !waitUntil(func() bool { c = connection(nil, srv.Output(), addr); return c.fd != "" }) {
		t.Fatalf("the server printed no line accept4(..., %s, SOCK_CLOEXEC) = N within %v of that client's connect; its output:\n%s", addr, waitLimit, srv.Output())
	}
	return c.fd
}

// stop sends Ctrl-C (SIGINT) to the server, which must exit with status 0.
func stop(t *testing.T, srv *booktest.Proc) {
	t.Helper()
	srv.Interrupt()
	if code := srv.ExitCode(); code != 0 {
		t.Fatalf("after Ctrl-C (SIGINT) the server exited with status %d, want 0; its output:\n%s", code, srv.Output())
	}
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
// for lines still on their way through the pipe, such as those a server
// printed just before the event the grader saw.
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

// count says "1 reply", "2 replies".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
