//go:build linux

package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// rowRE matches a row of the table that starts as row does (spaces as
// " +"), at the start of a line.
func rowRE(row string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)^` + row)
}

// TestRecordedRun checks the run the chapter shows, testdata/bench.txt
// (written by go run ./code/18-measure -q -record ...): it names its
// machine, and has every design under every load. Its numbers are this
// machine's on one day, and are not checked.
func TestRecordedRun(t *testing.T) {
	data, err := os.ReadFile("testdata/bench.txt")
	if err != nil {
		t.Fatal(err)
	}
	out := string(data)
	for _, want := range []string{"=== bench\n$ go run ./code/18-measure", "\nmachine: ", rrHeader, idleHeader} {
		if !strings.Contains(out, want) {
			t.Errorf("testdata/bench.txt lacks %q", want)
		}
	}
	for _, d := range designs() {
		for _, load := range []string{"1", "10", "100", "1000"} {
			if !rowRE(d.name + ` +` + load + ` `).MatchString(out) {
				t.Errorf("testdata/bench.txt has no row for %s under %s clients", d.name, load)
			}
		}
		if strings.Count(out, "\n"+d.name+" ") != 5 {
			t.Errorf("testdata/bench.txt: %s has %d rows, want 5 (4 loads and idle)", d.name, strings.Count(out, "\n"+d.name+" "))
		}
	}
	if strings.Contains(out, "WRONG") {
		t.Errorf("testdata/bench.txt has wrong echoes")
	}
}

// TestExperimentTicks runs the chapter's commands as written: a server,
// a load of lines through nc, and the server's CPU time read from
// /proc/PID/stat before and after. The number of ticks is not checked:
// it is the point of the experiment that it is small and coarse.
func TestExperimentTicks(t *testing.T) {
	out, err := booktest.Shell(t, booktest.Experiment(t, "server")+booktest.Experiment(t, "ticks"))
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if !regexp.MustCompile(`(?m)^200000$`).MatchString(out) || !regexp.MustCompile(`(?m)^server CPU: \d+ ticks of 10 ms for 200000 lines$`).MatchString(out) {
		t.Errorf("the experiment did not print the last echoed line and the server's ticks:\n%s", out)
	}
	t.Logf("the experiment printed:\n%s", out)
}
