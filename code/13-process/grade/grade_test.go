//go:build grade && linux

// The graders of chapter 13's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names) on loopback,
// as the student who runs them: no root. The server's children are its
// own business: the graders see only what a client sees.
//
//	go run ./tools/grade 13
//	go run ./tools/grade -program DIR 13
//
// Every wait is bounded: booktest's, and the deadlines on the graders' own
// connections.
//
// Exercise 3 changes how the children are reaped, which a client cannot
// see, so it has no grader: it is checked by hand, with ps.
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

// client is a grader's connection, with a bounded wait on everything.
type client struct {
	net.Conn
	r    *bufio.Reader
	born time.Time // when the grader started to wait for its end
}

func dial(t *testing.T, addr string) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("connect to the server at %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return &client{Conn: c, r: bufio.NewReader(c), born: time.Now()}
}

// say sends a line and returns the line that comes back ("" and the error
// if none does).
func (c *client) say(line string) (string, error) {
	if _, err := c.Write([]byte(line + "\n")); err != nil {
		return "", err
	}
	return c.r.ReadString('\n')
}

// TestExercise1Max: with -max 1, a second client while the first is
// connected gets the line "busy" and end of file, and no child; once the
// first has gone, a client is served again.
func TestExercise1Max(t *testing.T) {
	s := booktest.NewGrader(t)
	plain := s.Start("server")
	first := dial(t, plain.Addr())
	if got, err := first.say("plain"); got != "plain\n" {
		t.Fatalf("the server without flags did not echo: got %q, %v; it printed:\n%s", got, err, plain.Output())
	}
	plain.Interrupt()

	requireFlags(t, s, "add -max", "max")
	srv := s.Start("server", "-max", "1")
	a := dial(t, srv.Addr())
	if got, err := a.say("first"); got != "first\n" {
		t.Fatalf("with -max 1, the first client: got %q, %v; want its echo; the server printed:\n%s", got, err, srv.Output())
	}
	b := dial(t, srv.Addr())
	got, err := b.r.ReadString('\n')
	if got != "busy\n" {
		t.Fatalf("with -max 1 and one client connected, a second client: got %q, %v; want the line \"busy\"; the server printed:\n%s", got, err, srv.Output())
	}
	if rest, err := b.r.ReadString('\n'); rest != "" || !errors.Is(err, io.EOF) {
		t.Errorf("after \"busy\", the second client: got %q, %v; want end of file (the server closes the connection)", rest, err)
	}
	a.Close()
	// The first child ends when its client has gone; the parent must
	// notice. A client is served again within a few seconds, or never.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c := dial(t, srv.Addr())
		got, err := c.say("third")
		c.Close()
		if got == "third\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("with -max 1, after the first client left, a new client still got %q, %v: the parent still counts a child that has ended; the server printed:\n%s", got, err, srv.Output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	srv.Interrupt()
	if srv.ExitCode() != 0 {
		t.Errorf("exit status %d after Ctrl-C, want 0; the server printed:\n%s", srv.ExitCode(), srv.Output())
	}
}

// endOfFile waits (bounded) for c's end of file, sending a line every
// 100 ms if talk is set; it reports what it got instead.
func (c *client) endOfFile(talk bool) error {
	for {
		if talk {
			if _, err := c.Write([]byte("tick\n")); err != nil {
				return nil // the server has gone: a reset or a broken pipe
			}
			c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		}
		_, err := c.r.ReadString('\n')
		var ne net.Error
		switch {
		case err == nil:
			continue // an echo
		case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), strings.Contains(err.Error(), "reset"):
			return nil
		case talk && errors.As(err, &ne) && ne.Timeout() && time.Now().Before(c.limit()):
			continue
		default:
			return err
		}
	}
}

// limit is when a grader stops waiting for a talking client's end of file.
func (c *client) limit() time.Time { return c.born.Add(6 * time.Second) }

// TestExercise2Limit: with -limit 1s a child lives at most a second: a
// quick client is served; a silent one and one that keeps talking both see
// end of file; the server goes on.
func TestExercise2Limit(t *testing.T) {
	s := booktest.NewGrader(t)
	requireFlags(t, s, "add -limit", "limit")
	srv := s.Start("server", "-limit", "1s")
	quick := s.Run("client", "-client", "-addr", srv.Addr(), "-msg", "quick")
	if quick.ExitCode() != 0 {
		t.Fatalf("with -limit 1s, a quick client was not served; it printed:\n%s", quick.Output())
	}
	silent, talker := dial(t, srv.Addr()), dial(t, srv.Addr())
	talker.born = time.Now()
	if err := talker.endOfFile(true); err != nil {
		t.Errorf("with -limit 1s, a client that sends a line every 100 ms: want end of file after about a second (the child killed), got %v; the server printed:\n%s", err, srv.Output())
	}
	if err := silent.endOfFile(false); err != nil {
		t.Errorf("with -limit 1s, a silent client: want end of file after about a second, got %v; the server printed:\n%s", err, srv.Output())
	}
	again := s.Run("client", "-client", "-addr", srv.Addr(), "-msg", "again")
	if again.ExitCode() != 0 {
		t.Errorf("after the killed children, a new client was not served; it printed:\n%s", again.Output())
	}
	srv.Interrupt()
	if srv.ExitCode() != 0 {
		t.Errorf("exit status %d after Ctrl-C, want 0; the server printed:\n%s", srv.ExitCode(), srv.Output())
	}
}
