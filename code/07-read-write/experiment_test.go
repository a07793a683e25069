//go:build linux

package main

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// The chapter's "see it yourself" commands, run as written. booktest.Shell
// runs each script in a network namespace of its own, where port 8080 is
// free, from the module's root; what the text has the reader do in other
// terminals comes before or after the command in the script.

// TestExperimentBufferSysctls: the command that shows tcp_rmem and
// tcp_wmem prints their three numbers each, the ones the tests read.
func TestExperimentBufferSysctls(t *testing.T) {
	out, err := booktest.Shell(t, booktest.Experiment(t, "sysctls"))
	want := ""
	for _, name := range []string{"ipv4/tcp_rmem", "ipv4/tcp_wmem"} {
		var nums []string
		for _, v := range sysctl(t, name) {
			nums = append(nums, strconv.Itoa(v))
		}
		want += strings.Join(nums, "\t") + "\n"
	}
	if err != nil || out != want {
		t.Errorf("the chapter's command printed %q (%v), want %q", out, err, want)
	}
}

// waitFor is a shell loop that waits (within Shell's limit) until the
// command prints something.
func waitFor(cmd string) string {
	return "until [ -n \"$(" + cmd + ")\" ]; do sleep 0.05; done\n"
}

// TestExperimentBuffers: the text's ss experiment. A server with -bufsize
// 16 is busy with a silent nc; a second nc pushes 1,000,000 bytes into a
// connection nobody has accepted. The chapter's ss command shows them
// waiting in two buffers, exactly 1,000,000 in all. Then the silent nc
// goes (Ctrl-C), and the server reads the x's 16 at a time: 64 reads, and
// it gives up on a line with no newline in 1024 bytes (on stderr).
func TestExperimentBuffers(t *testing.T) {
	for _, tool := range []string{"nc", "ss"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (netcat-openbsd, iproute2)", tool)
		}
	}
	prog := booktest.Build(t)
	bg := func(name string) string { return strings.TrimSpace(booktest.Experiment(t, name)) + " &\n" }
	srvOut := filepath.Join(t.TempDir(), "server.out")
	script := prog + " -bufsize 16 > " + srvOut + " 2>&1 &\n" +
		waitFor("ss -ltnH 'sport = :8080'") +
		bg("nc-hold") +
		waitFor("grep connection: "+srvOut) +
		bg("nc-push") +
		// Until everything nc wrote is in one of the two buffers. Then the
		// chapter's command, until its snapshot says so too: a segment
		// the receiver has queued but not yet acknowledged (its ACK is
		// delayed) is counted in both queues for a moment, which a loaded
		// machine sometimes catches (1,037,888 bytes once).
		waitFor("ss -tnH state established | awk '{q += $1 + $2} END {if (q == 1000000) print q}'") +
		"for try in 1 2 3 4 5 6 7 8 9 10; do\n" +
		"  snap=$(" + strings.TrimSpace(booktest.Experiment(t, "ss-mem")) + ")\n" +
		"  [ \"$(echo \"$snap\" | awk '{q += $1 + $2} END {print q}')\" = 1000000 ] && break\n" +
		"  sleep 0.1\n" +
		"done\n" +
		"echo \"$snap\"\n" +
		"echo '--- Ctrl-C'\nkill %2 # (SIGINT is ignored by a script's background jobs)\n" +
		waitFor("grep 'no newline' "+srvOut) +
		"cat " + srvOut + "\n"
	out, err := booktest.Shell(t, script)
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	t.Logf("the script printed:\n%s", out)
	ss, server, _ := strings.Cut(out, "--- Ctrl-C\n")
	// For an established socket, Recv-Q is its receive buffer's bytes and
	// Send-Q its unacknowledged ones.
	line := regexp.MustCompile(`(?m)^(\d+) +(\d+) +127\.0\.0\.1:(\d+) +127\.0\.0\.1:(\d+)\s*\n\s+skmem:\(r(\d+),rb(\d+),t\d+,tb(\d+),`)
	var total, queues int
	for _, m := range line.FindAllStringSubmatch(ss, -1) {
		recvq, _ := strconv.Atoi(m[1])
		sendq, _ := strconv.Atoi(m[2])
		total += recvq + sendq
		if recvq > 0 || sendq > 0 {
			queues++
		}
	}
	if total != 1_000_000 || queues != 2 {
		t.Errorf("ss shows %d bytes queued, in %d queues; want 1000000, in the server end's Recv-Q and nc's Send-Q:\n%s", total, queues, ss)
	}
	if n := strings.Count(server, `read(4, "xxxxxxxxxxxxxxxx", 16) = 16`+"\n"); n != 64 {
		t.Errorf("the server read 16 x's %d times, want 64 (1024 bytes):\n%s", n, server)
	}
	if !regexp.MustCompile(`(?m)^127\.0\.0\.1:\d+: no newline in 1024 bytes$`).MatchString(server) {
		t.Errorf("the server did not say it gave up on the line:\n%s", server)
	}
}
