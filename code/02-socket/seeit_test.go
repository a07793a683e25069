//go:build linux

package main

import (
	"regexp"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// The "see it yourself" section, run as written: every command is the text of
// a block of the chapter (booktest.Experiment), run from the repository's
// root in namespaces of its own, with /tmp empty (booktest.Machine).
func TestSeeItYourself(t *testing.T) {
	m := booktest.NewMachine(t)
	m.Run(booktest.Experiment(t, "build"))
	hold := m.Start(booktest.Experiment(t, "hold"))
	hold.WaitFor("closes them and exits\n")

	// ls -l /proc/PID/fd: 3 to 8 are the six sockets, and nothing else is
	// open above 2.
	out := m.Run(booktest.Experiment(t, "ls-fd"))
	t.Logf("%s", out)
	fds := regexp.MustCompile(`(?m) (\d+) -> (.*)$`).FindAllStringSubmatch(out, -1)
	var above2 []string
	for _, m := range fds {
		if m[1] != "0" && m[1] != "1" && m[1] != "2" {
			above2 = append(above2, m[1])
			if !strings.HasPrefix(m[2], "socket:[") {
				t.Errorf("descriptor %s -> %s, want a socket", m[1], m[2])
			}
		}
	}
	if strings.Join(above2, " ") != "3 4 5 6 7 8" {
		t.Errorf("ls listed descriptors %v above 2, want the sockets 3 to 8:\n%s", above2, out)
	}

	// ss: the two unnamed AF_UNIX sockets, 7 and 8; no IP socket.
	out = m.Run(booktest.Experiment(t, "ss-unix"))
	t.Logf("%s", out)
	if strings.Count(out, "\n") != 2 || !regexp.MustCompile(`(?m)^u_str +UNCONN .*fd=7\)\)$`).MatchString(out) ||
		!regexp.MustCompile(`(?m)^u_dgr +UNCONN .*fd=8\)\)$`).MatchString(out) {
		t.Errorf("ss -xap did not show exactly the two AF_UNIX sockets, 7 and 8:\n%s", out)
	}
	if out, code := m.RunCode(booktest.Experiment(t, "ss-ip")); out != "" || code != 1 {
		t.Errorf("ss -tuap | grep printed %q (status %d), want nothing (status 1)", out, code)
	}

	hold.Interrupt() // Ctrl-C
	hold.Wait()
	if code := hold.ExitCode(); code != 0 {
		t.Errorf("exit status %d after Ctrl-C; output:\n%s", code, hold.Output())
	}

	out = m.Run(booktest.Experiment(t, "strace"))
	t.Logf("%s", out)
	rest := out
	for _, step := range []string{
		`socket\(AF_INET, SOCK_STREAM\|SOCK_CLOEXEC, IPPROTO_IP\) = 3`,
		`socket\(AF_UNIX, SOCK_DGRAM\|SOCK_CLOEXEC, 0\) = 8`,
		`getsockopt\(3, SOL_SOCKET, SO_DOMAIN, \[2\], \[4\]\) = 0`,
		`fcntl\(3, F_GETFD\) += 0x1 \(flags FD_CLOEXEC\)`,
		`getsockname\(3, \{sa_family=AF_INET, sin_port=htons\(0\), sin_addr=inet_addr\("0\.0\.0\.0"\)\}, \[112 => 16\]\) = 0`,
		`getsockopt\(3, SOL_SOCKET, SO_PROTOCOL, \[6\], \[4\]\) = 0`,
		`getsockname\(7, \{sa_family=AF_UNIX\}, \[112 => 2\]\) = 0`,
		`close\(9\) += 0`,
		`close\(5\) += 0`,
		`socket\(AF_INET6, SOCK_STREAM\|SOCK_CLOEXEC, IPPROTO_IP\) = 5`,
		`socket\(AF_INET, SOCK_STREAM\|SOCK_CLOEXEC, IPPROTO_UDP\) = -1 EPROTONOSUPPORT`,
		`close\(8\) += 0`,
	} {
		loc := regexp.MustCompile(`(?m)^(?:\[pid +\d+\] )?` + step).FindStringIndex(rest)
		if loc == nil {
			t.Fatalf("strace showed no line %s after the ones before it:\n%s", step, out)
		}
		rest = rest[loc[1]:]
	}
}
