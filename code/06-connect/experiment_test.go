//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// The chapter's "see it yourself" commands, run as written. booktest.Shell
// runs each script in a network namespace of its own, where port 8080 is
// free, from the module's root; what a test sets up around a command (the
// other terminals of the text) comes before or after it in the script.

// TestExperimentPortRange: the command that shows the ephemeral range
// prints its two ends, 32768 and 60999 by default (a new namespace has the
// default).
func TestExperimentPortRange(t *testing.T) {
	out, err := booktest.Shell(t, booktest.Experiment(t, "portrange"))
	if err != nil || !regexp.MustCompile(`^32768\s+60999\n$`).MatchString(out) {
		t.Errorf("the chapter's command printed %q (%v), want the default range, 32768 and 60999", out, err)
	}
}

// waitFor is a shell loop that waits (within Shell's limit) until the
// command prints something.
func waitFor(cmd string) string {
	return "until [ -n \"$(" + cmd + ")\" ]; do sleep 0.05; done\n"
}

// TestExperimentSS: the busy server of the text, from outside. A server
// with backlog 0 serves a -hold client; a second client's connection waits
// in the accept queue with its 6 bytes; a third client waits in SYN_SENT.
// Then the chapter's two ss commands, as written.
func TestExperimentSS(t *testing.T) {
	if _, err := exec.LookPath("ss"); err != nil {
		t.Skip("needs ss, from iproute2")
	}
	prog := named(t, booktest.Build(t), "06-connect") // as go run names it
	// The other terminals' programs print elsewhere, not among ss's lines.
	script := prog + " -backlog 0 -q >/dev/null &\n" +
		waitFor("ss -ltnH 'sport = :8080'") +
		prog + " -client -hold -q >/dev/null &\n" +
		waitFor("ss -tnH state established 'dport = :8080'") +
		prog + " -client -q >/dev/null &\n" +
		waitFor("ss -tnH state established 'sport = :8080' | awk '$1 == 6'") +
		prog + " -client -q >/dev/null &\n" +
		waitFor("ss -tnoH state syn-sent 'dport = :8080' | grep ',[1-9])'") +
		booktest.Experiment(t, "ss") + booktest.Experiment(t, "ss-timer")
	out, err := booktest.Shell(t, script)
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	t.Logf("the commands printed:\n%s", out)
	for _, want := range []string{
		`(?m)^LISTEN +1 +0 +127\.0\.0\.1:8080 .*fd=3\)\) *$`,       // one connection queued; backlog 0
		`(?m)^ESTAB +0 +0 +127\.0\.0\.1:8080 .*fd=4\)\) *$`,        // client 1, served
		`(?m)^ESTAB +6 +0 +127\.0\.0\.1:8080 +127\.0\.0\.1:\d+ *$`, // client 2's hello, no process yet
		`(?m)^SYN-SENT +0 +1 +127\.0\.0\.1:\d+ +127\.0\.0\.1:8080 .*fd=3\)\) *$`,
		`(?m)^0 +1 +127\.0\.0\.1:\d+ +127\.0\.0\.1:8080 +timer:\(on,[^,]+,[1-9]\d*\) *$`,
	} {
		if !regexp.MustCompile(want).MatchString(out) {
			t.Errorf("no line matching %s", want)
		}
	}
	if n := strings.Count(out, "ESTAB"); n != 4 {
		t.Errorf("%d ESTAB lines, want 4: two connections, each seen from both ends", n)
	}
}

// named copies the program to a file called name, which is what ss shows
// as the process's name.
func named(t *testing.T, prog, name string) string {
	t.Helper()
	b, err := os.ReadFile(prog)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExperimentStrace: the chapter's strace command, as written, with a
// server listening on 8080 and then, the same command again, with none.
func TestExperimentStrace(t *testing.T) {
	if _, err := exec.LookPath("strace"); err != nil {
		t.Skip("needs strace")
	}
	cmd := booktest.Experiment(t, "strace")
	prog := booktest.Build(t)
	// The server's output, and the client's own (strace prints on
	// stderr), go elsewhere, so that no line of theirs cuts one of
	// strace's in two.
	cmd = "{\n" + cmd + "} >/dev/null\n"
	script := prog + " -q >/dev/null &\n" + waitFor("ss -ltnH 'sport = :8080'") +
		cmd + "echo '--- no server'\nkill %1; wait %1\n" + cmd
	out, err := booktest.Shell(t, script)
	t.Logf("the commands printed:\n%s", out)
	served, refused, ok := strings.Cut(out, "--- no server\n")
	if !ok {
		t.Fatalf("the first command failed (%v):\n%s", err, out)
	}
	for _, c := range []struct {
		out  string
		want []string
	}{
		{served, []string{
			`socket\(AF_INET, SOCK_STREAM\|SOCK_CLOEXEC\|SOCK_NONBLOCK, IPPROTO_IP\) = 3`,
			`connect\(3, \{sa_family=AF_INET, sin_port=htons\(8080\), sin_addr=inet_addr\("127\.0\.0\.1"\)\}, 16\) = -1 EINPROGRESS`,
			`ppoll\(\[\{fd=3, events=POLLOUT\}\], 1, \{tv_sec=1, tv_nsec=0\}, NULL, 0\) = 1 \(\[\{fd=3, revents=POLLOUT\}\]`,
			`getsockopt\(3, SOL_SOCKET, SO_ERROR, \[0\], \[4\]\) = 0`,
			`getsockname\(3, \{sa_family=AF_INET, sin_port=htons\(\d+\)`,
			`getsockopt\(3, SOL_SOCKET, SO_PROTOCOL, \[6\], \[4\]\) = 0`,
			`getpeername\(3, \{sa_family=AF_INET, sin_port=htons\(8080\)`,
		}},
		{refused, []string{
			`ppoll\(\[\{fd=3, events=POLLOUT\}\], 1, \{tv_sec=1, tv_nsec=0\}, NULL, 0\) = 1 \(\[\{fd=3, revents=POLLOUT\|POLLERR\|POLLHUP\}\]`,
			`getsockopt\(3, SOL_SOCKET, SO_ERROR, \[ECONNREFUSED\], \[4\]\) = 0`,
		}},
	} {
		for _, want := range c.want {
			if !regexp.MustCompile(want).MatchString(c.out) {
				t.Errorf("no line matching %s in:\n%s", want, c.out)
			}
		}
	}
}
