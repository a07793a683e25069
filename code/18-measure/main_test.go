//go:build linux

package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// The tests assert what holds on any machine: every design answers every
// line with the same line, which designs grow threads or processes with
// their connections and which do not, that /proc is read right, and the
// table's shape. They assert no timing, and no number of the table.

var (
	buildOnce sync.Once
	exes      map[string]string
	buildErr  error
)

// programs builds every design's program once for the package's tests.
func programs(t *testing.T) map[string]string {
	t.Helper()
	buildOnce.Do(func() {
		var bin string
		exes, bin, buildErr = build(context.Background(), designs())
		binDirs = append(binDirs, bin) // removed when every test has used them
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return exes
}

var binDirs []string

// TestMain builds the program once for all the tests, not once per session
// (booktest.Run), and removes the servers' builds the tests made.
func TestMain(m *testing.M) {
	code := booktest.Run(m)
	for _, d := range binDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

func mustDesign(t *testing.T, name string) design {
	t.Helper()
	ds, err := selectDesigns([]string{name})
	if err != nil {
		t.Fatal(err)
	}
	return ds[0]
}

// TestEveryDesignEchoes: under 10 persistent clients every design answers
// each line with that line, and serves as many clients as it can at once:
// the iterative server one, the others all ten.
func TestEveryDesignEchoes(t *testing.T) {
	booktest.CheckFDs(t)
	exes := programs(t)
	for _, d := range designs() {
		r, err := measure(exes[d.dir], d, 10, 100*time.Millisecond)
		if err != nil {
			t.Fatal(err)
		}
		if r.errors > 0 || r.requests == 0 {
			t.Errorf("%s: %d wrong echoes, %d requests answered; want none wrong, some answered", d.name, r.errors, r.requests)
		}
		if want := d.serving(10); r.served != want {
			t.Errorf("%s: %d of 10 clients served in the window, want %d", d.name, r.served, want)
		}
	}
}

// idleAt holds n idle connections on design name and returns the row.
func idleAt(t *testing.T, name string, n int) idleRow {
	t.Helper()
	d := mustDesign(t, name)
	r, err := holdIdle(programs(t)[d.dir], d, n)
	if err != nil {
		t.Fatal(err)
	}
	if r.errors > 0 || r.held != d.serving(n) {
		t.Fatalf("%s: %d of %d idle connections answered (%d wrong), want %d", name, r.held, n, r.errors, d.serving(n))
	}
	return r
}

// TestEventLoopsKeepTheirThreads: poll, epoll and Go's netpoller hold 500
// connections with about the threads they had for one, where a thread per
// connection would be 500 more. About: Go's runtime starts threads of its
// own, more on a loaded machine (a goroutine that the scheduler finds in a
// system call for a while gets its P handed to a new thread: 6 became 9
// once in CI), so the margin is 16, far below 500.
func TestEventLoopsKeepTheirThreads(t *testing.T) {
	booktest.CheckFDs(t)
	for _, name := range []string{"poll", "epoll", "netpoller"} {
		one, many := idleAt(t, name, 1), idleAt(t, name, 500)
		if many.threads > one.threads+16 || many.procs != 1 {
			t.Errorf("%s: %d threads with 1 connection, %d with 500 (in %d processes); want about the same (at most 16 more), in 1", name, one.threads, many.threads, many.procs)
		}
	}
}

// TestThreadsGrowWithConnections: the blocking design holds a thread in
// read for every connection.
func TestThreadsGrowWithConnections(t *testing.T) {
	booktest.CheckFDs(t)
	r := idleAt(t, "threads", 500)
	if r.threads < 500 {
		t.Errorf("threads: %d threads with 500 connections, want at least 500: one blocked in read for each", r.threads)
	}
}

// TestProcessPerConnection: the server plus one child per connection,
// found in /proc by their parent's PID.
func TestProcessPerConnection(t *testing.T) {
	booktest.CheckFDs(t)
	r := idleAt(t, "process", 50)
	if r.procs != 51 {
		t.Errorf("process: %d processes with 50 connections, want 51: the server and a child each", r.procs)
	}
}

// TestParseStat reads a real process's /proc/PID/stat: a sleep this test
// starts is sleeping, is this test's child, has one thread; and a name
// with spaces and parentheses does not shift the fields after it.
func TestParseStat(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	// Until it has exec'd sleep and gone to sleep: at most 5 s.
	var s stat
	for i := 0; i < 500 && (s.comm != "sleep" || s.state != 'S'); i++ {
		time.Sleep(10 * time.Millisecond)
		var err error
		if s, err = readStat(cmd.Process.Pid); err != nil {
			t.Fatal(err)
		}
	}
	if s.comm != "sleep" || s.state != 'S' || s.ppid != os.Getpid() || s.threads != 1 {
		t.Errorf("sleep: comm %q, state %c, ppid %d, %d threads; want sleep, S, %d, 1", s.comm, s.state, s.ppid, s.threads, os.Getpid())
	}
	line := "42 (a) (b c) R 7 0 0 0 -1 0 0 0 0 0 11 22 33 44 20 0 3 0 100 1000 50"
	s, err := parseStat(line)
	if err != nil {
		t.Fatal(err)
	}
	if s.pid != 42 || s.comm != "a) (b c" || s.ppid != 7 || s.utime != 11 || s.stime != 22 || s.cutime != 33 || s.cstime != 44 || s.threads != 3 {
		t.Errorf("parseStat(%q) = %+v", line, s)
	}
}

// TestReapedChildrenCount: a child's CPU time is added to its parent's
// cutime and cstime when the parent waits for it, not before.
func TestReapedChildrenCount(t *testing.T) {
	before, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// About a second of CPU on this machine: many ticks on any.
	cmd := exec.Command("sh", "-c", "i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	after, err := readStat(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	got := after.cutime + after.cstime - before.cutime - before.cstime
	if got < 1 {
		t.Errorf("the children's CPU time grew by %d ticks after a child that computed for a while, want at least 1", got)
	}
}

// TestQuickTable runs the program as a reader does, with -quick, on two
// designs: the machine line, both tables' headers, a row for each design
// and load.
func TestQuickTable(t *testing.T) {
	s := booktest.New(t)
	p := s.Run("bench", "-quick", "-q", "-designs", "iterative,epoll")
	out := p.Output()
	for _, want := range []string{"machine: ", rrHeader, idleHeader, "one at a time"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	for _, row := range []string{`iterative +1 +1 `, `epoll +1 +1 `, `iterative +10 +1 `, `epoll +10 +10 `, `iterative +20 +1 `, `epoll +20 +20 `} {
		if !rowRE(row).MatchString(out) {
			t.Errorf("no row %q in:\n%s", row, out)
		}
	}
}
