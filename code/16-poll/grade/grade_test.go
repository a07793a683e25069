//go:build grade && linux

// The graders of chapter 16's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names) on loopback,
// and talks to it with sockets of its own, one event after another: a
// client is echoed, refused, or told goodbye, and the grader waits for
// that, never for a time. Every wait is bounded (10 s for an answer).
//
//	go run ./tools/grade 16
//	go run ./tools/grade -program DIR 16
//
// Exercise 3 is checked by hand: it has no grader.
package grade

import (
	"bufio"
	"errors"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// wait bounds every read and connect of the graders.
const wait = 10 * time.Second

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

// TestExercise1AtMost: with -max 2, two clients are served; a third is
// closed at once (end of file, not a wait); when one of the two leaves,
// a new client is served again: the limit counts the clients connected
// now, not every client ever accepted.
func TestExercise1AtMost(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server")
	srv.Interrupt()
	requireFlags(t, s, "add -max", "max")
	srv = s.Start("server", "-max", "2")
	a, b := connect(t, "A", srv.Addr()), connect(t, "B", srv.Addr())
	a.echoed(t, srv, "first")
	b.echoed(t, srv, "second")

	c := connect(t, "C", srv.Addr())
	c.c.Write([]byte("third\n")) // served, it would be echoed: no need to wait to know
	if got, err := c.line(); !closed(err) {
		t.Fatalf("with -max 2 and two clients connected, a third: got %q (%v), want end of file at once; the server printed:\n%s", got, err, srv.Output())
	}
	a.echoed(t, srv, "still here") // the server did not stop for C
	b.echoed(t, srv, "me too")

	a.c.Close()
	d := connect(t, "D", srv.Addr())
	d.echoed(t, srv, "after A left") // a place is free again
	b.echoed(t, srv, "still two")

	srv.Interrupt()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("exit status %d after Ctrl-C, want 0; the server printed:\n%s", code, srv.Output())
	}
}

// TestExercise2Goodbye: on Ctrl-C the server writes "bye" to every client
// still connected, then closes them and exits 0. Each client reads its
// echo, then "bye", then end of file.
func TestExercise2Goodbye(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server")
	var clients []*client
	for _, name := range []string{"A", "B", "C"} {
		c := connect(t, name, srv.Addr())
		c.echoed(t, srv, "hello from "+name)
		clients = append(clients, c)
	}
	srv.Interrupt()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("exit status %d after Ctrl-C, want 0; the server printed:\n%s", code, srv.Output())
	}
	for _, c := range clients {
		if got, err := c.line(); got != "bye\n" {
			t.Errorf("client %s after Ctrl-C: got %q (%v), want \"bye\\n\"; the server printed:\n%s", c.name, got, err, srv.Output())
			continue
		}
		if got, err := c.line(); !closed(err) {
			t.Errorf("client %s after bye: got %q (%v), want end of file", c.name, got, err)
		}
	}
}
