//go:build linux

package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// The chapter's commands, run as written: every command is the text of a
// block of the chapter (booktest.Experiment), run from the repository's root
// in namespaces of its own, where port 8080 is free and /tmp is empty (see
// freshnet_test.go).
func TestSeeItYourself(t *testing.T) {
	n := newFreshNet(t)
	n.run(booktest.Experiment(t, "build"))
	hold := n.start(booktest.Experiment(t, "hold"))
	hold.waitFor("closes it and exits\n")

	// ls: the socket is descriptor 3, the only one above 2.
	out := n.run(booktest.Experiment(t, "ls-fd"))
	t.Logf("%s", out)
	fds := regexp.MustCompile(`(?m) (\d+) -> (.*)$`).FindAllStringSubmatch(out, -1)
	if len(fds) != 4 || fds[3][1] != "3" || !strings.HasPrefix(fds[3][2], "socket:[") {
		t.Errorf("ls did not show descriptors 0, 1, 2 and the socket as 3:\n%s", out)
	}
	// ss -t knows nothing of a socket that is only bound.
	if out, code := n.runCode(booktest.Experiment(t, "ss")); out != "" || code != 1 {
		t.Errorf("ss -tanp | grep printed %q (status %d), want nothing (status 1)", out, code)
	}
	hold.interrupt()
	hold.wait()
	if code := hold.exitCode(); code != 0 {
		t.Errorf("exit status %d after Ctrl-C; output:\n%s", code, hold.out)
	}

	// strace -o: the trace ends with the program's close(3).
	st := n.start(booktest.Experiment(t, "strace"))
	st.waitFor("bound to 127.0.0.1:8080\n")
	st.interrupt()
	st.wait()
	if code := st.exitCode(); code != 0 {
		t.Errorf("strace exit status %d after Ctrl-C, want the program's 0; output:\n%s", code, st.out)
	}
	trace := n.run(booktest.Experiment(t, "trace"))
	t.Logf("%s", trace)
	rest := trace
	for _, step := range []string{
		`socket\(AF_INET, SOCK_STREAM\|SOCK_CLOEXEC, IPPROTO_IP\) = 3`,
		`setsockopt\(3, SOL_SOCKET, SO_REUSEADDR, \[1\], 4\) = 0`,
		`bind\(3, \{sa_family=AF_INET, sin_port=htons\(8080\), sin_addr=inet_addr\("127\.0\.0\.1"\)\}, 16\) = 0`,
		`getsockname\(3, \{sa_family=AF_INET, sin_port=htons\(8080\), sin_addr=inet_addr\("127\.0\.0\.1"\)\}, \[112 => 16\]\) = 0`,
		`close\(3\) += 0`,
	} {
		loc := regexp.MustCompile(`(?m)^\d+ +` + step).FindStringIndex(rest)
		if loc == nil {
			t.Fatalf("the trace has no line %s after the ones before it:\n%s", step, trace)
		}
		rest = rest[loc[1]:]
	}

	// A TIME_WAIT from chapter 1's server, which closes first: without
	// SO_REUSEADDR the bind fails, with it the bind succeeds.
	srv := n.start(booktest.Experiment(t, "ch1-server"))
	srv.waitFor("listening on 127.0.0.1:8080\n")
	// The server writes its reply, then closes; the client closes once it
	// has read the reply. The server nearly always closes first, but on a
	// busy machine the client can win, and its own end gets the TIME_WAIT:
	// as the chapter says, then the client is run again.
	serverSide := regexp.MustCompile(`(?m)^TIME-WAIT +0 +0 +127\.0\.0\.1:8080 `)
	for try := 1; ; try++ {
		n.run(booktest.Experiment(t, "ch1-client"))
		srv.waitFor("c.Close()")
		if serverSide.MatchString(n.run(`ss -tan 'sport = :8080'`)) {
			break
		}
		if try == 10 {
			t.Fatalf("after %d clients, no TIME_WAIT on the server's side", try)
		}
	}
	srv.interrupt()
	srv.wait()
	out = n.run(booktest.Experiment(t, "timewait"))
	t.Logf("%s", out)
	if !regexp.MustCompile(`(?m)^0 +0 +127\.0\.0\.1:8080 +127\.0\.0\.1:\d+`).MatchString(out) {
		t.Fatalf("ss showed no TIME_WAIT on 127.0.0.1:8080:\n%s", out)
	}
	out, code := n.runCode(booktest.Experiment(t, "reuse-off"))
	if code != 1 || !strings.HasSuffix(out, "bind 127.0.0.1:8080: address already in use\n") {
		t.Errorf("without SO_REUSEADDR: status %d, output\n%s\nwant status 1 and address already in use", code, out)
	}
	again := n.start(booktest.Experiment(t, "hold"))
	again.waitFor("bound to 127.0.0.1:8080\n")
	again.interrupt()
	again.wait()
}

// The section on addresses: an address the machine does not have, the
// ephemeral range, and port 0.
func TestAddressCommands(t *testing.T) {
	n := newFreshNet(t)
	out, code := n.runCode(booktest.Experiment(t, "notavail"))
	if code != 1 || !strings.Contains(out, "bind(3, 192.0.2.1:8080) = -1 EADDRNOTAVAIL (Cannot assign requested address)\n") ||
		!strings.Contains(out, "bind 192.0.2.1:8080: cannot assign requested address\n") {
		t.Errorf("binding 192.0.2.1: status %d, output:\n%s", code, out)
	}
	if out := n.run(booktest.Experiment(t, "range")); strings.Join(strings.Fields(out), " ") != "32768 60999" {
		t.Errorf("the ephemeral range is %q, want 32768 and 60999", out)
	}
	p := n.start(booktest.Experiment(t, "port0"))
	p.waitFor("closes it and exits\n")
	if m := regexp.MustCompile(`bound to 127\.0\.0\.1:(\d+)\n`).FindStringSubmatch(p.out.String()); m == nil || m[1] == "0" {
		t.Errorf("with port 0 the program did not print the port it got:\n%s", p.out)
	}
	p.interrupt()
	p.wait()
}
