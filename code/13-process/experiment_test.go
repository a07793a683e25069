//go:build linux

package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestExperimentZombie runs the chapter's commands as written, on a
// machine of its own (booktest.Machine: root, a private /tmp, a PID
// namespace): a server with -nowait and a client, then ps shows the
// child as a zombie, state Z, <defunct>, its parent the server. Then
// strace shows how a child starts (clone with CLONE_VFORK, then execve)
// and how Cmd.Wait waits (waitid on a pidfd).
func TestExperimentZombie(t *testing.T) {
	t.Parallel()
	m := booktest.NewMachine(t)
	srv := m.Start(booktest.Experiment(t, "nowait"))
	srv.WaitFor("listening on 127.0.0.1:8080\n")
	m.Run(booktest.Experiment(t, "client"))
	out := m.RunUntil(booktest.Experiment(t, "ps"), regexp.MustCompile(`(?m) Z .*<defunct>$`))
	lines := regexp.MustCompile(`(?m)^ *(\d+) +(\d+) +(\S+) +(.*)$`).FindAllStringSubmatch(out, -1)
	var server, zombie []string
	for _, l := range lines {
		switch {
		case strings.Contains(l[4], "-nowait"):
			server = l
		case strings.HasPrefix(l[3], "Z"):
			zombie = l
		}
	}
	if server == nil || zombie == nil || zombie[2] != server[1] {
		t.Errorf("ps: want the server and a zombie (Z) whose parent it is:\n%s", out)
	}
	srv.Interrupt()
	srv.Wait()

	m.Run(booktest.Experiment(t, "build"))
	st := m.Start(booktest.Experiment(t, "strace"))
	m.RunUntil("ss -Htln", regexp.MustCompile(`:8080 `))
	m.Run(booktest.Experiment(t, "client"))
	// The child's waitid, with its resource usage; not the one of the
	// probe that os makes at its first start, which asks for none.
	m.RunUntil("cat /tmp/trace", regexp.MustCompile(`si_status=0, .*WEXITED, \{ru_utime=`))
	st.Interrupt()
	st.Wait()
	out = m.Run(booktest.Experiment(t, "trace"))
	for _, re := range []string{
		`clone\(child_stack=NULL, flags=CLONE_VM\|CLONE_PIDFD\|CLONE_VFORK\|SIGCHLD`,
		`execve\("/tmp/13-process", \["/tmp/13-process", "-child", "-bufsize", "4096", "-q"\]`,
		`\{si_signo=SIGCHLD, si_code=CLD_EXITED, si_pid=\d+, si_uid=0, si_status=0, .*WEXITED, \{ru_utime=`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("strace: no line like %s in:\n%s", re, out)
		}
	}
}

// TestExperimentNproc runs the chapter's RLIMIT_NPROC script as written:
// the server runs as uid 4242, its limit is lowered to the threads it has,
// and the next child cannot start: clone fails with EAGAIN, the parent
// says so, the client is not served, and the server goes on; with the
// limit back, a client is served, and the server exits 0 on SIGTERM. It
// needs root, to run the server as another user.
func TestExperimentNproc(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs the server as uid 4242")
	}
	out, err := booktest.Shell(t, booktest.Experiment(t, "nproc"))
	if err != nil {
		t.Fatalf("the script failed: %v\n%s", err, out)
	}
	for _, re := range []string{
		`(?m)^start a child for connection 4: fork/exec /tmp/tmp\.\w+/13-process: resource temporarily unavailable$`,
		`(?s)client: exit status 1\n.*echoed "hello\\n"\n.*client: exit status 0\n.*server: exit status 0\n`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no match for %s in:\n%s", re, out)
		}
	}
}
