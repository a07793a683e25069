//go:build linux

package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// The "see it yourself" section, run as written: every command is the text of
// a block of the chapter (booktest.Experiment), run in namespaces of its own
// so that port 8080 and /tmp/ch1 are free (booktest.Machine).
func TestSeeItYourself(t *testing.T) {
	m := booktest.NewMachine(t)
	m.Run(booktest.Experiment(t, "build"))

	// The listening socket: descriptor 3, backlog 4096, nothing queued.
	srv := m.Start(booktest.Experiment(t, "server"))
	srv.WaitFor("listening on 127.0.0.1:8080\n")
	out := m.Run(booktest.Experiment(t, "listening"))
	t.Logf("%s", out)
	if !regexp.MustCompile(`(?m)^LISTEN +0 +4096 +127\.0\.0\.1:8080 .*users:\(\("ch1",pid=\d+,fd=3\)\)$`).MatchString(out) {
		t.Errorf("ss -ltnp did not show ch1's listening socket as descriptor 3, backlog 4096, none waiting:\n%s", out)
	}

	// One client at a time: a silent connection holds the server, the
	// client's connection and its line wait in the kernel.
	silent := m.Start(booktest.Experiment(t, "silent"))
	m.RunUntil(`ss -Htn state established 'dport = :8080'`, regexp.MustCompile(`127\.0\.0\.1:8080`))
	client := m.Start(booktest.Experiment(t, "client"))
	client.WaitFor("r.ReadSlice")
	port := regexp.MustCompile(`local 127\.0\.0\.1:(\d+)`).FindStringSubmatch(client.Output())[1]
	out = m.RunUntil(booktest.Experiment(t, "queues"), regexp.MustCompile(`(?m)^ESTAB +6 +0 +127\.0\.0\.1:8080 +127\.0\.0\.1:`+port+`\b[\s\S]*^LISTEN +1 +4096 `))
	t.Logf("%s", out)
	if got := strings.Count(out, "ESTAB "); got != 4 {
		t.Errorf("ss -tn showed %d established sockets, want 4 (two connections, both ends):\n%s", got, out)
	}
	silent.Interrupt() // Ctrl-C in the silent client's terminal
	silent.Wait()
	client.Wait()
	if !strings.Contains(client.Output(), "\nhi 127.0.0.1:"+port+`, you said "hello"`) {
		t.Errorf("the waiting client got no reply once the silent one left:\n%s", client.Output())
	}
	srv.WaitFor(": EOF\n")
	srv.Interrupt()
	srv.Wait()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("server exit status %d after Ctrl-C; output:\n%s", code, srv.Output())
	}

	// strace -o: Ctrl-C reaches the server, not strace, which records the
	// listener's close on the way out.
	st := m.Start(booktest.Experiment(t, "strace"))
	st.WaitFor("listening on 127.0.0.1:8080\n")
	m.Run(booktest.Experiment(t, "client"))
	st.Interrupt()
	st.Wait()
	if code := st.ExitCode(); code != 0 {
		t.Errorf("strace exit status %d after Ctrl-C, want the server's 0; output:\n%s", code, st.Output())
	}
	trace := joinResumed(m.Run(booktest.Experiment(t, "trace")))
	t.Logf("%s", trace)
	steps := []string{
		`socket\(AF_INET, SOCK_STREAM\|SOCK_CLOEXEC\|SOCK_NONBLOCK, IPPROTO_(?:MPTCP|IP|TCP)\) = 3`,
		`bind\(3, \{sa_family=AF_INET, sin_port=htons\(8080\)`,
		`listen\(3, 4096\) += 0`,
		`accept4\(3, \{sa_family=AF_INET, .*\) = 4`,
		`read\(4, "hello\\n", 1024\) += 6`,
		`write\(4, "hi 127\.0\.0\.1:`,
		`close\(4\) += 0`, // before or after the SIGINT: the client was done with it
		`close\(3\) += 0`,
		`\+\+\+ exited with 0 \+\+\+`,
	}
	if !regexp.MustCompile(`(?m)^\d+ +--- SIGINT .*\n(?:.*\n)*\d+ +close\(3\) += 0$`).MatchString(trace) {
		t.Errorf("the trace does not show the listener's close(3) after the SIGINT:\n%s", trace)
	}
	rest := trace
	for _, step := range steps {
		loc := regexp.MustCompile(`(?m)^\d+ +` + step).FindStringIndex(rest)
		if loc == nil {
			t.Fatalf("the trace has no line %s after the ones before it:\n%s", step, trace)
		}
		rest = rest[loc[1]:]
	}
}

// strace -f splits a call that another thread's line interrupts:
// "7019  close(4 <unfinished ...>", then "7019  <... close resumed>) = 0".
// joinResumed makes the pair one line, where the call returned.
func joinResumed(trace string) string {
	unfinished := regexp.MustCompile(`^(\d+) +(\w+)(\(.*) <unfinished \.\.\.>\n$`)
	resumed := regexp.MustCompile(`^(\d+ +)<\.\.\. (\w+) resumed>(.*\n)$`)
	started := map[string]string{} // "PID name" -> the call's start, "close(4"
	var b strings.Builder
	for _, line := range strings.SplitAfter(trace, "\n") {
		if u := unfinished.FindStringSubmatch(line); u != nil {
			started[u[1]+" "+u[2]] = u[2] + u[3]
			continue
		}
		if r := resumed.FindStringSubmatch(line); r != nil {
			line = r[1] + started[strings.TrimSpace(r[1])+" "+r[2]] + r[3]
		}
		b.WriteString(line)
	}
	return b.String()
}

// The ephemeral range a fresh network namespace starts with, which is the
// kernel's default: 32768 to 60999.
func TestEphemeralRangeDefault(t *testing.T) {
	m := booktest.NewMachine(t)
	if out := m.Run(booktest.Experiment(t, "range")); strings.Join(strings.Fields(out), " ") != "32768 60999" {
		t.Errorf("the ephemeral range is %q, want 32768 and 60999", out)
	}
}
