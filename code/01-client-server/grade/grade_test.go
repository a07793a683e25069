//go:build grade

// The graders of chapter 1's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names) and plays
// the other side with its own sockets on loopback, so it grades any copy
// of the program, whatever its code. Run them with
//
//	go run ./tools/grade 01
//	go run ./tools/grade -program DIR 01
//
// They decide by events and their order: what arrived on a socket, what the
// program printed and before what. Every wait is bounded by waitLimit.
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
)

// waitLimit bounds every wait of the graders' own. The program's answers
// take milliseconds; only the 5-second deadline of exercise 3 is slower.
const waitLimit = 15 * time.Second

// A client that talks at a steady pace in exercise 3 sends paceLines lines,
// paceGap apart: more than 5 seconds in all, less than 5 between two.
const (
	paceLines = 3
	paceGap   = 3 * time.Second
)

// heldAtInterrupt is how many more silent connections exercise 4 holds
// open when it sends Ctrl-C.
const heldAtInterrupt = 20

// Exercise 1: with -n 3 the client connects, sends and reads three times,
// each on a new connection.
func TestExercise1ManyClients(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server")
	cl := s.Run("client", "-client", "-addr", srv.Addr(), "-n", "3")
	if strings.Contains(cl.Output(), "flag provided but not defined: -n") {
		t.Fatalf("the client has no -n flag yet: -client -n 3 printed %q", "flag provided but not defined: -n")
	}
	if code := cl.ExitCode(); code != 0 {
		t.Fatalf("with -n 3 the client exited with status %d, want 0; its output:\n%s", code, cl.Output())
	}
	// The plain reply lines, not the narration's quoted copies of them.
	replies := regexp.MustCompile(`(?m)^hi 127\.0\.0\.1:(\d+), you said "hello"$`).FindAllStringSubmatch(cl.Output(), -1)
	if len(replies) != 3 {
		t.Fatalf("with -n 3 the client printed %s, want 3; its output:\n%s", count(len(replies), "reply", "replies"), cl.Output())
	}
	// The client has its three replies, so the server has accepted three
	// connections; its lines may still be on their way through the pipe.
	acceptedRE := regexp.MustCompile(`(?m)^\s*accepted 127\.0\.0\.1:(\d+)$`)
	waitUntil(func() bool { return len(acceptedRE.FindAllString(srv.Output(), -1)) >= 3 })
	acc := acceptedRE.FindAllStringSubmatch(srv.Output(), -1)
	if len(acc) != 3 {
		t.Fatalf("with -n 3 the server printed %s, want 3 (one per connection); its output:\n%s", count(len(acc), "accepted line", "accepted lines"), output(srv))
	}
	ports := map[string]bool{}
	for i, m := range acc {
		if ports[m[1]] {
			t.Fatalf("the server accepted port %s twice, want three different client ports (a new connection each time); its output:\n%s", m[1], output(srv))
		}
		ports[m[1]] = true
		// Each reply names the port of the connection it came on.
		if r := replies[i][1]; r != m[1] {
			t.Errorf("reply %d was for port %s, but the server's accept %d was from port %s; client output:\n%s\nserver output:\n%s",
				i+1, r, i+1, m[1], cl.Output(), output(srv))
		}
	}
}

// Exercise 2: the server answers every line of a connection until the
// client closes its end, which is not an error; then it accepts again.
func TestExercise2AConversation(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server")
	c := dial(t, srv)
	local := c.LocalAddr().String()
	r := bufio.NewReader(c)
	want := func(msg string) string { return fmt.Sprintf("hi %s, you said %q", local, msg) }

	// One line, one reply, twice over: the server must not close after one.
	for i, msg := range []string{"one", "two"} {
		send(t, c, msg+"\n")
		got, err := recvLine(r)
		if err != nil {
			if i == 0 {
				t.Fatalf("no reply to the first line %q (%v); server output:\n%s", msg, describe(err), output(srv))
			}
			t.Fatalf("no reply to the second line %q on the same connection (%v): the server must answer every line until the client closes; server output:\n%s",
				msg, describe(err), output(srv))
		}
		if got != want(msg) {
			t.Fatalf("reply to %q was %q, want %q", msg, got, want(msg))
		}
	}

	// Two lines in one write: a bufio.Reader made for each line would read
	// both into its buffer and drop the second with it.
	send(t, c, "three\nfour\n")
	for _, msg := range []string{"three", "four"} {
		got, err := recvLine(r)
		if err != nil {
			t.Fatalf("sent \"three\\nfour\\n\" in one write, got no reply to %q (%v): make one bufio.Reader per connection, not one per line; server output:\n%s",
				msg, describe(err), output(srv))
		}
		if got != want(msg) {
			t.Fatalf("reply to %q was %q, want %q", msg, got, want(msg))
		}
	}

	// The client closes its end, and the server reads end of file, as
	// when nc is stopped with Ctrl-C. The server closes its own end,
	// without calling that an error, and goes back to ln.Accept().
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	rest, err := io.ReadAll(r)
	if len(rest) != 0 {
		t.Fatalf("after the client closed its end, the server sent %q, want it to close the connection; server output:\n%s", rest, output(srv))
	}
	if err != nil {
		t.Fatalf("after the client closed its end, the server did not close the connection (%v); server output:\n%s", describe(err), output(srv))
	}
	if !waitUntil(func() bool { return strings.Count(srv.Output(), "ln.Accept()") >= 2 }) {
		t.Fatalf("after the client closed its end, the server did not go back to ln.Accept(); its output:\n%s", output(srv))
	}
	// A server with a goroutine per client may print that client's error
	// after it is back in Accept; once it has exited, all it printed is in.
	srv.Interrupt()
	if eof := "read " + local + ": EOF"; hasLine(srv.Output(), eof) {
		t.Errorf("the server reported %q: a client closing its end is how a conversation ends, not an error; its output:\n%s", eof, srv.Output())
	}
}

// Exercise 3: a connection that sends nothing is dropped after 5 seconds
// with "read ADDR: i/o timeout", and the next client is answered.
func TestExercise3ASilentClient(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server")
	silent := dial(t, srv)
	quiet := silent.LocalAddr().String()
	waitAccepted(t, srv, quiet)

	c := dial(t, srv)
	send(t, c, "hello\n")
	got, err := recvLine(bufio.NewReader(c))
	if err != nil {
		t.Fatalf("while another connection stayed silent, a client that sent its line got no reply (%v): the server must give up on the silent one after 5 s (c.SetReadDeadline); server output:\n%s",
			describe(err), output(srv))
	}
	if want := fmt.Sprintf("hi %s, you said %q", c.LocalAddr(), "hello"); got != want {
		t.Fatalf("the client's reply was %q, want %q", got, want)
	}
	c.Close()

	timeout := "read " + quiet + ": i/o timeout"
	if !waitUntil(func() bool { return hasLine(srv.Output(), timeout) }) {
		t.Fatalf("the server never printed %q for the connection that sent nothing (waited %v): give each connection 5 seconds to send its line (c.SetReadDeadline); its output:\n%s",
			timeout, waitLimit, output(srv))
	}
	// Having given up on it, the server closes it: the silent client
	// reads end of file.
	silent.SetReadDeadline(time.Now().Add(waitLimit))
	if b, err := io.ReadAll(silent); len(b) != 0 {
		t.Errorf("the server sent %q to the connection that sent nothing, want it to close that connection; server output:\n%s", b, output(srv))
	} else if err != nil {
		t.Errorf("after the timeout the server did not close the silent connection (%v); server output:\n%s", describe(err), output(srv))
	}

	// A client that keeps talking, a line every paceGap, is never idle for
	// 5 seconds, though it stays longer than that: each line gets its own
	// 5 seconds. (Only for a server that answers more than one line on a
	// connection, as exercise 2 asks.)
	talker := dial(t, srv)
	talker.SetReadDeadline(time.Now().Add(waitLimit + paceLines*paceGap))
	tr := bufio.NewReader(talker)
	for i := range paceLines {
		if i > 0 {
			time.Sleep(paceGap)
		}
		msg := fmt.Sprint("line ", i+1)
		send(t, talker, msg+"\n")
		got, err := recvLine(tr)
		closed := errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
		if i == 1 && closed && !strings.Contains(srv.Output(), "read "+talker.LocalAddr().String()+": i/o timeout") {
			return // one line per connection: exercise 2 not done, nothing more to check
		}
		if err != nil {
			t.Fatalf("a client that sent a line every %v got no reply to line %d, %.0f s after it connected (%v): set the 5-second deadline before every read, not once per connection; server output:\n%s",
				paceGap, i+1, (time.Duration(i) * paceGap).Seconds(), describe(err), output(srv))
		}
		if want := fmt.Sprintf("hi %s, you said %q", talker.LocalAddr(), msg); got != want {
			t.Fatalf("the reply to %q was %q, want %q", msg, got, want)
		}
	}
}

// Exercise 4: while one connection is silent, another client is answered
// at once, before any read deadline could have passed; and Ctrl-C waits
// for the clients still being served, then exits with status 0.
func TestExercise4TwoAtOnce(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server")
	silent := dial(t, srv)
	quiet := silent.LocalAddr().String()
	waitAccepted(t, srv, quiet)

	c := dial(t, srv)
	talker := c.LocalAddr().String()
	send(t, c, "hello\n")
	got, err := recvLine(bufio.NewReader(c))
	if err != nil {
		t.Fatalf("while one connection stayed silent, a second client got no reply (%v): serve each client in its own goroutine; server output:\n%s",
			describe(err), output(srv))
	}
	if want := fmt.Sprintf("hi %s, you said %q", talker, "hello"); got != want {
		t.Fatalf("the second client's reply was %q, want %q", got, want)
	}
	// "At once" means while the server still held the silent connection:
	// in what it printed up to accepting the second client, the silent one
	// must not have been closed yet (no c.Close(), no read error).
	waitAccepted(t, srv, talker)
	out := srv.Output()
	before := out[:strings.Index(out, accepted(talker))]
	if i := strings.Index(before, "read "+quiet+":"); i >= 0 {
		t.Fatalf("the second client was answered only after the server gave up on the silent one (%s), want at once: serve each client in its own goroutine; server output:\n%s",
			firstLine(before[i:]), out)
	}
	if strings.Contains(before[strings.Index(before, accepted(quiet)):], "c.Close()") {
		t.Fatalf("the server closed the silent connection before it accepted the second client, want it held open while the second is answered; server output:\n%s", out)
	}
	c.Close()

	// Ctrl-C while the silent connection and a few more are being served.
	// Every accepted connection's c.Close() must come before the
	// listener's ln.Close(). (A server that does not wait may still win
	// the race now and then; the more clients, the less often.)
	for range heldAtInterrupt {
		waitAccepted(t, srv, dial(t, srv).LocalAddr().String())
	}
	srv.Interrupt()
	out = srv.Output()
	if code := srv.ExitCode(); code != 0 {
		t.Fatalf("after Ctrl-C (SIGINT) the server exited with status %d, want 0; its output:\n%s", code, out)
	}
	last := strings.LastIndex(out, "ln.Close()")
	if last < 0 {
		t.Fatalf("after Ctrl-C the server did not print ln.Close(): it must still close its listener; its output:\n%s", out)
	}
	served := strings.Count(out, "  accepted ")
	if closed := strings.Count(out[:last], "c.Close()"); closed < served {
		t.Fatalf("the server closed its listener (ln.Close()) after closing %d of its %d clients: make Ctrl-C wait for the clients still being served (a sync.WaitGroup helps); its output:\n%s",
			closed, served, out)
	}
}

// dial connects to the server, or fails the test.
func dial(t *testing.T, srv *booktest.Proc) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.Addr(), waitLimit)
	if err != nil {
		t.Fatalf("could not connect to the server at %s: %v; its output:\n%s", srv.Addr(), err, output(srv))
	}
	t.Cleanup(func() { c.Close() })
	// No read on this connection waits for longer.
	c.SetReadDeadline(time.Now().Add(waitLimit))
	return c
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

// waitAccepted waits until the server has printed that it accepted the
// connection from addr.
func waitAccepted(t *testing.T, srv *booktest.Proc, addr string) {
	t.Helper()
	if !waitUntil(func() bool { return strings.Contains(srv.Output(), accepted(addr)) }) {
		t.Fatalf("the server did not print %q within %v of the connection; its output:\n%s", "accepted "+addr, waitLimit, output(srv))
	}
}

// accepted is the line the server prints for the connection from addr
// (without its indent, so that the port cannot be the start of another).
func accepted(addr string) string { return "accepted " + addr + "\n" }

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

// hasLine reports whether out has line as a whole line.
func hasLine(out, line string) bool {
	return strings.Contains("\n"+out, "\n"+line+"\n")
}

// count says "1 reply", "2 replies".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
