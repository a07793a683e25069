package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// runGraders runs the graders opts selects against the program in dir, in
// a sandbox, within opts.limit, and collects what they said as it comes.
// However much a submission prints, what is kept is bounded: booktest keeps
// the head and tail of each program's output, and lines keeps a few
// hundred lines of each exercise.
func runGraders(ch *chapter, dir string, opts options) (*runOutput, error) {
	if ch.testBin == "" {
		return nil, errors.New("the graders are not compiled: call compile first")
	}
	limit := cmp.Or(opts.limit, defaultLimit)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	// The run's temporary files (the graders' t.TempDir, go build's work)
	// go in a directory of its own, removed after it: a test binary killed
	// in the middle of a grader leaves its own behind.
	tmp, err := os.MkdirTemp("", "grade-run-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	// The graders' own time-out comes first, so that the test binary says
	// which grader was running; the sandbox is killed at the limit.
	args := append(slices.Clone(ch.toJSON), "-t", ch.testBin,
		"-test.v=test2json", "-test.count=1", "-test.timeout="+(limit-limit/8).String(), "-test.run="+opts.runPattern())
	cmd := sandboxFor().command(ctx, args[0], args[1:]...)
	// go test runs a test binary in its package's directory.
	cmd.Dir = filepath.Join(ch.dir(), "grade")
	cmd.Env = append(append(os.Environ(), opts.env...), "BOOK_PROGRAM="+dir, "TMPDIR="+tmp, "BOOK_BUILD_CACHE="+ch.builds)
	out := &runOutput{exercises: map[int]*exerciseOutput{}}
	cmd.Stdout = &lineWriter{line: out.event}
	// Each is written by a goroutine of its own.
	var stderr lines
	cmd.Stderr = &lineWriter{line: stderr.add}
	// Should something the sandbox could not kill hold the output open,
	// stop reading it soon after the run ends.
	cmd.WaitDelay = 5 * time.Second
	err = cmd.Run()
	for _, line := range stderr.all() {
		out.run.add(line)
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		out.killed = fmt.Sprintf("timed out after %v", limit)
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		out.exit = exit.String()
	case err != nil && out.killed == "":
		return nil, fmt.Errorf("grading %s: %w", dir, err)
	}
	return out, nil
}

// testEvent is one line of go test -json.
type testEvent struct {
	Action string
	Test   string
	Output string
}

var exerciseTestRE = regexp.MustCompile(`^TestExercise(\d+)`)

// runOutput is what one grading run said: each exercise's events and
// output, and what it printed outside any exercise.
type runOutput struct {
	exercises map[int]*exerciseOutput
	run       lines  // output outside the graders: the test binary's panic, say
	killed    string // "timed out after 2m0s", when the run was killed at its limit
	exit      string // how the run ended, if not well: "exit status 1", "signal: killed"
}

// exerciseOutput is what one exercise's grader did and said.
type exerciseOutput struct {
	started, passed, failed bool
	// concluded: the test binary printed the grader's "--- FAIL" (or
	// SKIP) line. When the binary dies in the middle of a grader,
	// test2json reports a "fail" for it without one.
	concluded bool
	said      lines
}

func (o *runOutput) event(line string) {
	var ev testEvent
	if err := json.Unmarshal([]byte(line), &ev); err != nil {
		o.run.add(line)
		return
	}
	name, _, sub := strings.Cut(ev.Test, "/")
	m := exerciseTestRE.FindStringSubmatch(name)
	if m == nil {
		if ev.Action == "output" || ev.Action == "build-output" {
			o.run.add(strings.TrimRight(ev.Output, "\n"))
		}
		return
	}
	n, _ := strconv.Atoi(m[1])
	x := o.exercises[n]
	if x == nil {
		x = &exerciseOutput{}
		o.exercises[n] = x
	}
	switch {
	case ev.Action == "output":
		line := strings.TrimSpace(ev.Output)
		switch {
		case strings.HasPrefix(line, "--- "):
			x.concluded = x.concluded || !sub
		case line != "" && !strings.HasPrefix(line, "=== "):
			x.said.add(line)
		}
	case sub:
		// A subtest's result is its grader's business.
	case ev.Action == "run":
		x.started = true
	case ev.Action == "pass":
		x.passed = true
	case ev.Action == "fail" || ev.Action == "skip":
		x.failed = true
	}
}

// judge decides exercise x from the run: it passes only if its grader
// ended with a pass of its own. A grader that was killed, timed out or
// never ran fails, and says why.
func (o *runOutput) judge(x *result) {
	e := o.exercises[x.Num]
	switch {
	case e != nil && e.passed:
		x.Pass = true
		return
	case e != nil && e.failed && e.concluded:
		x.Why = e.said.all()
		x.Reason = reasonOf(x.Why)
		return
	case e != nil && e.started:
		x.Why = append(e.said.all(), o.run.all()...)
		x.Reason = "no result: " + o.why(x.Why)
	default:
		x.Why = o.run.all()
		x.Reason = "not run: " + o.why(x.Why)
	}
}

// why says why the run ended without an exercise's result.
func (o *runOutput) why(said []string) string {
	if o.killed != "" {
		return o.killed + ", so the grading run was killed"
	}
	if m := testTimeoutRE.FindStringSubmatch(strings.Join(said, "\n")); m != nil {
		return "timed out after " + m[1]
	}
	if line := crashLine(said); line != "" {
		return "the grading run crashed: " + line
	}
	if o.exit != "" {
		return "the grading run ended (" + o.exit + ")"
	}
	return "the grading run ended without it"
}

// What booktest and go test say when a program or a grader fails in a way
// a class report names.
var (
	notListeningRE = regexp.MustCompile(`has not printed its "listening on ADDR" line after (\S+)\. Its output`)
	endedEarlyRE   = regexp.MustCompile(`ended \((.+?)\) before printing its "listening on ADDR" line`)
	stillRunningRE = regexp.MustCompile(`was still running after (\S+), so it was killed`)
	testTimeoutRE  = regexp.MustCompile(`panic: test timed out after (\S+)`)
	crashRE        = regexp.MustCompile(`^(panic: |fatal error: |SIGSEGV|SIGBUS|SIGILL|SIGABRT)`)
	compileErrorRE = regexp.MustCompile(`(?:^|/)([^/\s]+\.go:\d+:\d+: .*)`)
	testPrefixRE   = regexp.MustCompile(`^\S+_test\.go:\d+: `)
)

// reasonOf says in one line why a grader failed, from what it said: the
// program's failure to start or to behave, when booktest caught one, or
// else the grader's first line.
func reasonOf(said []string) string {
	text := strings.Join(said, "\n")
	if strings.Contains(text, notRun) {
		return notRun
	}
	if strings.Contains(text, "does not compile") {
		for _, line := range said {
			if m := compileErrorRE.FindStringSubmatch(line); m != nil {
				return "does not compile: " + m[1]
			}
		}
		return "does not compile"
	}
	if strings.Contains(text, "flooded its output") {
		return "flooded its output (more than 16 MiB, so it was killed)"
	}
	if m := testTimeoutRE.FindStringSubmatch(text); m != nil {
		return "timed out after " + m[1]
	}
	if line := crashLine(said); line != "" {
		return "crashed: " + line
	}
	if m := notListeningRE.FindStringSubmatch(text); m != nil {
		return `never printed "listening on" (waited ` + m[1] + ")"
	}
	if m := endedEarlyRE.FindStringSubmatch(text); m != nil {
		return `ended (` + m[1] + `) before printing "listening on"`
	}
	if m := stillRunningRE.FindStringSubmatch(text); m != nil {
		return "timed out after " + m[1] + " (still running, so it was killed)"
	}
	if len(said) == 0 {
		return "failed, saying nothing"
	}
	return testPrefixRE.ReplaceAllString(said[0], "")
}

// notRun is booktest.NotRun: a grader did not run the program, because an
// earlier one found that it does not start.
const notRun = "not run: the program does not start"

// crashLine is the first line of said that says a Go program crashed.
func crashLine(said []string) string {
	for _, line := range said {
		if crashRE.MatchString(line) && !testTimeoutRE.MatchString(line) {
			return line
		}
	}
	return ""
}

// lines keeps the first maxLines lines written to it, each cut at
// maxLineLen bytes, and counts the rest.
type lines struct {
	kept    []string
	dropped int
}

const (
	maxLines   = 400
	maxLineLen = 2000
)

func (l *lines) add(line string) {
	if len(l.kept) == maxLines {
		l.dropped++
		return
	}
	if len(line) > maxLineLen {
		line = line[:maxLineLen] + "…"
	}
	l.kept = append(l.kept, line)
}

// all returns the kept lines, and a last one that says how many were not.
func (l *lines) all() []string {
	kept := append([]string(nil), l.kept...)
	if l.dropped > 0 {
		kept = append(kept, fmt.Sprintf("… %d more lines not kept", l.dropped))
	}
	return kept
}

// lineWriter calls line with each line written to it, without its newline,
// and keeps at most maxJSONLine bytes of a line: a test2json event is one
// line, and what booktest puts in one is bounded.
type lineWriter struct {
	line    func(string)
	partial []byte
}

const maxJSONLine = 1 << 20

func (w *lineWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.keep(p)
			break
		}
		w.keep(p[:i])
		w.line(string(w.partial))
		w.partial = w.partial[:0]
		p = p[i+1:]
	}
	return n, nil
}

func (w *lineWriter) keep(p []byte) {
	room := max(0, maxJSONLine-len(w.partial))
	w.partial = append(w.partial, p[:min(len(p), room)]...)
}
