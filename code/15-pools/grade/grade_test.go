//go:build grade && linux

// The graders of chapter 15's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names) on loopback,
// as the student who runs them: no root. Every wait is bounded: booktest's,
// and the deadlines on the grader's own connections.
//
//	go run ./tools/grade 15
//	go run ./tools/grade -program DIR 15
package grade

import (
	"bufio"
	"errors"
	"io"
	"net"
	"regexp"
	"strconv"
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

// connect opens a connection of the grader's, with a bound on every wait.
func connect(t *testing.T, srv *booktest.Proc, within time.Duration) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.Addr(), 5*time.Second)
	if err != nil {
		t.Fatalf("connect to %s: %v; the server printed:\n%s", srv.Addr(), err, srv.Output())
	}
	c.SetDeadline(time.Now().Add(within))
	t.Cleanup(func() { c.Close() })
	return c, bufio.NewReader(c)
}

// TestExercise1Served: on Ctrl-C each of the pool's 4 workers prints
// "worker N served K connections", and the Ks add up to the clients
// served: here 3, one after the other.
func TestExercise1Served(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server")
	for range 3 {
		c, r := connect(t, srv, 5*time.Second)
		if _, err := c.Write([]byte("count me\n")); err != nil {
			t.Fatal(err)
		}
		if got, err := r.ReadString('\n'); got != "count me\n" {
			t.Fatalf("want the echo of %q, got %q, %v; the server printed:\n%s", "count me\n", got, err, srv.Output())
		}
		c.Close()
	}
	srv.Interrupt()
	srv.Wait()
	lines := regexp.MustCompile(`(?m)^worker (\d+) served (\d+) connections?$`).FindAllStringSubmatch(srv.Output(), -1)
	workers, total := map[string]bool{}, 0
	for _, l := range lines {
		workers[l[1]] = true
		k, _ := strconv.Atoi(l[2])
		total += k
	}
	if len(lines) != 4 || len(workers) != 4 || total != 3 {
		t.Errorf(`after 3 clients and Ctrl-C, want one line "worker N served K connections" for each of the 4 workers, the Ks adding up to 3; got %d lines (%d workers) adding up to %d:
%s`, len(lines), len(workers), total, srv.Output())
	}
	if srv.ExitCode() != 0 {
		t.Errorf("exit status %d after Ctrl-C, want 0", srv.ExitCode())
	}
}

// TestExercise2Idle: a pool of one worker with -idle 500ms. A client that
// says nothing takes the worker; a second one, which talks, is queued. The
// server closes the silent one, and the second is echoed: the pool is not
// stalled for good.
func TestExercise2Idle(t *testing.T) {
	s := booktest.NewGrader(t)
	requireFlags(t, s, "add -idle", "idle")
	srv := s.Start("server", "-workers", "1", "-idle", "500ms")
	_, silent := connect(t, srv, 4*time.Second)
	srv.WaitFor("open connections: 1\n")
	c, r := connect(t, srv, 4*time.Second)
	if _, err := c.Write([]byte("let me in\n")); err != nil {
		t.Fatal(err)
	}
	if got, err := r.ReadString('\n'); got != "let me in\n" {
		t.Fatalf("-workers 1 -idle 500ms, a silent client first: the second client got %q, %v within 4 s, want its echo; the server printed:\n%s", got, err, srv.Output())
	}
	if _, err := silent.ReadString('\n'); !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("the silent client: want the server to have closed it, got %v", err)
	}
	srv.Interrupt()
	srv.Wait()
	if srv.ExitCode() != 0 {
		t.Errorf("exit status %d after Ctrl-C, want 0:\n%s", srv.ExitCode(), srv.Output())
	}
}
