//go:build linux

package main

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
	"golang.org/x/sys/unix"
)

// closeOnExec marks every descriptor of this process close-on-exec, so that
// none that the test inherited (from a shell, an IDE, a CI runner) shows up
// in the server's /proc/PID/fd.
func closeOnExec(t *testing.T) {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC)
		}
	}
}

// The chapter's "See it yourself" commands, run as written by
// booktest.Shell, in a network namespace of their own where port 8080 is
// free. What the reader starts in other terminals first (the server, the
// clients), each script starts in the background, waiting for what the
// reader would see before going on.

// waitSS waits until `ss -tnH FILTER` prints want lines.
func waitSS(filter string, want int) string {
	return `until [ "$(ss -tnH ` + filter + ` | wc -l)" = ` + string(rune('0'+want)) + ` ]; do sleep 0.1; done` + "\n"
}

// TestExperimentFdsAndSS: the server, one finished client (which leaves a
// TIME-WAIT line behind), a -hold client and one more client waiting in the
// queue; then the chapter's ls and ss commands. ls shows the server's two
// sockets, 3 and 4; ss shows the listener with 1 connection queued, the
// server's descriptor 4, the queued connection owned by nobody with 6
// bytes unread, and no TIME-WAIT line.
func TestExperimentFdsAndSS(t *testing.T) {
	fds, ss := booktest.Experiment(t, "fds"), booktest.Experiment(t, "ss")
	script := "go run ./code/05-accept >/dev/null 2>&1 &\n" +
		waitSS("state listening '( sport = :8080 )'", 1) +
		"go run ./code/05-accept -client -q >/dev/null\n" +
		"go run ./code/05-accept -client -hold -q >/dev/null &\n" +
		waitSS("state established '( sport = :8080 )'", 1) +
		"go run ./code/05-accept -client -q >/dev/null &\n" +
		waitSS("state established '( sport = :8080 )'", 2) +
		"until ss -ltnH src 127.0.0.1:8080 | grep -q '^LISTEN 1 '; do sleep 0.1; done\n" +
		"echo '--- fds'\n" + fds + "echo '--- ss'\n" + ss +
		"echo '--- all'\nss -tan '( sport = :8080 or dport = :8080 )'\n"
	closeOnExec(t)
	out, err := booktest.Shell(t, script)
	if err != nil {
		t.Fatalf("%v\nscript:\n%s\noutput:\n%s", err, script, out)
	}
	t.Logf("output:\n%s", out)
	i, j, k := strings.Index(out, "--- fds\n"), strings.Index(out, "--- ss\n"), strings.Index(out, "--- all\n")
	if i < 0 || j < i || k < j {
		t.Fatalf("output:\n%s", out)
	}
	lsOut, ssOut, all := out[i:j], out[j:k], out[k:]
	if n := len(regexp.MustCompile(`(?m) [34] -> socket:\[\d+\]$`).FindAllString(lsOut, -1)); n != 2 ||
		len(regexp.MustCompile(`(?m) \d+ -> `).FindAllString(lsOut, -1)) != 5 {
		t.Errorf("ls: want descriptors 0, 1, 2, and 3 and 4 sockets:\n%s", lsOut)
	}
	for _, re := range []string{
		`(?m)^LISTEN +1 +2 +127\.0\.0\.1:8080 .*fd=3\)\)`,
		`(?m)^ESTAB +0 +0 +127\.0\.0\.1:8080 .*fd=4\)\)`,
		`(?m)^ESTAB +6 +0 +127\.0\.0\.1:8080 +127\.0\.0\.1:\d+ *$`,
	} {
		if !regexp.MustCompile(re).MatchString(ssOut) {
			t.Errorf("ss: no line matching %s:\n%s", re, ssOut)
		}
	}
	if strings.Contains(ssOut, "TIME-WAIT") || !strings.Contains(all, "TIME-WAIT") {
		t.Errorf("want the first client's TIME-WAIT line in the unfiltered ss and not in the chapter's:\n%s%s", ssOut, all)
	}
}

// TestExperimentStrace: the chapter's strace command, in the background;
// one client; then Ctrl-C, which a terminal sends to strace and the server
// alike (strace, writing to a file, lets it through to the server). The
// trace has the accept4 of that client, descriptor 4, the shutdown that
// woke the last accept4, and the close of 3.
func TestExperimentStrace(t *testing.T) {
	if _, err := os.Stat("/usr/bin/strace"); err != nil {
		t.Skip("no strace")
	}
	block := booktest.Experiment(t, "strace")
	script := "rm -f /tmp/trace.txt\n(\n" + block + ") >/dev/null 2>&1 &\n" +
		waitSS("state listening '( sport = :8080 )'", 1) +
		"go run ./code/05-accept -client -q\n" +
		"pkill -INT -x 05-accept\nwait\ncat /tmp/trace.txt\n"
	out, err := booktest.Shell(t, script)
	if err != nil {
		t.Fatalf("%v\nscript:\n%s\noutput:\n%s", err, script, out)
	}
	t.Logf("output:\n%s", out)
	for _, re := range []string{
		`(?m)^\d+ +accept4\(3, \{sa_family=AF_INET, sin_port=htons\(\d+\), sin_addr=inet_addr\("127\.0\.0\.1"\)\}, \[112 => 16\], SOCK_CLOEXEC\) = 4$`,
		`(?m)^\d+ +read\(4, "hello\\n", 1024\) += 6$`,
		`(?m)^\d+ +shutdown\(3, SHUT_RDWR(\) += 0| <unfinished \.\.\.>)$`,
		`(?m)^\d+ +close\(3\) += 0$`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("the trace has no line matching %s:\n%s", re, out)
		}
	}
}

// TestExperimentEMFILE: the pitfall's commands, run as written while the
// server waits in accept4, as it does by the time a reader has typed them:
// prlimit lowers its limit to 4 descriptors, the client is still served,
// and then the server ends with accept4's EMFILE, and go run reports exit
// status 1.
func TestExperimentEMFILE(t *testing.T) {
	block := booktest.Experiment(t, "emfile")
	m := booktest.NewMachine(t)
	srv := m.Start("go run ./code/05-accept")
	srv.WaitFor("listening on 127.0.0.1:8080\n")
	m.Run(fmt.Sprintf(`until grep -qs '^%d 0x3 ' /proc/$(pgrep -o -x 05-accept)/task/*/syscall; do sleep 0.05; done`, unix.SYS_ACCEPT4))
	if out := m.Run(block); !strings.Contains(out, `you said "hello"`) {
		t.Errorf("the client was not served:\n%s", out)
	}
	srv.Wait()
	want := "accept4(3, ?, SOCK_CLOEXEC) = -1 EMFILE (Too many open files)\n" +
		"close(3) = 0\n" +
		"accept4: too many open files\n" +
		"exit status 1\n"
	if out := srv.Output(); !strings.HasSuffix(out, want) {
		t.Errorf("the server's terminal does not end with\n%s\nIt shows:\n%s", want, out)
	}
	if code := srv.ExitCode(); code != 1 {
		t.Errorf("exit status %d, want 1", code)
	}
}
