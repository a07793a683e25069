package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests of grading under hostile submissions use chapter 2, whose
// graders are quick (4 exercises in about 3 s), and chapter 1, whose
// program is a server.

// compiled finds chapter num with its graders compiled, once for all the
// tests (sharedChapter).
func compiled(t *testing.T, num string) *chapter {
	t.Helper()
	ch, err := sharedChapter(num)
	if err != nil {
		t.Fatal(err)
	}
	return ch
}

// submission writes a student's folder in dir: a copy of the chapter's
// reference solution (or, if base is "", nothing) and the extra files.
func writeSubmission(t *testing.T, ch *chapter, dir, base string, extra map[string]string) string {
	t.Helper()
	if base != "" {
		if err := os.CopyFS(dir, os.DirFS(filepath.Join(ch.dir(), base))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range extra {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// A submission that floods: 1 MiB to stdout in a loop, before main.
const floodGo = `package main

import (
	"bytes"
	"os"
)

func init() {
	b := bytes.Repeat([]byte("x"), 1<<20)
	for {
		os.Stdout.Write(b)
	}
}
`

// A submission that hangs before it does anything.
const hangGo = `package main

import "time"

func main() { time.Sleep(time.Hour) }
`

// forkGo starts sleep in a session of its own, which no process group
// kill reaches, and goes on as the solution does.
func forkGo(arg string) string {
	return `package main

import "os/exec"

func init() { exec.Command("setsid", "sleep", "` + arg + `").Start() }
`
}

// sleepers lists the processes whose command line is "sleep ARG", on the
// whole machine (this test's PID namespace, which is the grader's).
func sleepers(arg string) []int {
	procs, _ := os.ReadDir("/proc")
	var found []int
	for _, e := range procs {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(cmdline) == "sleep\x00"+arg+"\x00" {
			pid, _ := strconv.Atoi(e.Name())
			found = append(found, pid)
		}
	}
	return found
}

// uniqueSleep is a sleep duration no other process on the machine uses.
func uniqueSleep() string {
	return fmt.Sprintf("%d.%06d", 600+os.Getpid()%100, time.Now().Nanosecond()/1000)
}

// The "done means": make class on a folder with a flooding, a
// hanging, a forking and a correct submission (and a symbolic link to one,
// and a file) gives an honest line each, leaves no process behind, and
// ends within a bound; its CSV is one a gradebook reads.
func TestClass(t *testing.T) {
	t.Parallel()
	ch := compiled(t, "02")
	class := t.TempDir()
	arg := uniqueSleep()
	t.Cleanup(func() {
		for _, pid := range sleepers(arg) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	writeSubmission(t, ch, filepath.Join(class, "correct"), "solution", nil)
	writeSubmission(t, ch, filepath.Join(class, "flooding"), "solution", map[string]string{"flood.go": floodGo})
	writeSubmission(t, ch, filepath.Join(class, "hanging"), "", map[string]string{"main.go": hangGo})
	writeSubmission(t, ch, filepath.Join(class, "forking"), "solution", map[string]string{"fork.go": forkGo(arg)})
	elsewhere := writeSubmission(t, ch, filepath.Join(t.TempDir(), "linked"), "solution", nil)
	if err := os.Symlink(elsewhere, filepath.Join(class, "linked")); err != nil {
		t.Fatal(err)
	}
	writeSubmission(t, ch, class, "", map[string]string{"notes.txt": "not a submission\n"})

	// A hang is found after the graders' wait (BOOK_WAIT, here 3 s: a run
	// of the program waits twice that), and the rest is not waited for.
	opts := options{env: []string{"BOOK_WAIT=3s"}, limit: time.Minute}
	start := time.Now()
	subs, err := gradeSubmissions(ch, class, opts)
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := printClass(&text, nil, ch, subs, "text", 0); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("graded in %v:\n%s", took.Round(time.Millisecond), text.String())
	if bound := 90 * time.Second; took > bound {
		t.Errorf("grading the class took %v, want at most %v", took, bound)
	}
	lines := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(text.String()), "\n") {
		name, rest, _ := strings.Cut(line, " ")
		lines[name] = strings.TrimSpace(rest)
	}
	for name, want := range map[string][]string{
		"correct":   {"4/4  1:pass 2:pass 3:pass 4:pass"},
		"linked":    {"4/4  1:pass 2:pass 3:pass 4:pass"},
		"forking":   {"4/4  1:pass 2:pass 3:pass 4:pass"},
		"flooding":  {"0/4  1:fail 2:fail 3:fail 4:fail", "1: flooded its output", "2, 3, 4: " + notRun},
		"hanging":   {"0/4  1:fail 2:fail 3:fail 4:fail", "1: timed out after 6s", "2, 3, 4: " + notRun},
		"notes.txt": {"skipped: not a directory"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[name], w) {
				t.Errorf("%s's line is %q, want it to say %q", name, lines[name], w)
			}
		}
	}
	if left := sleepers(arg); len(left) > 0 {
		t.Errorf("after grading, the forking submission's setsid sleep %s is still running: pids %v", arg, left)
	}

	var table, skipped bytes.Buffer
	if err := printClass(&table, &skipped, ch, subs, "csv", 0); err != nil {
		t.Fatal(err)
	}
	records, err := csv.NewReader(&table).ReadAll()
	if err != nil {
		t.Fatalf("the CSV does not parse: %v\n%s", err, table.String())
	}
	want := [][]string{
		{"student", "score", "graded", "ex1", "ex2", "ex3", "ex4", "reason"},
		{"correct", "4", "4", "pass", "pass", "pass", "pass", ""},
	}
	for i, rec := range want {
		if i >= len(records) || strings.Join(records[i], ",") != strings.Join(rec, ",") {
			t.Errorf("CSV record %d is %q, want %q", i, records[min(i, len(records)-1)], rec)
		}
	}
	if len(records) != 6 || !strings.Contains(skipped.String(), "notes.txt: skipped: not a directory") {
		t.Errorf("want a header and 5 students, and notes.txt named as skipped; got %d records:\n%s\nskipped: %s", len(records), table.String(), skipped.String())
	}
}

// An exercise passes only if its grader ends with a pass: a submission
// that kills the graders' test binary in the middle of exercise 1 gets no
// mark for it, nor for those that never ran.
func TestKilledRunFails(t *testing.T) {
	t.Parallel()
	ch := compiled(t, "02")
	dir := writeSubmission(t, ch, filepath.Join(t.TempDir(), "killer"), "solution", map[string]string{"kill.go": `package main

import (
	"os"
	"syscall"
)

// The test binary that started this program dies.
func init() { syscall.Kill(os.Getppid(), syscall.SIGKILL) }
`})
	rep, err := grade(ch, dir, options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range rep.Results {
		switch {
		case !x.Graded:
			t.Errorf("exercise %d is reported as not graded", x.Num)
		case x.Pass:
			t.Errorf("exercise %d passes, though the grading run was killed", x.Num)
		case x.Num == 1 && !strings.HasPrefix(x.Reason, "no result: the grading run ended"):
			t.Errorf("exercise 1 fails with %q, want no result: the grading run ended ...", x.Reason)
		case x.Num > 1 && !strings.HasPrefix(x.Reason, "not run: the grading run ended"):
			t.Errorf("exercise %d fails with %q, want not run: the grading run ended ...", x.Num, x.Reason)
		}
	}
}

// A grading run has a time limit of its own, and what it started ends
// with it.
func TestRunTimeLimit(t *testing.T) {
	t.Parallel()
	ch := compiled(t, "02")
	arg := uniqueSleep()
	t.Cleanup(func() {
		for _, pid := range sleepers(arg) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	dir := writeSubmission(t, ch, filepath.Join(t.TempDir(), "slow"), "", map[string]string{"main.go": hangGo, "fork.go": forkGo(arg)})
	start := time.Now()
	rep, err := grade(ch, dir, options{limit: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("a run limited to 4s took %v", took)
	}
	x := resultOf(t, rep, 1)
	if x.Pass || !strings.Contains(x.Reason, "timed out after") {
		t.Errorf("exercise 1 of a run killed at its limit: pass %v, reason %q; want a failure, timed out", x.Pass, x.Reason)
	}
	deadline := time.Now().Add(2 * time.Second)
	for len(sleepers(arg)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if left := sleepers(arg); len(left) > 0 {
		t.Errorf("after the run was killed, the submission's setsid sleep %s is still running: pids %v", arg, left)
	}
}

// A submission that does not compile, crashes, exits at once or hangs is
// reported as such, in one line; after the first exercise, the others do
// not wait for a program that does not start.
func TestBadSubmissions(t *testing.T) {
	t.Parallel()
	ch := compiled(t, "01")
	for _, tt := range []struct {
		name, code, want string
	}{
		{"does not compile", "package main\n\nfunc main() { undefined() }\n", "does not compile: main.go:3:15: undefined: undefined"},
		{"crashes", "package main\n\nfunc main() { panic(\"boom\") }\n", "crashed: panic: boom"},
		{"exits at once", "package main\n\nfunc main() {}\n", `ended (exit status 0) before printing "listening on"`},
		{"hangs", hangGo, `never printed "listening on" (waited 2s)`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := writeSubmission(t, ch, t.TempDir(), "", map[string]string{"main.go": tt.code})
			// The graders wait 15 s for a program that says nothing; the
			// hang is reported the same way after a shorter wait.
			start := time.Now()
			rep, err := grade(ch, dir, options{env: []string{"BOOK_WAIT=2s"}})
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > 20*time.Second {
				t.Errorf("grading took %v", took)
			}
			if rep.allPass() {
				t.Fatal("a broken submission passed")
			}
			if got := reasons(rep); got != "1: "+tt.want+"; 2, 3, 4: "+notRun {
				t.Errorf("the class report says %q, want %q, and the others not run", got, "1: "+tt.want)
			}
		})
	}
}

// -ex N grades exercise N alone; a failing exercise is one line, and -v
// shows all the grader said.
func TestOneExercise(t *testing.T) {
	t.Parallel()
	ch := compiled(t, "02")
	rep, err := grade(ch, "", options{only: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Num != 1 || rep.Results[0].Pass {
		t.Fatalf("want exercise 1 alone, failing; got %+v", rep.Results)
	}
	var short, long bytes.Buffer
	rep.print(&short, false)
	rep.print(&long, true)
	if n := strings.Count(short.String(), "\n"); n != 4 {
		t.Errorf("the report has %d lines, want 4 (a heading, the exercise, its reason, the score):\n%s", n, short.String())
	}
	if !strings.Contains(short.String(), "-v shows") || strings.Count(long.String(), "\n") <= 4 {
		t.Errorf("-v shows no more:\n%s\n-v:\n%s", short.String(), long.String())
	}
}

// make exercise prints the report and exits 0 when an exercise fails:
// a report is not a crash, and make says nothing of an error.
func TestMakeExercise(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	cmd := exec.Command("make", "--no-print-directory", "exercise", "CH=02", "EX=3")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "FAIL  3.") || strings.Contains(string(out), "Error") {
		t.Errorf("make exercise CH=02 EX=3: %v, want a FAIL report, status 0 and no make error:\n%s", err, out)
	}
}
