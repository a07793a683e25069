// Command grade runs a chapter's exercise graders against a program and
// reports, for each exercise, whether it passes and why not.
//
//	go run ./tools/grade 01                    # the chapter's program, as you edited it
//	go run ./tools/grade -program DIR 01       # a copy of it in DIR
//	go run ./tools/grade -class DIR 01         # each folder in DIR is a student's copy: one line each
//
// A grader is a test in code/NN-slug/grade/grade_test.go, built only with
// the tag "grade", named TestExerciseN...: N is the exercise's number in the
// chapter. It drives the program as a real process on loopback, so it grades
// any copy of the program; tools/booktest builds the one BOOK_PROGRAM names.
// The graders are a package of their own, so a student's changes to the
// program's functions cannot stop them compiling.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/socket-to-server/book/tools/exercises"
)

func main() {
	program := flag.String("program", "", "grade the copy of the chapter's program in this directory")
	class := flag.String("class", "", "grade every folder in this directory, one line each")
	root := flag.String("root", ".", "the book's top directory")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: grade [-program DIR | -class DIR] CHAPTER-NUMBER")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	ch, err := findChapter(*root, flag.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if *class != "" {
		if err := gradeClass(os.Stdout, ch, *class); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	rep, err := grade(ch, *program)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	rep.print(os.Stdout)
	if !rep.allPass() {
		os.Exit(1)
	}
}

// chapter is what grading needs to know of a chapter.
type chapter struct {
	root      string // the book's top directory, absolute
	num       int
	slug      string         // "01-client-server"
	titles    map[int]string // exercise number -> title, from the chapter's prose
	hasGrader bool
	testBin   string // the graders compiled with go test -c, or "" to have go test build them
}

func (c *chapter) dir() string { return filepath.Join(c.root, "code", c.slug) }

// findChapter finds code/NN-slug for a chapter number and reads the titles
// of its exercises from chapters/NN-slug.md.
func findChapter(root, arg string) (*chapter, error) {
	n, err := strconv.Atoi(arg)
	if err != nil || n < 1 || n > 99 {
		return nil, fmt.Errorf("chapter %q: give the chapter's number, such as 01 or 4", arg)
	}
	root, err = filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "code", fmt.Sprintf("%02d-*", n)))
	if len(dirs) != 1 {
		return nil, fmt.Errorf("chapter %02d: no code/%02d-* directory in %s", n, n, root)
	}
	c := &chapter{root: root, num: n, slug: filepath.Base(dirs[0])}
	_, err = os.Stat(filepath.Join(dirs[0], "grade", "grade_test.go"))
	c.hasGrader = err == nil
	c.titles, err = exerciseTitles(filepath.Join(root, "chapters", c.slug+".md"))
	return c, err
}

// exerciseTitles reads the titles of the chapter's exercises.
func exerciseTitles(path string) (map[int]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	titles := map[int]string{}
	for _, x := range exercises.List(string(data)) {
		titles[x.Num] = x.Title
	}
	return titles, nil
}

// result is one exercise's grade.
type result struct {
	Num    int
	Title  string
	Graded bool     // false: the chapter says how to check it by hand
	Pass   bool     // graded and passed
	Why    []string // what the grader said when it failed
}

// report is one program's grades, or the reason it could not be graded.
type report struct {
	Chapter *chapter
	Program string
	Broken  string // "does not compile: ...", when no exercise could run
	Results []result
}

func (r *report) allPass() bool {
	if r.Broken != "" {
		return false
	}
	for _, x := range r.Results {
		if x.Graded && !x.Pass {
			return false
		}
	}
	return true
}

func (r *report) score() (pass, graded int) {
	for _, x := range r.Results {
		if x.Graded {
			graded++
			if x.Pass {
				pass++
			}
		}
	}
	return
}

func (r *report) print(w io.Writer) {
	fmt.Fprintf(w, "Chapter %d exercises, graded on %s\n", r.Chapter.num, r.Program)
	if r.Broken != "" {
		fmt.Fprintf(w, "  %s\n", r.Broken)
		return
	}
	for _, x := range r.Results {
		switch {
		case !x.Graded:
			fmt.Fprintf(w, "  ----  %d. %s (check it by hand, as the chapter says)\n", x.Num, x.Title)
		case x.Pass:
			fmt.Fprintf(w, "  PASS  %d. %s\n", x.Num, x.Title)
		default:
			fmt.Fprintf(w, "  FAIL  %d. %s\n", x.Num, x.Title)
			for _, line := range x.Why {
				fmt.Fprintf(w, "          %s\n", line)
			}
		}
	}
	pass, graded := r.score()
	fmt.Fprintf(w, "%d of %d graded exercises pass.\n", pass, graded)
}

// testEvent is one line of go test -json.
type testEvent struct {
	Action string
	Test   string
	Output string
}

var exerciseTestRE = regexp.MustCompile(`^TestExercise(\d+)`)

// limit bounds one grading run: the graders' own waits are shorter, so
// only a grader that is itself broken reaches it.
const limit = 4 * time.Minute

// grade runs the chapter's graders against program (a directory; "" for
// the chapter's own program), with env added to their environment.
func grade(ch *chapter, program string, env ...string) (*report, error) {
	return gradeRun(ch, program, "^TestExercise", env...)
}

// gradeRun is grade with the graders limited to those run (a go test -run
// pattern) selects; the other exercises are reported as not graded.
func gradeRun(ch *chapter, program, run string, env ...string) (*report, error) {
	if !ch.hasGrader {
		return nil, fmt.Errorf("chapter %d has no graders (code/%s/grade/grade_test.go): check its exercises by hand", ch.num, ch.slug)
	}
	shown := "code/" + ch.slug
	env = append(append(os.Environ(), env...), "BOOK_PROGRAM="+ch.dir())
	if program != "" {
		abs, err := filepath.Abs(program)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, err
		}
		shown = program
		env = append(env, "BOOK_PROGRAM="+abs)
	}
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	// -vet=off: the graders are the book's, vetted with it; the program
	// under test is built by the graders themselves, and not vetted.
	cmd := exec.CommandContext(ctx, "go", "test", "-tags", "grade", "-json", "-count=1", "-vet=off",
		"-timeout", limit.String(), "-run", run, "./code/"+ch.slug+"/grade")
	cmd.Dir = ch.root
	if ch.testBin != "" {
		// The same run, with the graders compiled once already; go test runs
		// a test binary in its package's directory.
		cmd = exec.CommandContext(ctx, "go", "tool", "test2json", "-t", ch.testBin,
			"-test.v=test2json", "-test.count=1", "-test.timeout="+limit.String(), "-test.run="+run)
		cmd.Dir = filepath.Join(ch.dir(), "grade")
	}
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, runErr := cmd.Output()
	rep := &report{Chapter: ch, Program: shown}

	byNum := map[int]*result{}
	var buildOutput []string
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var ev testEvent
		if err := dec.Decode(&ev); err != nil {
			break
		}
		if ev.Action == "build-output" || ev.Action == "output" && ev.Test == "" {
			buildOutput = append(buildOutput, strings.TrimRight(ev.Output, "\n"))
		}
		m := exerciseTestRE.FindStringSubmatch(ev.Test)
		if m == nil {
			continue
		}
		n, _ := strconv.Atoi(m[1])
		x := byNum[n]
		if x == nil {
			x = &result{Num: n, Title: ch.titles[n], Graded: true, Pass: true}
			byNum[n] = x
		}
		switch ev.Action {
		case "fail":
			x.Pass = false
		case "output":
			if line := strings.TrimSpace(ev.Output); line != "" && !strings.HasPrefix(line, "=== ") && !strings.HasPrefix(line, "--- ") {
				x.Why = append(x.Why, line)
			}
		}
	}
	if len(byNum) == 0 {
		// No grader ran: the test package did not build, most likely
		// because the edited program does not compile.
		msg := strings.TrimSpace(strings.Join(append(buildOutput, stderr.String()), "\n"))
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			msg = fmt.Sprintf("grading did not finish within %v", limit)
		} else if runErr == nil {
			msg = "no grader ran"
		}
		rep.Broken = "could not be graded: " + msg
		return rep, nil
	}
	nums := make([]int, 0, len(ch.titles))
	for n := range ch.titles {
		nums = append(nums, n)
	}
	for n := range byNum {
		if _, ok := ch.titles[n]; !ok {
			nums = append(nums, n)
		}
	}
	sort.Ints(nums)
	for _, n := range nums {
		if x, ok := byNum[n]; ok {
			rep.Results = append(rep.Results, *x)
		} else {
			rep.Results = append(rep.Results, result{Num: n, Title: ch.titles[n]})
		}
	}
	return rep, nil
}

// gradeClass grades each folder of dir and prints one line per student.
func gradeClass(w io.Writer, ch *chapter, dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		rep, err := grade(ch, filepath.Join(dir, e.Name()))
		if err != nil {
			return err
		}
		if rep.Broken != "" {
			fmt.Fprintf(w, "%-20s  0/?  %s\n", e.Name(), firstLine(rep.Broken))
			continue
		}
		pass, graded := rep.score()
		var marks []string
		for _, x := range rep.Results {
			if x.Graded {
				mark := "fail"
				if x.Pass {
					mark = "pass"
				}
				marks = append(marks, fmt.Sprintf("%d:%s", x.Num, mark))
			}
		}
		fmt.Fprintf(w, "%-20s  %d/%d  %s\n", e.Name(), pass, graded, strings.Join(marks, " "))
	}
	return nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
