package main

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// parseWrk reads real reports of wrk 4.1 (Debian's), recorded against
// Python's http.server: one where every request succeeded and one where
// every answer was a 404, which wrk counts as requests all the same.
func TestParseWrk(t *testing.T) {
	for _, tc := range []struct {
		file     string
		requests int64
		p50, p99 time.Duration
		rps      float64
		errors   []string
		read     float64 // bytes, as wrk prints them
	}{
		{"wrk-ok.txt", 1528, 1190 * time.Microsecond, 3070 * time.Microsecond, 1527.27, nil, 1.79 * 1024 * 1024},
		{"wrk-404.txt", 1663, 1080 * time.Microsecond, 2030 * time.Microsecond, 1661.54, []string{"Non-2xx or 3xx responses: 1663"}, 844.67 * 1024},
	} {
		data, err := os.ReadFile("testdata/" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		l, err := parseWrk(string(data))
		if err != nil {
			t.Fatalf("%s: %v", tc.file, err)
		}
		if l.requests != tc.requests || l.p50 != tc.p50 || l.p99 != tc.p99 || l.rps != tc.rps || !slices.Equal(l.errors, tc.errors) {
			t.Errorf("%s: got %d requests, p50 %v, p99 %v, %.2f/s, errors %q; want %d, %v, %v, %.2f, %q",
				tc.file, l.requests, l.p50, l.p99, l.rps, l.errors, tc.requests, tc.p50, tc.p99, tc.rps, tc.errors)
		}
		if want := tc.read / 1e6 / 1.00; l.mbps < want*0.999 || l.mbps > want*1.001 {
			t.Errorf("%s: %.4f MB/s, want %.4f", tc.file, l.mbps, want)
		}
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("a report with no requests parsed without an error")
	}
}

// The CPU time and memory of a server are those of its whole process
// tree: nginx's master does little, its worker the work. A shell that
// waits for a busy child stands in for it here; cpuTime must see the
// child's CPU, and tree must find both.
func TestProcessTree(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sh -c 'while :; do :; done' & wait")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, p := range tree(cmd.Process.Pid) {
			if p != cmd.Process.Pid {
				if pr, err := os.FindProcess(p); err == nil {
					pr.Kill()
				}
			}
		}
		cmd.Process.Kill()
		cmd.Wait()
	})
	pid := cmd.Process.Pid
	var pids []int
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if pids = tree(pid); len(pids) == 2 && cpuTime(pid) >= 5*tick {
			break
		}
	}
	if len(pids) != 2 {
		t.Fatalf("tree(%d) = %v, want the shell and its child", pid, pids)
	}
	s, err := readStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	if own := time.Duration(s.utime+s.stime) * tick; cpuTime(pid) < own+5*tick {
		t.Errorf("cpuTime(%d) = %v, the shell alone %v: the busy child's CPU is not counted", pid, cpuTime(pid), own)
	}
	if rss(pid) <= 0 {
		t.Errorf("rss(%d) = %d", pid, rss(pid))
	}
}

// machine names a CPU, the number of CPUs, the kernel and Go's version.
func TestMachine(t *testing.T) {
	m := machine()
	for _, want := range []string{" CPUs, Linux ", "go1."} {
		if !strings.Contains(m, want) {
			t.Errorf("machine() = %q, lacks %q", m, want)
		}
	}
}
