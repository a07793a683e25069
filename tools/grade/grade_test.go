package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

const root = "../.."

// TestMain lets more graders run at once than go test's default (one per
// core): a grading run spends most of its time waiting for the program
// under test, not computing. -parallel on the command line still wins.
func TestMain(m *testing.M) {
	flag.Parse()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "test.parallel" })
	if !set {
		flag.Set("test.parallel", "8")
	}
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// built holds each chapter's graders, compiled once for all the tests that
// grade with them, in a directory TestMain removes. Compiling is a go test
// -c and a go build, each a link of its own, seconds of CPU on a machine
// that runs the rest of the suite beside it; grading only reads what they
// made, and programs built for one test (the reference solution, the
// chapter's own) are found in BOOK_BUILD_CACHE by the next.
var built struct {
	mu       sync.Mutex
	dir      string
	chapters map[int]*compiledChapter
}

type compiledChapter struct {
	once sync.Once
	ch   *chapter
	err  error
}

// sharedChapter finds chapter num and compiles its graders, or returns
// those another test compiled.
func sharedChapter(num string) (*chapter, error) {
	ch, err := findChapter(root, num)
	if err != nil {
		return nil, err
	}
	built.mu.Lock()
	if built.dir == "" {
		if built.dir, err = os.MkdirTemp("", "grade-test-"); err != nil {
			built.mu.Unlock()
			return nil, err
		}
		built.chapters = map[int]*compiledChapter{}
	}
	c := built.chapters[ch.num]
	if c == nil {
		c = &compiledChapter{}
		built.chapters[ch.num] = c
	}
	dir := filepath.Join(built.dir, ch.slug)
	built.mu.Unlock()
	c.once.Do(func() {
		c.ch, c.err = ch, ch.compile(dir)
	})
	return c.ch, c.err
}

// chaptersWithGraders lists the numbers ("01") of the chapters whose
// programs have graders.
func chaptersWithGraders(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(root, "code", "[0-9][0-9]-*"))
	if err != nil {
		t.Fatal(err)
	}
	var chs []string
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "grade", "grade_test.go")); err != nil {
			continue
		}
		chs = append(chs, filepath.Base(d)[:2])
	}
	return chs
}

// Every grader is proven three ways: it passes against the reference
// solution, it fails against the chapter's program as the book ships it,
// and it fails against each deliberately wrong solution written for it
// (grade/wrong/exN-NAME.patch). A grader that cannot fail, or that a
// plausible wrong answer fools, is a defect; so is a graded exercise with
// no wrong solution to prove its grader on.
//
// Each exercise is graded in a run of its own, all at once: most of a
// grading run is waiting for the program (and a grader that must fail
// often waits its whole limit), so this is what keeps the test short.
func TestGradersProveThemselves(t *testing.T) {
	t.Parallel()
	chs := chaptersWithGraders(t)
	if len(chs) == 0 {
		t.Fatal("no chapter has graders")
	}
	type plan struct {
		ch      *chapter
		graded  []int
		patches []wrongSolution
		errs    []error
	}
	var plans []plan
	// The graders are compiled once per chapter, not once per run (nor
	// once per test: the tests of hostile submissions share them).
	compiled := make([]*chapter, len(chs))
	errs := make([]error, len(chs))
	var wg sync.WaitGroup
	for i, num := range chs {
		wg.Go(func() { compiled[i], errs[i] = sharedChapter(num) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, ch := range compiled {
		patches, errs := wrongSolutions(ch, ch.graded)
		plans = append(plans, plan{ch, sortedKeys(ch.graded), patches, errs})
	}
	// Runs that must fail first: they are the longest.
	for _, p := range plans {
		for _, n := range p.graded {
			t.Run(fmt.Sprintf("%s/as-shipped/ex%d", p.ch.slug, n), func(t *testing.T) {
				t.Parallel()
				bare, err := grade(p.ch, "", options{only: n})
				if err != nil {
					t.Fatal(err)
				}
				x := resultOf(t, bare, n)
				if strings.HasPrefix(x.Reason, "does not compile") {
					t.Fatalf("the chapter's own program %s", x.Reason)
				}
				if x.Pass {
					t.Errorf("exercise %d passes on the unmodified chapter program: its grader cannot fail", n)
				}
				if len(x.Why) == 0 {
					t.Errorf("exercise %d fails with no message for the student", n)
				}
			})
		}
	}
	for _, p := range plans {
		for _, w := range p.patches {
			t.Run(p.ch.slug+"/wrong/"+w.name, func(t *testing.T) {
				t.Parallel()
				proveWrong(t, p.ch, w)
			})
		}
	}
	for _, p := range plans {
		t.Run(p.ch.slug+"/solution", func(t *testing.T) {
			if _, err := os.Stat(filepath.Join(p.ch.dir(), "solution")); err != nil {
				t.Fatalf("code/%s has graders but no reference solution in solution/", p.ch.slug)
			}
			if len(p.graded) == 0 {
				t.Fatal("no exercise is graded")
			}
			for _, n := range p.graded {
				if p.ch.titles[n] == "" {
					t.Errorf("TestExercise%d grades an exercise the chapter does not number", n)
				}
			}
		})
		// The solution passes every grader without waiting on anything, so
		// one run grades all its exercises: a run costs a sandbox, a test
		// binary and a build, which would otherwise be paid per exercise.
		t.Run(p.ch.slug+"/solution/all", func(t *testing.T) {
			t.Parallel()
			good, err := grade(p.ch, filepath.Join(p.ch.dir(), "solution"), options{})
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range p.graded {
				if x := resultOf(t, good, n); !x.Pass {
					t.Errorf("exercise %d fails on the reference solution: %s", n, strings.Join(x.Why, " / "))
				}
			}
		})
		t.Run(p.ch.slug+"/wrong", func(t *testing.T) {
			for _, err := range p.errs {
				t.Error(err)
			}
			for _, n := range p.graded {
				if !hasPatchFor(p.patches, n) {
					t.Errorf("exercise %d is graded but has no wrong solution: add code/%s/grade/wrong/ex%d-NAME.patch (see tools/AUTHORING.md)", n, p.ch.slug, n)
				}
			}
		})
	}
}

// resultOf is exercise n's result in a report, which must have graded it.
func resultOf(t *testing.T, rep *report, n int) result {
	t.Helper()
	for _, x := range rep.Results {
		if x.Num == n && x.Graded {
			return x
		}
	}
	t.Fatalf("exercise %d's grader did not run", n)
	return result{}
}

// wrongSolution is one grade/wrong/exN-NAME.patch.
type wrongSolution struct {
	name string // "ex2-timeout-on-listener"
	path string // absolute
	num  int    // the exercise whose grader must fail
	why  string // what is wrong with it, from the first line
}

var (
	patchNameRE = regexp.MustCompile(`^ex(\d+)-[a-z0-9]+(-[a-z0-9]+)*\.patch$`)
	patchHeadRE = regexp.MustCompile(`^exercise (\d+): (\S.*)$`)
)

// wrongSolutions reads a chapter's grade/wrong/ and reports each patch
// that is not in the expected form.
func wrongSolutions(ch *chapter, graded map[int]bool) ([]wrongSolution, []error) {
	dir := filepath.Join(ch.dir(), "grade", "wrong")
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{err}
	}
	var list []wrongSolution
	var errs []error
	for _, e := range entries {
		rel := "code/" + ch.slug + "/grade/wrong/" + e.Name()
		m := patchNameRE.FindStringSubmatch(e.Name())
		if e.IsDir() || m == nil {
			errs = append(errs, fmt.Errorf("%s: grade/wrong/ holds only files named exN-NAME.patch (NAME: lower-case words joined by -)", rel))
			continue
		}
		data, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		first, _, _ := strings.Cut(string(data), "\n")
		h := patchHeadRE.FindStringSubmatch(first)
		if h == nil || h[1] != strings.TrimLeft(m[1], "0") {
			errs = append(errs, fmt.Errorf("%s:1: the first line must be \"exercise %s: <what is wrong with this solution>\", got %q", rel, strings.TrimLeft(m[1], "0"), first))
			continue
		}
		n, _ := strconv.Atoi(h[1])
		if !graded[n] {
			errs = append(errs, fmt.Errorf("%s: exercise %d has no grader (TestExercise%d) to fail", rel, n, n))
			continue
		}
		list = append(list, wrongSolution{strings.TrimSuffix(e.Name(), ".patch"), filepath.Join(dir, e.Name()), n, h[2]})
	}
	return list, errs
}

func hasPatchFor(list []wrongSolution, n int) bool {
	for _, w := range list {
		if w.num == n {
			return true
		}
	}
	return false
}

// proveWrong applies a wrong solution's patch to a copy of the reference
// solution and requires its exercise's grader to fail it, with a message.
//
// The copy lives in the module, as a student's does (ROOT/00-wrong-*/,
// which .gitignore's /[0-9][0-9]-* covers), one directory per test, under
// a testdata/ directory that go's ./... patterns skip, so a go vet ./...
// running meanwhile does not see it. It is removed when the test ends.
func proveWrong(t *testing.T, ch *chapter, w wrongSolution) {
	base, err := os.MkdirTemp(ch.root, "00-wrong-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	dir := filepath.Join(base, "testdata", w.name)
	if err := os.CopyFS(dir, os.DirFS(filepath.Join(ch.dir(), "solution"))); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("patch", "-p1", "--batch", "--forward", "--no-backup-if-mismatch", "--reject-file=-", "-i", w.path)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("code/%s/grade/wrong/%s.patch does not apply to solution/ with patch -p1 (%v):\n%s", ch.slug, w.name, err, out)
	}
	rep, err := grade(ch, dir, options{only: w.num})
	if err != nil {
		t.Fatal(err)
	}
	switch x := resultOf(t, rep, w.num); {
	case strings.HasPrefix(x.Reason, "does not compile"):
		t.Fatalf("the wrong solution (%s) %s\nA wrong solution must build and run: its grader, not the compiler, must catch it.", w.why, x.Reason)
	case x.Pass:
		t.Errorf("exercise %d's grader passes a wrong solution: %s", w.num, w.why)
	case len(x.Why) == 0:
		t.Errorf("exercise %d fails the wrong solution with no message for the student", w.num)
	default:
		t.Logf("exercise %d fails it, as it must (%s): %s", w.num, w.why, x.Why[0])
	}
}
