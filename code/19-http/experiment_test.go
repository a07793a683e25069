//go:build linux

package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestExperiments runs the chapter's commands as a reader types them: the
// server in one terminal, then curl, a pipelined pair of requests by hand,
// and two requests the server refuses, in another. What the chapter shows
// next to each is what this test printed (t.Log, with -v), dates aside.
func TestExperiments(t *testing.T) {
	t.Parallel()
	m := booktest.NewMachine(t)
	srv := m.Start(booktest.Experiment(t, "server"))
	srv.WaitFor("listening on 127.0.0.1:8080\n")

	// curl ends its lines of headers with CRLF, as they came.
	out := strings.ReplaceAll(m.Run(booktest.Experiment(t, "curl")), "\r\n", "\n")
	t.Logf("curl:\n%s", out)
	for _, want := range []string{
		"> GET / HTTP/1.1\n> Host: 127.0.0.1:8080\n",
		"< HTTP/1.1 200 OK\n< Content-Type: text/plain; charset=utf-8\n< Content-Length: 13\n< Date: ",
		"\nHello, HTTP!\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("curl -v: no %q in:\n%s", want, out)
		}
	}

	// The server read the request in one read of as many bytes as the
	// lines curl shows, each with its CRLF (78 with the book's curl).
	size := 0
	for l := range strings.SplitSeq(out, "\n") {
		if rest, ok := strings.CutPrefix(l, "> "); ok {
			size += len(rest) + 2
		}
	}
	// (WaitFor, not Output: what the server printed reaches the test a
	// little after curl has its answer.)
	srv.WaitFor(fmt.Sprintf(", 4096) = %d\nGET / HTTP/1.1 -> 200, 13 bytes\n", size))

	out = m.Run(booktest.Experiment(t, "pipeline"))
	t.Logf("pipeline:\n%s", out)
	answers := regexp.MustCompile(`(?s)^HTTP/1\.1 200 OK\r\n.*?\r\n\r\nHello, HTTP!\nHTTP/1\.1 200 OK\r\n.*Connection: close\r\n.*\r\n\r\n$`)
	if !answers.MatchString(out) {
		t.Errorf("two pipelined requests: want two answers, the second's with no body and Connection: close, then end of file; got:\n%q", out)
	}

	srv.WaitFor("GET / HTTP/1.1 -> 200, 13 bytes\nHEAD / HTTP/1.1 -> 200, 0 bytes\nwrite(5, \"HTTP/1.1 200 OK\\r\\nContent-Type: t\"..., 266) = 266\n")

	out = m.Run(booktest.Experiment(t, "refused"))
	t.Logf("refused:\n%s", out)
	for _, want := range []string{
		"HTTP/1.1 400 Bad Request\r\n", "Connection: close\r\n", "\r\n\r\nbare LF: a line must end with CRLF\n",
		"\r\n\r\nboth Transfer-Encoding and Content-Length\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("refused: no %q in:\n%q", want, out)
		}
	}
	if strings.Contains(out, "Hello") {
		t.Errorf("refused: the request after the bad one was answered:\n%s", out)
	}
	// Ctrl-C reaches go run as well as the program: the program closes
	// its sockets and exits 0 (go run would print "exit status N"
	// otherwise); go run itself may exit 1 (see chapter 10's test).
	srv.Interrupt()
	srv.Wait()
	if out := srv.Output(); !strings.HasSuffix(out, "close(4) = 0\nclose(3) = 0\n") || strings.Contains(out, "exit status") {
		t.Errorf("after Ctrl-C: want the output to end with the close of 4 and 3, and no exit status line:\n%s", out)
	}
	if code := srv.ExitCode(); code != 0 && code != 1 {
		t.Errorf("go run's exit status after Ctrl-C: %d, want 1 (or 0)", code)
	}
}
