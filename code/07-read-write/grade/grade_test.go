//go:build grade && linux

// The graders of chapter 7's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names), plays the
// other side with its own sockets on loopback where it needs to, and reads
// the program's narration of its reads and writes. So it grades any copy of
// the program, whatever its code. Run them with
//
//	go run ./tools/grade 07
//	go run ./tools/grade -program DIR 07
//
// They decide by events and their order: what arrived on a socket, and what
// the program narrated before what. A grader that needs the program to have
// read some bytes before it sends more waits for the program to narrate that
// read, not for time to pass. Every wait is bounded by waitLimit.
//
// Exercise 1 asks for no change to the program (it already takes -bufsize
// 1), so it has no grader: it is checked by hand.
package grade

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// waitLimit bounds every wait of the graders' own. The program's answers
// take milliseconds.
const waitLimit = 15 * time.Second

// Exercise 2: after each line it echoes, the server prints how many reads
// brought it, "line of 35 bytes: 3 reads". The grader sends lines so that
// it knows how many reads each takes with -bufsize 16: one write that one
// read takes whole, one that takes three reads, one line in two writes
// (two reads, although 6 bytes fit in 16), and three lines in one read.
func TestExercise2CountThePieces(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server", "-bufsize", "16")
	c := dial(t, srv.Addr(), srv)

	exchange(t, srv, c, "hello\n")
	exchange(t, srv, c, "a stream has no message boundaries\n")
	// "split\n" in two writes: the second only once the server has
	// narrated its read of the first, so that they cannot arrive together.
	send(t, c, "spl")
	waitRead(t, srv, "spl")
	send(t, c, "it\n")
	expectEcho(t, srv, c, "split\n")
	exchange(t, srv, c, "one\ntwo\nthree\n")
	out := closeAndWait(t, srv, c)

	lineRE := regexp.MustCompile(`(?m)^line of (\d+) bytes?: (\d+) reads?$`)
	got := lineRE.FindAllStringSubmatch(out, -1)
	if len(got) == 0 {
		t.Fatalf("the server printed no line like %q: after each line it echoes, make echo print how many reads brought that line; its output for the connection:\n%s",
			"line of 35 bytes: 3 reads", out)
	}
	type want struct {
		size  int
		reads []int // what counts are right, the first the one to show
		why   string
	}
	wants := []want{
		{6, []int{1}, `"hello\n" came in one read`},
		{35, []int{3}, "the 35-byte line came in three reads, of 16, 16 and 3 bytes (-bufsize 16)"},
		{6, []int{2}, `"split\n" came in two reads, "spl" and "it\n", although its 6 bytes fit in 16: count the reads, do not work them out from the size`},
		{4, []int{1}, `"one\n" came in one read, with "two\n" and "three\n"`},
		{4, []int{1, 0}, `"two\n" came in the read that brought "one\n": count it for both lines (1 read) or only for the first (0 reads), as your comment says`},
		{6, []int{1, 0}, `"three\n" came in the read that brought "one\n" and "two\n": count it for every line (1 read) or only for the first (0 reads), as your comment says`},
	}
	var lines []string
	for _, m := range got {
		lines = append(lines, m[0])
	}
	if len(got) != len(wants) {
		t.Fatalf("the server printed %d %q lines for the %d lines it echoed, want one after each; it printed\n  %s\nits output for the connection:\n%s",
			len(got), "line of N bytes: K reads", len(wants), strings.Join(lines, "\n  "), out)
	}
	for i, w := range wants {
		size, _ := strconv.Atoi(got[i][1])
		n, _ := strconv.Atoi(got[i][2])
		if size != w.size || !slices.Contains(w.reads, n) {
			t.Errorf("line %d: the server printed %q, want %q: %s",
				i+1, got[i][0], fmt.Sprintf("line of %d bytes: %s", w.size, count(w.reads[0], "read", "reads")), w.why)
		}
	}
	// Whichever the comment says, both lines follow the same rule.
	if got[4][2] != got[5][2] {
		t.Errorf("for %q and %q, which came in the same read, the server counted %s and %s, want the same rule for both",
			"two\n", "three\n", got[4][2], got[5][2])
	}
}

// Exercise 3: with -framing len each message is a 4-byte big-endian
// length, then that many bytes (at most 1024). The server reads a header
// with readFull, then the body with readFull, and echoes both; the client
// does likewise. A line client's "hell" (a length of 1,751,477,356) makes
// the server drop the connection, not wait for ever.
func TestExercise3ALengthPrefix(t *testing.T) {
	s := booktest.NewGrader(t)
	requireFlags(t, s, "add -framing len to both sides", "framing")
	srv := s.Start("server", "-framing", "len")

	// The server, with the grader as its client.
	c := dial(t, srv.Addr(), srv)
	hello := frame("hello")
	send(t, c, string(hello))
	expectEcho(t, srv, c, string(hello))
	// The longest message, with its header in two pieces: the second only
	// once the server has read the first, so that its first read of the
	// header returns 2 bytes of the 4.
	long := frame(strings.Repeat("0123456789abcdef", 64))
	send(t, c, string(long[:2]))
	waitRead(t, srv, string(long[:2]))
	send(t, c, string(long[2:]))
	expectEcho(t, srv, c, string(long))
	out := closeAndWait(t, srv, c)
	if problem := framedReads(ioCalls("read", out), []int{5, 1024}); problem != "" {
		t.Fatalf("the server did not read the messages as readFull(header), then readFull(body): %s; its output for the connection:\n%s", problem, out)
	}

	// A line client: its "hell" is a length far over the limit.
	const hell = `its first four bytes, "hell", are a length of 1751477356, over the limit of 1024`
	lc := dial(t, srv.Addr(), srv)
	send(t, lc, "hello\n")
	rest, err := io.ReadAll(lc)
	switch {
	case len(rest) > 0:
		t.Fatalf("a line client sent %q and the server sent back %q, want it to close the connection: %s; its output:\n%s",
			"hello\n", rest, hell, output(srv))
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("a line client sent %q and the server neither answered nor closed the connection within %v: %s; check the length before reading (or allocating) the body, and drop the connection; its output:\n%s",
			"hello\n", waitLimit, hell, output(srv))
	}
	// One client's bad header is that client's problem: the server drops
	// it and serves the next.
	next := dialOrFail(t, srv.Addr(), func(err error) {
		t.Fatalf("after it dropped a client whose header was a length over the limit, the server did not take the next client (%v): one client's bad message must end that connection, not the server; its output:\n%s",
			err, output(srv))
	})
	// (A server on its way out may still complete this handshake; the
	// echo decides.)
	send(t, next, string(hello))
	if got, err := io.ReadAll(io.LimitReader(next, int64(len(hello)))); string(got) != string(hello) {
		t.Fatalf("after it dropped a client whose header was a length over the limit, the server did not echo the next client's message (it sent back %q: %s): one client's bad message must end that connection, not the server; its output:\n%s",
			got, describe(err), output(srv))
	}
	closeAndWait(t, srv, lc)
	closeAndWait(t, srv, next)
	// The program's own line client says so, and does not hang either.
	cl := s.Run("line client", "-client", "-addr", srv.Addr())
	if code := cl.ExitCode(); code == 0 {
		t.Errorf("the program's client without -framing exited with status 0 against a -framing len server, want an error; its output:\n%s", cl.Output())
	}

	// The program's own client, with the server: both framed alike.
	msgs := []string{"hello", "a stream has no message boundaries"}
	cl = s.Run("client", "-client", "-framing", "len", "-addr", srv.Addr(), "-msg", msgs[0], "-msg", msgs[1])
	if code := cl.ExitCode(); code != 0 {
		t.Fatalf("the client with -framing len -msg %q -msg %q exited with status %d, want 0 (both echoes checked); its output:\n%s\nthe server's output:\n%s",
			msgs[0], msgs[1], code, cl.Output(), output(srv))
	}
	if problem := framedReads(ioCalls("read", cl.Output()), []int{len(msgs[0]), len(msgs[1])}); problem != "" {
		t.Errorf("the client did not read the echoes as readFull(header), then readFull(body): %s; its output:\n%s", problem, cl.Output())
	}

	// The program's client, with the grader as its server: what it sends
	// is a big-endian length and the bytes, and it reads an echo that
	// arrives in pieces.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(waitLimit))
	cl = s.Spawn("client", "-client", "-framing", "len", "-addr", ln.Addr().String(), "-msg", "hello")
	sc, err := ln.Accept()
	if err != nil {
		cl.Wait()
		t.Fatalf("the client with -framing len did not connect to a server at %s (%v); its output:\n%s", ln.Addr(), err, cl.Output())
	}
	t.Cleanup(func() { sc.Close() })
	sc.SetDeadline(time.Now().Add(waitLimit))
	header := make([]byte, 4)
	if _, err := io.ReadFull(sc, header); err != nil {
		t.Fatalf("the client with -framing len -msg hello sent no 4-byte header (%v); its output:\n%s", describe(err), output(cl))
	}
	if n := binary.BigEndian.Uint32(header); n != 5 {
		t.Fatalf("the client with -msg hello began with %q, a length of %d, want %q (5, big-endian: encoding/binary's BigEndian); its output:\n%s",
			header, n, hello[:4], output(cl))
	}
	body := make([]byte, 5)
	if _, err := io.ReadFull(sc, body); err != nil || string(body) != "hello" {
		t.Fatalf("after its header the client sent %q (%v), want %q; its output:\n%s", body, describe(err), "hello", output(cl))
	}
	// The echo: the header and "he", then, once the client has read them,
	// "llo". A client that takes one read for the body gets "he".
	send(t, sc, string(hello[:6]))
	waitRead(t, cl, "he")
	send(t, sc, "llo")
	// Nothing more comes: a client still waiting for bytes of its echo
	// gets end of file, not a wait that lasts for ever.
	sc.(*net.TCPConn).CloseWrite()
	cl.Wait()
	if code := cl.ExitCode(); code != 0 {
		t.Fatalf("the client's echo came as its header and %q, then %q, and the client exited with status %d, want 0: read the body with readFull; its output:\n%s", "he", "llo", code, cl.Output())
	}
	if problem := framedReads(ioCalls("read", cl.Output()), []int{5}); problem != "" {
		t.Errorf("the client did not read the echo as readFull(header), then readFull(body): %s; its output:\n%s", problem, cl.Output())
	}
}

// Exercise 4: -sndbuf 4096 sets the client's SO_SNDBUF before connect. On
// the -timeout client's non-blocking socket, a 100,001-byte line then takes
// a short first write and more writes after it, and the echo (through a
// server whose maxLine is 1 MiB) still checks out.
func TestExercise4WatchAShortWrite(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server")
	requireFlags(t, s, "add -sndbuf N to the client", "sndbuf")
	line := strings.Repeat("x", 100000)
	cl := s.Run("client", "-client", "-timeout", "1s", "-sndbuf", "4096", "-addr", srv.Addr(), "-msg", line)
	out := cl.Output()

	setRE := regexp.MustCompile(`(?m)^setsockopt\(\d+, SOL_SOCKET, SO_SNDBUF, 4096\) = 0$`)
	set := setRE.FindStringIndex(out)
	conn := regexp.MustCompile(`(?m)^connect\(`).FindStringIndex(out)
	switch {
	case set == nil:
		t.Fatalf("with -sndbuf 4096 the client narrated no line %q: set SO_SNDBUF with unix.SetsockoptInt and narrate it; its output:\n%s",
			"setsockopt(3, SOL_SOCKET, SO_SNDBUF, 4096) = 0", clip(out))
	case conn != nil && set[0] > conn[0]:
		t.Fatalf("the client set SO_SNDBUF after connect, want before: once connected, the kernel has sized the send buffer; its output:\n%s", clip(out))
	}

	if code := cl.ExitCode(); code != 0 {
		hint, srvOut := "", output(srv)
		if strings.Contains(srvOut, "no newline in") {
			hint = " The server gave up on the line: raise maxLine to 1 MiB."
		}
		t.Fatalf("the client sent a line of 100,000 bytes and exited with status %d, want 0 (its echo checked).%s Its output:\n%s\nthe server's output:\n%s",
			code, hint, clip(out), clip(srvOut))
	}

	writes := ioCalls("write", out)
	if len(writes) == 0 {
		t.Fatalf("the client narrated no write; its output:\n%s", clip(out))
	}
	if first := writes[0]; first.size != len(line)+1 {
		t.Fatalf("the client's first write offered %d bytes, want %d, the line and its newline; its output:\n%s", first.size, len(line)+1, clip(out))
	} else if first.got == first.size {
		t.Fatalf("the client's first write took all %d bytes, want fewer: with SO_SNDBUF at 4096 (8192 once the kernel doubles it), set before connect, the send buffer cannot take them at once; its writes:\n%s",
			first.size, callLines(writes))
	}
	sent, more := 0, 0
	for i, w := range writes {
		if w.got > 0 {
			sent += w.got
			if i > 0 {
				more++
			}
		}
	}
	if sent != len(line)+1 || more == 0 {
		t.Errorf("the client's writes took %d bytes in all, %d of them after the first write, want all %d, the rest in more writes; its writes:\n%s",
			sent, sent-max(writes[0].got, 0), len(line)+1, callLines(writes))
	}
}

// requireFlags fails the test at once if the program's -h does not list
// the flags named (without their dash): the exercise is not done yet.
func requireFlags(t *testing.T, s *booktest.Session, what string, names ...string) {
	t.Helper()
	p := s.Run("help", "-h")
	usage := p.Output()
	if !strings.Contains(usage, "Usage") {
		t.Fatalf("asked for its flags with -h, the program printed no usage (exit status %d); its output:\n%s", p.ExitCode(), usage)
	}
	for _, name := range names {
		if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(name) + `\b`).MatchString(usage) {
			t.Fatalf("the program has no -%s flag yet (its -h does not list it): %s", name, what)
		}
	}
}

// dial connects to addr, or fails the test; p is the program, whose output
// the failure shows.
func dial(t *testing.T, addr string, p *booktest.Proc) net.Conn {
	t.Helper()
	return dialOrFail(t, addr, func(err error) {
		t.Fatalf("could not connect to the server at %s: %v; its output:\n%s", addr, err, output(p))
	})
}

// dialOrFail connects to addr, or calls fail with the error (which must
// end the test).
func dialOrFail(t *testing.T, addr string, fail func(error)) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, waitLimit)
	if err != nil {
		fail(err)
	}
	t.Cleanup(func() { c.Close() })
	// No read on this connection waits for longer.
	c.SetDeadline(time.Now().Add(waitLimit))
	return c
}

func send(t *testing.T, c net.Conn, text string) {
	t.Helper()
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatalf("sending %q: %v", text, err)
	}
}

// exchange sends text in one write and expects it back.
func exchange(t *testing.T, srv *booktest.Proc, c net.Conn, text string) {
	t.Helper()
	send(t, c, text)
	expectEcho(t, srv, c, text)
}

// expectEcho reads len(want) bytes from the server and fails the test
// unless they are want.
func expectEcho(t *testing.T, srv *booktest.Proc, c net.Conn, want string) {
	t.Helper()
	got := make([]byte, len(want))
	n, err := io.ReadFull(c, got)
	if err != nil {
		t.Fatalf("sent %s and got back %s (%v), want all %d bytes; the server's output:\n%s",
			short(want), short(string(got[:n])), describe(err), len(want), output(srv))
	}
	if string(got) != want {
		t.Fatalf("sent %s and got back %s, want the same bytes; the server's output:\n%s", short(want), short(string(got)), output(srv))
	}
}

// closeAndWait closes the grader's connection c to the server and waits
// until the server has closed its end: then all that the server printed
// for that connection is in. It returns that part of the server's output,
// from the accept4 that made the connection to the close(N) that ended it.
func closeAndWait(t *testing.T, srv *booktest.Proc, c net.Conn) string {
	t.Helper()
	local := c.LocalAddr().String()
	c.Close()
	acceptRE := regexp.MustCompile(`(?m)^accept4\(\d+, ` + regexp.QuoteMeta(local) + `, [^)]*\) = (\d+)$`)
	var out string
	if !waitUntil(func() bool {
		all := srv.Output()
		m := acceptRE.FindStringSubmatchIndex(all)
		if m == nil {
			return false
		}
		closeLine := "\nclose(" + all[m[2]:m[3]] + ") = 0\n"
		end := strings.Index(all[m[0]:], closeLine)
		if end < 0 {
			return false
		}
		out = all[m[0] : m[0]+end+len(closeLine)]
		return true
	}) {
		t.Fatalf("after the grader closed its connection from %s, the server did not narrate accept4(..., %s, ...) = N and then close(N) = 0 within %v; its output:\n%s",
			local, local, waitLimit, output(srv))
	}
	return out
}

// An ioCall is one narrated read or write: the size of the buffer, and
// how many bytes it moved (-1 for an error such as EAGAIN).
type ioCall struct {
	line      string
	size, got int
}

// ioCalls returns the program's narrated calls named call, in order. The
// bytes shown are quoted, so the last ", N) = " on a line is the size.
func ioCalls(call, out string) []ioCall {
	re := regexp.MustCompile(`(?m)^` + call + `\(\d+, .*, (\d+)\) = (-?\d+).*$`)
	var calls []ioCall
	for _, m := range re.FindAllStringSubmatch(out, -1) {
		size, _ := strconv.Atoi(m[1])
		got, _ := strconv.Atoi(m[2])
		calls = append(calls, ioCall{m[0], size, got})
	}
	return calls
}

// waitRead waits until p has narrated a read that returned bytes ending
// with tail: the bytes the grader sent last. (Counting p's reads would not
// do: the narration of a read before them may still be on its way through
// the pipe.)
func waitRead(t *testing.T, p *booktest.Proc, tail string) {
	t.Helper()
	q := strconv.Quote(tail)
	re := regexp.MustCompile(`(?m)^read\(\d+, "(?:[^"\\]|\\.)*` + regexp.QuoteMeta(q[1:]) + `, \d+\) = \d+$`)
	if !waitUntil(func() bool { return re.MatchString(p.Output()) }) {
		t.Fatalf("sent %s and the program narrated no read of it within %v, like read(N, %s, SIZE) = %d; its output:\n%s",
			q, waitLimit, q, len(tail), output(p))
	}
}

func callLines(calls []ioCall) string {
	var b strings.Builder
	for _, c := range calls {
		b.WriteString(c.line + "\n")
	}
	return b.String()
}

// framedReads checks that reads took each message (of the sizes given, in
// order) as readFull does: first a read that asks for the 4-byte header,
// then, until all 4 have come, reads that ask for the rest of it; then the
// same for the body. Reads that failed (EAGAIN) are skipped. It says what
// is wrong, or returns "".
func framedReads(reads []ioCall, sizes []int) string {
	i := 0
	for k, size := range sizes {
		for _, part := range []struct {
			what string
			n    int
		}{{"4-byte header", 4}, {fmt.Sprintf("%d-byte body", size), size}} {
			for done := 0; done < part.n; {
				for i < len(reads) && reads[i].got < 0 {
					i++
				}
				if i == len(reads) {
					return fmt.Sprintf("message %d: no read for its %s", k+1, part.what)
				}
				r := reads[i]
				i++
				if want := part.n - done; r.size != want {
					return fmt.Sprintf("message %d: where the narration shows\n  %s\nwant a read that asks for %d bytes, the rest of its %s", k+1, r.line, want, part.what)
				}
				if r.got == 0 {
					return fmt.Sprintf("message %d: end of file in its %s:\n  %s", k+1, part.what, r.line)
				}
				done += r.got
			}
		}
	}
	return ""
}

// frame is a message as -framing len sends it.
func frame(msg string) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(msg))), msg...)
}

// describe says in a student's words why a read failed.
func describe(err error) string {
	switch {
	case err == nil:
		return "no error"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
		return "the other side closed the connection"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Sprintf("nothing more came within %v", waitLimit)
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

// clip shortens the lines of out that are too long to read, such as the
// echo of a 100,000-byte line.
func clip(out string) string {
	lines := strings.SplitAfter(out, "\n")
	for i, l := range lines {
		if len(l) > 120 {
			lines[i] = fmt.Sprintf("%s... (%d bytes)\n", l[:100], len(l))
		}
	}
	return strings.Join(lines, "")
}

// short quotes text, or its start if it is long.
func short(text string) string {
	if len(text) > 40 {
		return fmt.Sprintf("%q... (%d bytes)", text[:40], len(text))
	}
	return strconv.Quote(text)
}

// count says "1 read", "3 reads".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
