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
// in namespaces of its own, where port 8080 is free and /tmp is empty
// (booktest.Machine).
func TestSeeItYourself(t *testing.T) {
	m := booktest.NewMachine(t)
	m.Run(booktest.Experiment(t, "build"))
	hold := m.Start(booktest.Experiment(t, "hold"))
	hold.WaitFor("closes it and exits\n")

	// ls: the socket is descriptor 3, the only one above 2.
	out := m.Run(booktest.Experiment(t, "ls-fd"))
	t.Logf("%s", out)
	fds := regexp.MustCompile(`(?m) (\d+) -> (.*)$`).FindAllStringSubmatch(out, -1)
	if len(fds) != 4 || fds[3][1] != "3" || !strings.HasPrefix(fds[3][2], "socket:[") {
		t.Errorf("ls did not show descriptors 0, 1, 2 and the socket as 3:\n%s", out)
	}
	// ss -t knows nothing of a socket that is only bound.
	if out, code := m.RunCode(booktest.Experiment(t, "ss")); out != "" || code != 1 {
		t.Errorf("ss -tanp | grep printed %q (status %d), want nothing (status 1)", out, code)
	}
	hold.Interrupt()
	hold.Wait()
	if code := hold.ExitCode(); code != 0 {
		t.Errorf("exit status %d after Ctrl-C; output:\n%s", code, hold.Output())
	}

	// strace -o: the trace ends with the program's close(3).
	st := m.Start(booktest.Experiment(t, "strace"))
	st.WaitFor("bound to 127.0.0.1:8080\n")
	st.Interrupt()
	st.Wait()
	if code := st.ExitCode(); code != 0 {
		t.Errorf("strace exit status %d after Ctrl-C, want the program's 0; output:\n%s", code, st.Output())
	}
	trace := m.Run(booktest.Experiment(t, "trace"))
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
	srv := m.Start(booktest.Experiment(t, "ch1-server"))
	srv.WaitFor("listening on 127.0.0.1:8080\n")
	// The server writes its reply, then closes; the client closes once it
	// has read the reply. The server nearly always closes first, but on a
	// busy machine the client can win, and its own end gets the TIME_WAIT:
	// as the chapter says, then the client is run again.
	serverSide := regexp.MustCompile(`(?m)^TIME-WAIT +0 +0 +127\.0\.0\.1:8080 `)
	for try := 1; ; try++ {
		m.Run(booktest.Experiment(t, "ch1-client"))
		srv.WaitFor("c.Close()")
		if serverSide.MatchString(m.Run(`ss -tan 'sport = :8080'`)) {
			break
		}
		if try == 10 {
			t.Fatalf("after %d clients, no TIME_WAIT on the server's side", try)
		}
	}
	srv.Interrupt()
	srv.Wait()
	out = m.Run(booktest.Experiment(t, "timewait"))
	t.Logf("%s", out)
	if !regexp.MustCompile(`(?m)^0 +0 +127\.0\.0\.1:8080 +127\.0\.0\.1:\d+`).MatchString(out) {
		t.Fatalf("ss showed no TIME_WAIT on 127.0.0.1:8080:\n%s", out)
	}
	out, code := m.RunCode(booktest.Experiment(t, "reuse-off"))
	if code != 1 || !strings.HasSuffix(out, "bind 127.0.0.1:8080: address already in use\n") {
		t.Errorf("without SO_REUSEADDR: status %d, output\n%s\nwant status 1 and address already in use", code, out)
	}
	again := m.Start(booktest.Experiment(t, "hold"))
	again.WaitFor("bound to 127.0.0.1:8080\n")
	again.Interrupt()
	again.Wait()
}

// The section on addresses: an address the machine does not have, the
// ephemeral range, and port 0.
func TestAddressCommands(t *testing.T) {
	m := booktest.NewMachine(t)
	out, code := m.RunCode(booktest.Experiment(t, "notavail"))
	if code != 1 || !strings.Contains(out, "bind(3, 192.0.2.1:8080) = -1 EADDRNOTAVAIL (Cannot assign requested address)\n") ||
		!strings.Contains(out, "bind 192.0.2.1:8080: cannot assign requested address\n") {
		t.Errorf("binding 192.0.2.1: status %d, output:\n%s", code, out)
	}
	if out := m.Run(booktest.Experiment(t, "range")); strings.Join(strings.Fields(out), " ") != "32768 60999" {
		t.Errorf("the ephemeral range is %q, want 32768 and 60999", out)
	}
	p := m.Start(booktest.Experiment(t, "port0"))
	p.WaitFor("closes it and exits\n")
	if got := regexp.MustCompile(`bound to 127\.0\.0\.1:(\d+)\n`).FindStringSubmatch(p.Output()); got == nil || got[1] == "0" {
		t.Errorf("with port 0 the program did not print the port it got:\n%s", p.Output())
	}
	p.Interrupt()
	p.Wait()
}
