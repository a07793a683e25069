//go:build linux

package main

import (
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestExperimentBench runs the chapter's benchmark command as written: it
// must run every size and pass. Its numbers are not checked; the chapter
// shows a recorded run's.
func TestExperimentBench(t *testing.T) {
	t.Parallel()
	out, err := booktest.Shell(t, booktest.Experiment(t, "bench"))
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	for _, want := range []string{"BenchmarkEpollWait/10000", "\nPASS\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("the benchmark did not print %q:\n%s", want, out)
		}
	}
}
