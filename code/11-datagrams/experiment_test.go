//go:build linux

package main

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// udpCounters reads the Udp: lines of /proc/net/snmp (names, then values)
// from the output of the chapter's grep.
func udpCounters(t *testing.T, out string) map[string]int {
	t.Helper()
	var lines [][]string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "Udp: ") {
			lines = append(lines, strings.Fields(l)[1:])
		}
	}
	if len(lines) != 2 || len(lines[0]) != len(lines[1]) {
		t.Fatalf("want two Udp: lines, names and values:\n%s", out)
	}
	c := map[string]int{}
	for i, name := range lines[0] {
		v, err := strconv.Atoi(lines[1][i])
		if err != nil {
			t.Fatalf("Udp: %s = %q:\n%s", name, lines[1][i], out)
		}
		c[name] = v
	}
	return c
}

// TestExperimentDrops runs the chapter's loss experiment as written, in
// one shell, as a reader types it in one terminal, in a network namespace
// of its own (whose counters no other program touches) with a private
// /tmp: a server that is stopped, so it reads nothing; a client that sends
// it 1000 datagrams, every sendto a success; ss showing the full receive
// queue; /proc/net/snmp counting the drops (RcvbufErrors). Once the server
// goes on, it reads what was queued, and what it read plus what was dropped
// is exactly what was sent. The lines marked "# test:" are the test's own:
// bounded waits where a reader would just look again, and markers that
// split the output.
func TestExperimentDrops(t *testing.T) {
	e := func(name string) string { return booktest.Experiment(t, name) }
	script := booktest.PrivateTmp + e("build") + e("server") +
		"for i in $(seq 300); do ss -Huln | grep -q :8080 && break; sleep 0.1; done # test: wait until bound\n" +
		"echo @ss # test\n" + e("ss") + e("stop") +
		// kill returns once the signal is sent, maybe before the server
		// has stopped; a reader typing the next command gives it time.
		"for i in $(seq 300); do grep -q '^[0-9]* ([^)]*) T' /proc/$!/stat && break; sleep 0.01; done # test: until stopped\n" +
		"echo @flood # test\n" + e("flood") +
		"echo @ss-full # test\n" + e("ss-full") +
		"echo @snmp # test\n" + e("snmp") + e("cont") +
		"for i in $(seq 300); do awk '/^Udp: [0-9]/ { exit !($2 + $6 == 1000) }' /proc/net/snmp && break; sleep 0.1; done # test: until read + dropped = sent\n" +
		"echo @snmp-after # test\n" + e("snmp") + e("end") +
		"wait $!; echo \"@exit $?\" # test\n"
	text, err := booktest.Shell(t, script)
	if err != nil {
		t.Fatalf("%v:\n%s", err, text)
	}
	out := map[string]string{}
	for _, part := range strings.Split(text, "@")[1:] {
		name, body, _ := strings.Cut(part, "\n")
		out[name] = body
	}
	if !regexp.MustCompile(`(?m)^UNCONN +0 +0 +127\.0\.0\.1:8080 +0\.0\.0\.0:\* +users:\(\("11-datagrams",pid=\d+,fd=3\)\)`).MatchString(out["ss"]) {
		t.Errorf("ss -ulpn: want the server's socket, UNCONN, empty queues:\n%s", text)
	}
	if out["flood"] != "sent 1000 datagrams of 6 bytes\n" {
		t.Errorf("the flood: %q, want every sendto to succeed:\n%s", out["flood"], text)
	}
	if !regexp.MustCompile(`(?m)^UNCONN +[1-9]\d{4,} +0 +127\.0\.0\.1:8080 `).MatchString(out["ss-full"]) {
		t.Errorf("ss -ulpn after the flood: want tens of kilobytes waiting in Recv-Q:\n%s", text)
	}
	before, after := udpCounters(t, out["snmp"]), udpCounters(t, out["snmp-after"])
	if before["RcvbufErrors"] == 0 || before["InDatagrams"] != 0 || before["OutDatagrams"] != 1000 {
		t.Errorf("while the server is stopped: RcvbufErrors %d, InDatagrams %d, OutDatagrams %d; want drops, nothing read yet, 1000 sent:\n%s",
			before["RcvbufErrors"], before["InDatagrams"], before["OutDatagrams"], text)
	}
	if after["InDatagrams"]+after["RcvbufErrors"] != 1000 || after["RcvbufErrors"] != before["RcvbufErrors"] ||
		after["NoPorts"] != after["InDatagrams"] {
		t.Errorf("after the server went on: read %d + dropped %d, want 1000 in all, with no new drops, and as many echoes to no port (%d):\n%s",
			after["InDatagrams"], after["RcvbufErrors"], after["NoPorts"], text)
	}
	if !strings.Contains(text, "@exit 0\n") {
		t.Errorf("the server after kill -INT: want exit status 0:\n%s", text)
	}
}

// TestExperimentWrongSource runs the IP_PKTINFO pitfall as written, in a
// network namespace where lo is the only link, so the wildcard reaches
// loopback only: a server bound to 0.0.0.0 answers a datagram sent to
// 127.0.0.2 from 127.0.0.1. The unconnected client sees the echo come from
// the wrong address; the connected one never sees it at all.
func TestExperimentWrongSource(t *testing.T) {
	m := booktest.NewMachine(t)
	srv := m.Start(booktest.Experiment(t, "wildcard"))
	srv.WaitFor("bound to 0.0.0.0:8080\n")
	out, code := m.RunCode(booktest.Experiment(t, "wrong-source"))
	for _, want := range []string{
		`recvfrom(3, "hello\n", 65536, 0, 127.0.0.1:8080) = 6`,
		"127.0.0.2:8080: the echo came from 127.0.0.1:8080, not from the address it was sent to",
		`read(3, "", 65536) = -1 EAGAIN`,
		"127.0.0.2:8080: no echo in 1s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("want %q in:\n%s", want, out)
		}
	}
	if code == 0 {
		t.Errorf("the clients' exit status is 0, want 1:\n%s", out)
	}
	if got := strings.Count(srv.Output(), `sendto(3, "hello\n", 6, 0, 127.0.0.1:`); got != 2 {
		t.Errorf("the server sent %d echoes, want 2 (one to each client):\n%s", got, srv.Output())
	}
	srv.Interrupt()
	srv.Wait()
}
