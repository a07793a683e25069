//go:build linux

package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// The chapter's "see it yourself" commands, run as written, each in a
// network namespace of its own where 127.0.0.1:8080 is free.

// shell runs the chapter's block experiment=name and returns its output,
// failing the test if the script fails.
func shell(t *testing.T, name string) string {
	t.Helper()
	script := booktest.Experiment(t, name)
	out, err := booktest.Shell(t, script)
	if err != nil {
		t.Fatalf("experiment=%s: %v\n%s", name, err, out)
	}
	return out
}

// TestExperimentStates: ss shows the client's TIME-WAIT after an orderly
// close, with a timer of at most 60 seconds (TCP_TIMEWAIT_LEN: Linux does
// not derive it from an MSL), none after a linger0 client, and the
// FIN-WAIT-2/CLOSE-WAIT pair, then the server's own TIME-WAIT on port 8080,
// when the server stops first.
func TestExperimentStates(t *testing.T) {
	out := shell(t, "states")
	timers := regexp.MustCompile(`timer:\(timewait,(\d+)sec,0\)`).FindAllStringSubmatch(out, -1)
	if len(timers) != 3 { // one after the first client, two at the end
		t.Fatalf("want 3 TIME-WAIT timers in the output, got %d:\n%s", len(timers), out)
	}
	for _, m := range timers {
		if s, _ := strconv.Atoi(m[1]); s <= 0 || s > 60 {
			t.Errorf("TIME-WAIT timer %s s, want at most 60 (TCP_TIMEWAIT_LEN):\n%s", m[1], out)
		}
	}
	for _, re := range []string{
		`(?m)^LISTEN +0 +2 +127\.0\.0\.1:8080 `,
		`(?m)^TIME-WAIT +0 +0 +127\.0\.0\.1:\d+ +127\.0\.0\.1:8080 +$`,
		`(?m)^FIN-WAIT-2 +0 +0 +127\.0\.0\.1:8080 +127\.0\.0\.1:\d+ `,
		`(?m)^CLOSE-WAIT +1 +0 +127\.0\.0\.1:\d+ +127\.0\.0\.1:8080 `,
		`(?m)^TIME-WAIT +0 +0 +127\.0\.0\.1:8080 +127\.0\.0\.1:\d+ +timer:\(timewait,`,
	} {
		if !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("no line matching %s in:\n%s", re, out)
		}
	}
	// After the linger0 client, ss -tan state time-wait still lists only
	// the first client's connection: the RST left nothing behind.
	if m := regexp.MustCompile(`(?s)echoed "hello\\n"\n.*?echoed "hello\\n"\n(.*?)connection:`).FindStringSubmatch(out); m == nil {
		t.Errorf("cannot find the output of ss after the linger0 client in:\n%s", out)
	} else if n := strings.Count(m[1], "127.0.0.1:8080"); n != 1 {
		t.Errorf("after the linger0 client, %d connections in TIME-WAIT, want 1 (the first client's):\n%s", n, m[1])
	}
}

// TestExperimentStuck: a default client against a -sort server waits for
// an echo that comes only after end of file; Ctrl-C (from timeout) ends
// it. The client's shutdown(SHUT_RDWR) sends its FIN, the server reads end
// of file and writes its reply, and that reply reaches a socket that has
// sent its FIN and reads no more: the client's kernel answers with RST.
// The client's read, woken by the same shutdown, returns 0 if it runs
// before the reply arrives, and fails with ECONNRESET if after: both are
// the chapter's two outcomes, and nothing else is.
func TestExperimentStuck(t *testing.T) {
	out := shell(t, "stuck")
	client := regexp.MustCompile(`shutdown\(3, SHUT_RDWR\) = 0\n` +
		`read\(3, "", 6\) = (0|-1 ECONNRESET \(Connection reset by peer\))\n` +
		`close\(3\) = 0\n` +
		`client exit status 0\n`)
	if !client.MatchString(out) {
		t.Errorf("want the client's read to return 0 or fail with ECONNRESET after its shutdown, and status 0, in:\n%s", out)
	}
	server := `read(4, "hello\n", 4096) = 6` + "\n" + `read(4, "", 4096) = 0` + "\n" +
		"getsockopt(4, SOL_TCP, TCP_INFO) = {tcpi_state=TCP_CLOSE_WAIT}\n" +
		`write(4, "hello\n", 6) = 6` + "\nclose(4) = 0\n"
	if !strings.Contains(out, server) {
		t.Errorf("want the server to read end of file, then write its reply, in:\n%s", out)
	}
}

// TestExperimentStrace: strace shows the half-closing client's calls, and
// the struct linger the kernel receives.
func TestExperimentStrace(t *testing.T) {
	out := shell(t, "strace")
	for _, want := range []string{
		`connect(3, {sa_family=AF_INET, sin_port=htons(8080), sin_addr=inet_addr("127.0.0.1")}, 16) = 0`,
		`write(3, "pear\napple\nfig\n", 15) = 15`,
		`shutdown(3, SHUT_WR)        = 0`,
		`read(3, "apple\nfig\npear\n", 4096) = 15`,
		`read(3, "", 4096)           = 0`,
		`setsockopt(3, SOL_SOCKET, SO_LINGER, {l_onoff=1, l_linger=0}, 8) = 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}
