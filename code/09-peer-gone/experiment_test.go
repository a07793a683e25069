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

// The chapter's "see it yourself" commands, run as written, each in a
// network namespace of its own where 127.0.0.1:8080 is free.

func shell(t *testing.T, script string) string {
	t.Helper()
	out, err := booktest.Shell(t, script)
	if err != nil {
		t.Fatalf("%v\nscript:\n%s\noutput:\n%s", err, script, out)
	}
	return out
}

// TestExperimentKeepaliveTimers: ss -o shows a keepalive timer on the
// server's end of the connection only, and after the first probe (at 2 s)
// the count of unanswered probes is still 0: the client's kernel answered.
func TestExperimentKeepaliveTimers(t *testing.T) {
	out := shell(t, booktest.Experiment(t, "keepalive"))
	timer := regexp.MustCompile(`(?m)^0 +0 +127\.0\.0\.1:8080 +127\.0\.0\.1:\d+ +timer:\(keepalive,[0-9.]+m?s,0\)`)
	if n := len(timer.FindAllString(out, -1)); n != 2 {
		t.Errorf("want the server's end listed twice with a keepalive timer and 0 unanswered probes, found %d in:\n%s", n, out)
	}
	if regexp.MustCompile(`(?m)^0 +0 +127\.0\.0\.1:\d+ +127\.0\.0\.1:8080 +timer:`).MatchString(out) {
		t.Errorf("the client's end has a timer, want none (no keepalive):\n%s", out)
	}
	if !strings.Contains(out, "127.0.0.1:8080: sendmsg 3: broken pipe\n") {
		t.Errorf("want the client to end with EPIPE once the server stopped:\n%s", out)
	}
}

// TestExperimentStrace: strace shows the write-after-eof client's calls as
// the chapter quotes them: sendmsg with MSG_NOSIGNAL, ppoll for the reset,
// EPIPE.
func TestExperimentStrace(t *testing.T) {
	out := shell(t, booktest.Experiment(t, "strace"))
	at := 0
	for _, want := range []string{
		`connect(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("127.0.0.1")}, 16) = 0`,
		`sendmsg(3, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="hello\n", iov_len=6}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, MSG_NOSIGNAL) = 6`,
		`read(3, "hello\n", 6)             = 6`,
		`read(3, "", 4096)                 = 0`,
		`sendmsg(3, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="still there?\n", iov_len=13}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, MSG_NOSIGNAL) = 13`,
		`ppoll([{fd=3, events=0}], 1, {tv_sec=5, tv_nsec=0}, NULL, 0) = 1 ([{fd=3, revents=POLLERR|POLLHUP}], left {tv_sec=`,
		`sendmsg(3, {msg_name=NULL, msg_namelen=0, msg_iov=[{iov_base="still there?\n", iov_len=13}], msg_iovlen=1, msg_controllen=0, msg_flags=0}, MSG_NOSIGNAL) = -1 EPIPE (Broken pipe)`,
		`close(3)                          = 0`,
	} {
		i := strings.Index(out[at:], want)
		if i < 0 {
			t.Fatalf("no %q (in this order) in:\n%s", want, out)
		}
		at += i + len(want)
	}
}

// TestExperimentVanish: the chapter's commands that build two network
// namespaces by hand, as root, and make the client vanish: about four
// seconds later the server's read fails with ETIMEDOUT. They run in a
// mount namespace of the test's own, so that the names a and b, under
// /run/netns, are the test's alone.
func TestExperimentVanish(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and a veth pair with ip(8)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8), from iproute2")
	}
	// Give the kernel twice the four seconds it needs, then clean up as
	// the chapter says.
	file := filepath.Join(t.TempDir(), "vanish.sh")
	script := booktest.Experiment(t, "vanish") + "sleep 8\n" + booktest.Experiment(t, "vanish-stop")
	if err := os.WriteFile(file, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	out := shell(t, "unshare -m --propagation private bash -c 'mount -t tmpfs tmpfs /run/netns && bash "+file+"'\n")
	for _, want := range []string{
		"connection: TCP, local 198.18.9.1:",
		"sending nothing until Ctrl-C\n",
		`read(4, "", 4096) = -1 ETIMEDOUT (Connection timed out)` + "\nclose(4) = 0\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}
