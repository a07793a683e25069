//go:build linux

package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestExperiments runs the chapter's commands as a reader types them: the
// server on the book's own site in one terminal; curl -I, a range, and a
// path that climbs out of the root in another. What the chapter shows
// next to each is what this test printed (t.Log, with -v), dates aside.
func TestExperiments(t *testing.T) {
	t.Parallel()
	m := booktest.NewMachine(t)
	srv := m.Start(booktest.Experiment(t, "server"))
	srv.WaitFor("listening on 127.0.0.1:8080\n")

	out := strings.ReplaceAll(m.Run(booktest.Experiment(t, "head")), "\r\n", "\n")
	t.Logf("head:\n%s", out)
	head := regexp.MustCompile(`^HTTP/1\.1 200 OK\nDate: .* GMT\nContent-Type: text/html; charset=utf-8\nContent-Length: \d+\n` +
		`ETag: "[0-9a-f]+-[0-9a-f]+"\nLast-Modified: .* GMT\nAccept-Ranges: bytes\n\n$`)
	if !head.MatchString(out) {
		t.Errorf("curl -sI /: want 200, the type, the length, the tag, the time, and no body; got:\n%s", out)
	}
	srv.WaitFor("HEAD / HTTP/1.1 -> 200, 0 bytes\n")

	out = m.Run(booktest.Experiment(t, "range"))
	t.Logf("range:\n%s", out)
	if out != "<!doctype html>" {
		t.Errorf("the first 15 bytes of index.html: %q, want %q", out, "<!doctype html>")
	}
	srv.WaitFor("GET /index.html HTTP/1.1 -> 206, 15 bytes\n")

	out = m.Run(booktest.Experiment(t, "escape"))
	t.Logf("escape:\n%s", out)
	if out != "bad request\n" {
		t.Errorf("GET /../../etc/passwd: %q, want %q", out, "bad request\n")
	}
	srv.WaitFor("GET /../../etc/passwd HTTP/1.1 -> 400, 12 bytes\n")

	srv.Interrupt()
	srv.Wait()
	if out := srv.Output(); strings.Contains(out, "exit status") {
		t.Errorf("after Ctrl-C: an exit status line:\n%s", out)
	}
	if code := srv.ExitCode(); code != 0 && code != 1 {
		t.Errorf("go run's exit status after Ctrl-C: %d, want 1 (or 0)", code)
	}
}
