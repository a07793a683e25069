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
// so that port 8080 and /tmp/ch1 are free (see freshnet_test.go).
func TestSeeItYourself(t *testing.T) {
	n := newFreshNet(t)
	n.run(booktest.Experiment(t, "build"))

	// The listening socket: descriptor 3, backlog 4096, nothing queued.
	srv := n.start(booktest.Experiment(t, "server"))
	srv.waitFor("listening on 127.0.0.1:8080\n")
	out := n.run(booktest.Experiment(t, "listening"))
	t.Logf("%s", out)
	if !regexp.MustCompile(`(?m)^LISTEN +0 +4096 +127\.0\.0\.1:8080 .*users:\(\("ch1",pid=\d+,fd=3\)\)$`).MatchString(out) {
		t.Errorf("ss -ltnp did not show ch1's listening socket as descriptor 3, backlog 4096, none waiting:\n%s", out)
	}

	// One client at a time: a silent connection holds the server, the
	// client's connection and its line wait in the kernel.
	silent := n.start(booktest.Experiment(t, "silent"))
	n.runUntil(`ss -Htn state established 'dport = :8080'`, regexp.MustCompile(`127\.0\.0\.1:8080`))
	client := n.start(booktest.Experiment(t, "client"))
	client.waitFor("r.ReadSlice")
	port := regexp.MustCompile(`local 127\.0\.0\.1:(\d+)`).FindStringSubmatch(client.out.String())[1]
	out = n.runUntil(booktest.Experiment(t, "queues"), regexp.MustCompile(`(?m)^ESTAB +6 +0 +127\.0\.0\.1:8080 +127\.0\.0\.1:`+port+`\b[\s\S]*^LISTEN +1 +4096 `))
	t.Logf("%s", out)
	if got := strings.Count(out, "ESTAB "); got != 4 {
		t.Errorf("ss -tn showed %d established sockets, want 4 (two connections, both ends):\n%s", got, out)
	}
	silent.interrupt() // Ctrl-C in the silent client's terminal
	silent.wait()
	client.wait()
	if !strings.Contains(client.out.String(), "\nhi 127.0.0.1:"+port+`, you said "hello"`) {
		t.Errorf("the waiting client got no reply once the silent one left:\n%s", client.out)
	}
	srv.waitFor(": EOF\n")
	srv.interrupt()
	srv.wait()
	if code := srv.exitCode(); code != 0 {
		t.Errorf("server exit status %d after Ctrl-C; output:\n%s", code, srv.out)
	}

	// strace -o: Ctrl-C reaches the server, not strace, which records the
	// listener's close on the way out.
	st := n.start(booktest.Experiment(t, "strace"))
	st.waitFor("listening on 127.0.0.1:8080\n")
	n.run(booktest.Experiment(t, "client"))
	st.interrupt()
	st.wait()
	if code := st.exitCode(); code != 0 {
		t.Errorf("strace exit status %d after Ctrl-C, want the server's 0; output:\n%s", code, st.out)
	}
	trace := n.run(booktest.Experiment(t, "trace"))
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

// The ephemeral range a fresh network namespace starts with, which is the
// kernel's default: 32768 to 60999.
func TestEphemeralRangeDefault(t *testing.T) {
	n := newFreshNet(t)
	if out := n.run(booktest.Experiment(t, "range")); strings.Join(strings.Fields(out), " ") != "32768 60999" {
		t.Errorf("the ephemeral range is %q, want 32768 and 60999", out)
	}
}
