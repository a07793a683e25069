//go:build linux

package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestExperimentStrace runs the chapter's strace session as written, on a
// machine of its own (a private /tmp, loopback only): the server with
// -netpoll under strace -f, a client that connects and says nothing until
// the server has tried to read, then talks and hangs up. The trace shows
// what the runtime does for one connection: one EPOLL_CTL_ADD, a read
// that fails with EAGAIN, an epoll_pwait that waits (-1) and returns the
// connection, the read that gets the line, and EPOLL_CTL_DEL before close.
func TestExperimentStrace(t *testing.T) {
	t.Parallel()
	m := booktest.NewMachine(t)
	m.Run(booktest.Experiment(t, "build"))
	srv := m.Start(booktest.Experiment(t, "strace"))
	srv.WaitFor("listening on 127.0.0.1:8080\n")
	if out := m.Run(booktest.Experiment(t, "talk")); out != "hello\n" {
		t.Errorf("the client got %q back, want \"hello\\n\"", out)
	}
	// strace pads a result to a column, and more so on a line joined
	// from two, so each step takes any number of spaces before "=".
	// The trace is complete once the connection is out of epoll and closed.
	m.RunUntil("cat /tmp/strace.txt", regexp.MustCompile(`EPOLL_CTL_DEL[^\n]*\n(?:.*\n)*?\d+ +close\(`))
	if out := m.Run(booktest.Experiment(t, "trace")); !strings.Contains(out, "EAGAIN") || !strings.Contains(out, "EPOLL_CTL_ADD") {
		t.Errorf("the chapter's sed and grep show no EAGAIN or no EPOLL_CTL_ADD:\n%s", out)
	}
	trace := joinResumed(m.Run("cat /tmp/strace.txt"))
	accepted := regexp.MustCompile(`(?m)^\d+ +accept4\(.*\) += (\d+)$`).FindStringSubmatch(trace)
	if accepted == nil {
		t.Fatalf("no accept4 in the trace:\n%s", trace)
	}
	fd := accepted[1]
	rest := trace[strings.Index(trace, accepted[0]):]
	for _, step := range []string{
		`fcntl\(FD, F_SETFL, O_RDWR\|O_NONBLOCK\) += 0`,
		`epoll_ctl\(\d+, EPOLL_CTL_ADD, FD, \{events=EPOLLIN\|EPOLLOUT\|EPOLLRDHUP\|EPOLLET, .*\) += 0`,
		`read\(FD, .*\) += -1 EAGAIN \(Resource temporarily unavailable\)`,
		`epoll_pwait\(\d+, \[\{events=EPOLLIN.*\], 128, -?\d+, NULL, 0\) += 1`,
		`read\(FD, "hello\\n", 4096\) += 6`,
		`write\(FD, "hello\\n", 6\) += 6`,
		`read\(FD, "", 4096\) += 0`,
		`epoll_ctl\(\d+, EPOLL_CTL_DEL, FD, .*\) += 0`,
		`close\(FD\) += 0`,
	} {
		re := regexp.MustCompile(`(?m)^\d+ +` + strings.ReplaceAll(step, "FD", fd) + `$`)
		loc := re.FindStringIndex(rest)
		if loc == nil {
			t.Fatalf("the trace has no line like %s after the ones before it:\n%s", re, trace)
		}
		rest = rest[loc[1]:]
	}
	if n := strings.Count(trace, "EPOLL_CTL_ADD, "+fd+", "); n != 1 {
		t.Errorf("%d EPOLL_CTL_ADD for the connection, want 1:\n%s", n, trace)
	}
	srv.Interrupt()
	srv.Wait()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("exit status %d after Ctrl-C:\n%s", code, srv.Output())
	}
}

// joinResumed undoes what strace -f does when a call of one thread is
// interrupted by another's: "PID call(args <unfinished ...>" and, later,
// "PID <... call resumed>rest" become one line, where the first was.
func joinResumed(trace string) string {
	open := map[string]int{} // pid -> index of its unfinished line
	var out []string
	resumed := regexp.MustCompile(`^(\d+) +<\.\.\. \w+ resumed>(.*)$`)
	for _, l := range strings.Split(trace, "\n") {
		if m := resumed.FindStringSubmatch(l); m != nil {
			if i, ok := open[m[1]]; ok {
				out[i] += m[2]
				delete(open, m[1])
				continue
			}
		}
		if before, ok := strings.CutSuffix(l, " <unfinished ...>"); ok {
			open[strings.Fields(l)[0]] = len(out)
			l = before
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

// TestExperimentRace runs the racy counter under the race detector, as the
// chapter tells the reader to: it reports a data race on the counter, at
// its line, and exits with status 66.
func TestExperimentRace(t *testing.T) {
	t.Parallel()
	out, err := booktest.Shell(t, booktest.Experiment(t, "race"))
	if err == nil || !strings.Contains(out, "exit status 66") {
		t.Errorf("want go run -race to fail with exit status 66, got %v:\n%s", err, out)
	}
	for _, want := range []string{"WARNING: DATA RACE\n", "main.main.func1()\n", "code/14-threads/testdata/racy/main.go:17 "} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in the race report:\n%s", want, out)
		}
	}
}
