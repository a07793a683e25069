//go:build grade && linux

// The graders of chapter 14's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names) on loopback,
// as the student who runs them: no root. Every wait is bounded: booktest's,
// and the deadlines on the grader's own connections.
//
//	go run ./tools/grade 14
//	go run ./tools/grade -program DIR 14
//
// Exercise 3 asks for no change to the program, so it has no grader: it is
// checked by hand.
package grade

import (
	"bufio"
	"errors"
	"io"
	"net"
	"regexp"
	"syscall"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// requireFlags fails unless the program's -h lists every flag in names.
func requireFlags(t *testing.T, s *booktest.Session, what string, names ...string) {
	t.Helper()
	usage := s.Run("help", "-h").Output()
	for _, name := range names {
		if !regexp.MustCompile(`(?m)^\s+-` + regexp.QuoteMeta(name) + `\b`).MatchString(usage) {
			t.Fatalf("the program has no -%s flag yet (its -h does not list it): %s; it printed:\n%s", name, what, usage)
		}
	}
}

// client is one connection of the grader's, with a bound on every wait.
type client struct {
	c net.Conn
	r *bufio.Reader
}

func connect(t *testing.T, srv *booktest.Proc) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.Addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("connect to %s: %v; the server printed:\n%s", srv.Addr(), err, srv.Output())
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	t.Cleanup(func() { c.Close() })
	return &client{c, bufio.NewReader(c)}
}

// echo sends a line and returns what came back: the line, or an error.
func (c *client) echo(line string) (string, error) {
	if _, err := c.c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	return c.r.ReadString('\n')
}

// closed reports whether the server has closed the connection: end of file
// or a reset, before the deadline.
func closed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// TestExercise1Max: with -max 2, two clients are served together; a third
// is closed without an echo while they are connected, and the server goes
// on; once one of the two has gone, a new client is served again (within
// a bounded number of tries: the server learns of the departure on its own
// time).
func TestExercise1Max(t *testing.T) {
	s := booktest.NewGrader(t)
	s.Start("server").Interrupt()
	requireFlags(t, s, "add -max", "max")
	srv := s.Start("server", "-q", "-max", "2")
	a, b := connect(t, srv), connect(t, srv)
	for i, c := range []*client{a, b} {
		if got, err := c.echo("served"); got != "served\n" {
			t.Fatalf("client %d of 2 with -max 2: want its echo, got %q, %v; the server printed:\n%s", i+1, got, err, srv.Output())
		}
	}
	if got, err := connect(t, srv).echo("one too many"); !closed(err) {
		t.Fatalf("a third client with -max 2 and two connected: want the connection closed, got %q, %v; the server printed:\n%s", got, err, srv.Output())
	}
	a.c.Close()
	served := false
	for range 30 {
		if got, err := connect(t, srv).echo("room again"); got == "room again\n" {
			served = true
			break
		} else if !closed(err) {
			t.Fatalf("a client after one of two left: got %q, %v", got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !served {
		t.Fatalf("with -max 2, after one of the two clients left (and a refused one), a new client is still refused: is a refused connection still counted? The server printed:\n%s", srv.Output())
	}
	if got, err := b.echo("still here"); got != "still here\n" {
		t.Errorf("the second client, still connected: want its echo, got %q, %v", got, err)
	}
	srv.Interrupt()
	srv.Wait()
	if srv.ExitCode() != 0 {
		t.Errorf("exit status %d after Ctrl-C, want 0:\n%s", srv.ExitCode(), srv.Output())
	}
}

// TestExercise2Idle: with -idle 500ms, with and without -netpoll, a client
// that says nothing is closed by the server, while one that talks is
// echoed; the server goes on serving after it.
func TestExercise2Idle(t *testing.T) {
	s := booktest.NewGrader(t)
	requireFlags(t, s, "add -idle", "idle")
	for _, mode := range []string{"-netpoll=false", "-netpoll"} {
		srv := s.Start("server", "-q", mode, "-idle", "500ms")
		silent := connect(t, srv)
		talker := connect(t, srv)
		if got, err := talker.echo("talking"); got != "talking\n" {
			t.Fatalf("%s -idle 500ms: a client that talks at once: want its echo, got %q, %v", mode, got, err)
		}
		silent.c.SetDeadline(time.Now().Add(3 * time.Second)) // six times -idle
		if _, err := silent.r.ReadString('\n'); !closed(err) {
			t.Errorf("%s -idle 500ms: a client silent for 3 s was not closed by the server (%v); the server printed:\n%s", mode, err, srv.Output())
		}
		if got, err := connect(t, srv).echo("after"); got != "after\n" {
			t.Errorf("%s: a client after an idle one was closed: want its echo, got %q, %v", mode, got, err)
		}
		srv.Interrupt()
		srv.Wait()
		if srv.ExitCode() != 0 {
			t.Errorf("%s: exit status %d after Ctrl-C, want 0:\n%s", mode, srv.ExitCode(), srv.Output())
		}
	}
}
