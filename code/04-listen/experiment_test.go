//go:build linux

package main

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestExperimentNstat runs the chapter's nstat commands as written, in a
// network namespace of their own (so that port 8080 is free and no other
// socket moves the counters), after starting the server as "Run it" does
// and waiting until it listens. The client's two extra SYNs are dropped,
// again at each retransmission: both counters grow by at least 2.
func TestExperimentNstat(t *testing.T) {
	cmds := booktest.Experiment(t, "nstat")
	script := "go run ./code/04-listen -backlog 2 >/dev/null 2>&1 &\n" +
		"until ss -ltnH src 127.0.0.1:8080 | grep -q LISTEN; do sleep 0.1; done\n" + cmds
	out, err := booktest.Shell(t, script, "NSTAT_HISTORY="+filepath.Join(t.TempDir(), "nstat"))
	if err != nil {
		t.Fatalf("%v\nscript:\n%s\noutput:\n%s", err, script, out)
	}
	if !strings.Contains(out, "3 of 5 connected, 2 waiting in SYN_SENT\n") {
		t.Errorf("the client did not report 3 of 5 connected:\n%s", out)
	}
	for _, c := range []string{"TcpExtListenOverflows", "TcpExtListenDrops"} {
		m := regexp.MustCompile(`(?m)^` + c + `\s+(\d+)`).FindStringSubmatch(out)
		if m == nil {
			t.Errorf("nstat printed no %s:\n%s", c, out)
			continue
		}
		if n, _ := strconv.Atoi(m[1]); n < 2 {
			t.Errorf("%s %d, want at least 2 (one per waiting client):\n%s", c, n, out)
		}
	}
}

// startServer is the shell lines that start the chapter's server, as "Run
// it" does, in the background, and wait until it listens.
const startServer = "go run ./code/04-listen -backlog 2 >/dev/null 2>&1 &\n" +
	"until ss -ltnH src 127.0.0.1:8080 | grep -q LISTEN; do sleep 0.1; done\n"

// TestExperimentSS: the chapter's ss commands while a client with five
// connections waits: the listener shows Recv-Q 3 and Send-Q 2, the
// clients three ESTAB and two SYN-SENT; ss -i on a waiting client, once it
// has sent its SYN again, shows the retransmission and rto:1000.
func TestExperimentSS(t *testing.T) {
	ss, ssi := booktest.Experiment(t, "ss"), booktest.Experiment(t, "ss-i")
	script := startServer +
		"go run ./code/04-listen -client -n 5 -q >/dev/null &\n" +
		"until [ \"$(ss -tnH state syn-sent dst 127.0.0.1:8080 | wc -l)\" = 2 ]; do sleep 0.1; done\n" +
		"echo '--- ss'\n" + ss +
		"until ss -tniH state syn-sent dst 127.0.0.1:8080 | grep -q 'retrans:1/1'; do sleep 0.1; done\n" +
		"echo '--- ss-i'\n" + ssi
	out, err := booktest.Shell(t, script)
	if err != nil {
		t.Fatalf("%v\nscript:\n%s\noutput:\n%s", err, script, out)
	}
	t.Logf("output:\n%s", out)
	i := strings.Index(out, "--- ss-i\n")
	if i < 0 {
		t.Fatalf("output:\n%s", out)
	}
	first, second := out[:i], out[i:]
	if !regexp.MustCompile(`(?m)^LISTEN +3 +2 +127\.0\.0\.1:8080 `).MatchString(first) {
		t.Errorf("ss -ltn: want LISTEN 3 2:\n%s", first)
	}
	if e, s := strings.Count(first, "\nESTAB "), strings.Count(first, "\nSYN-SENT "); e != 3 || s != 2 {
		t.Errorf("ss -tn: %d ESTAB and %d SYN-SENT, want 3 and 2:\n%s", e, s, first)
	}
	for _, want := range []string{"rto:1000", "retrans:1/1", "unacked:1"} {
		if !strings.Contains(second, want) {
			t.Errorf("ss -tni: no %q:\n%s", want, second)
		}
	}
}

// TestExperimentStrace: the chapter's strace command, then a client of
// three connections and a SIGUSR1 as the chapter says; strace shows listen
// and three accept4 calls, each returning 4.
func TestExperimentStrace(t *testing.T) {
	trace, client := booktest.Experiment(t, "strace"), booktest.Experiment(t, "strace-client")
	dir := t.TempDir()
	script := "(\n" + trace + ") >" + dir + "/out 2>&1 &\n" +
		"until ss -ltnH src 127.0.0.1:8080 | grep -q LISTEN; do sleep 0.1; done\n" +
		client +
		"until [ \"$(grep -c 'accept4(3, {' " + dir + "/out)\" = 3 ]; do sleep 0.1; done\n" +
		"pkill -INT -x 04-listen; wait; cat " + dir + "/out\n"
	out, err := booktest.Shell(t, script)
	if err != nil {
		t.Fatalf("%v\nscript:\n%s\noutput:\n%s", err, script, out)
	}
	t.Logf("output:\n%s", out)
	if !regexp.MustCompile(`(?m)^(\[pid +\d+\] )?listen\(3, 2\) += 0$`).MatchString(out) ||
		len(regexp.MustCompile(`(?m)^(\[pid +\d+\] )?accept4\(3, \{sa_family=AF_INET, .*SOCK_CLOEXEC\) = 4$`).FindAllString(out, -1)) != 3 {
		t.Errorf("want listen(3, 2) = 0 and three accept4(3, ...) = 4:\n%s", out)
	}
}

// TestExperimentSomaxconn: the chapter's commands for the cap: somaxconn
// (4096 in a new network namespace, as on any kernel since 5.4), and the
// server with -backlog 100000, which listens with that backlog and reports
// the cap.
func TestExperimentSomaxconn(t *testing.T) {
	somaxconn, block := booktest.Experiment(t, "somaxconn"), booktest.Experiment(t, "backlog-cap")
	dir := t.TempDir()
	script := somaxconn + "(\n" + block + ") >" + dir + "/out 2>&1 &\n" +
		"until grep -q 'accept queue:' " + dir + "/out; do sleep 0.1; done\n" +
		"cat " + dir + "/out\n"
	out, err := booktest.Shell(t, script)
	if err != nil {
		t.Fatalf("%v\nscript:\n%s\noutput:\n%s", err, script, out)
	}
	t.Logf("output:\n%s", out)
	for _, want := range []string{"4096\n", "listen(3, 100000) = 0\n", "tcpi_sacked=4096}\naccept queue: 0 connections, backlog 4096\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("no %q in:\n%s", want, out)
		}
	}
}
