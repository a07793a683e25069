//go:build grade && linux

// The graders of chapter 17's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names) on loopback,
// and talks to it with sockets of its own, one event after another: a
// client is echoed, or told why it is closed, and the grader waits for
// that, never for a time. Every wait is bounded (5 s for an answer).
//
//	go run ./tools/grade 17
//	go run ./tools/grade -program DIR 16
//
// Exercise 3 is checked by hand: it has no grader.
package grade

import (
	"bufio"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// wait bounds every read and connect of the graders.
const wait = 5 * time.Second

// client is one connection of the grader's, with its reader.
type client struct {
	name string
	c    net.Conn
	r    *bufio.Reader
}

func connect(t *testing.T, name, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, wait)
	if err != nil {
		t.Fatalf("client %s could not connect to %s: %v", name, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &client{name, c, bufio.NewReader(c)}
}

// line reads one line; err is io.EOF (or a reset) if the server closed.
func (c *client) line() (string, error) {
	c.c.SetReadDeadline(time.Now().Add(wait))
	return c.r.ReadString('\n')
}

// echoed sends a line and fails unless the same line comes back.
func (c *client) echoed(t *testing.T, srv *booktest.Proc, msg string) {
	t.Helper()
	if _, err := c.c.Write([]byte(msg + "\n")); err != nil {
		t.Fatalf("client %s: write: %v", c.name, err)
	}
	if got, err := c.line(); got != msg+"\n" {
		t.Fatalf("client %s sent %q and got back %q (%v), want its echo; the server printed:\n%s", c.name, msg+"\n", got, err, srv.Output())
	}
}

// closed reports whether the server closed the connection: end of file
// (or a reset), rather than a line or nothing within the wait.
func closed(err error) bool {
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout()) &&
		(errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset"))
}

// TestExercise1EdgeFair: edge-triggered with a cap on reads per turn
// (-et -reads 1 -bufsize 4), a client whose line takes several reads is
// still echoed: the loop remembers the clients it stopped reading before
// EAGAIN, and serves them at the next turn without waiting for an event
// that will not come. Two clients at once, and a client with two lines in
// one write, are echoed too.
func TestExercise1EdgeFair(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server")
	srv.Interrupt()
	srv = s.Start("server", "-et", "-reads", "1", "-bufsize", "4")
	a := connect(t, "A", srv.Addr())
	a.echoed(t, srv, "hello world, in three reads or more")
	b := connect(t, "B", srv.Addr())
	for _, c := range []*client{a, b} {
		if _, err := c.c.Write([]byte("one line\nand another\n")); err != nil {
			t.Fatalf("client %s: write: %v", c.name, err)
		}
	}
	for _, c := range []*client{a, b} {
		for _, want := range []string{"one line\n", "and another\n"} {
			if got, err := c.line(); got != want {
				t.Fatalf("client %s sent two lines in one write and got %q (%v), want %q; the server printed:\n%s", c.name, got, err, want, srv.Output())
			}
		}
	}
	srv.Interrupt()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("exit status %d after Ctrl-C, want 0; the server printed:\n%s", code, srv.Output())
	}
}

// TestExercise2IdleSaysWhy: with -idle, a client closed for being silent
// reads "idle" (a line) before end of file; a client that comes after is
// served.
func TestExercise2IdleSaysWhy(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server", "-idle", "300ms")
	a := connect(t, "A", srv.Addr())
	a.echoed(t, srv, "then silence")
	if got, err := a.line(); got != "idle\n" {
		t.Fatalf("client A, silent past -idle 300ms: got %q (%v), want \"idle\\n\"; the server printed:\n%s", got, err, srv.Output())
	}
	if got, err := a.line(); !closed(err) {
		t.Fatalf("client A after idle: got %q (%v), want end of file", got, err)
	}
	b := connect(t, "B", srv.Addr())
	b.echoed(t, srv, "a new client")
	srv.Interrupt()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("exit status %d after Ctrl-C, want 0; the server printed:\n%s", code, srv.Output())
	}
}
