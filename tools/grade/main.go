// Command grade runs a chapter's exercise graders against a program and
// reports, for each exercise, whether it passes and why not.
//
//	go run ./tools/grade 01                    # the chapter's program, as you edited it
//	go run ./tools/grade -program DIR 01       # a copy of it in DIR
//	go run ./tools/grade -ex 2 01              # exercise 2 only
//	go run ./tools/grade -class DIR 01         # each folder in DIR is a student's copy: one line each
//	go run ./tools/grade -class DIR -format csv 01
//
// A grader is a test in code/NN-slug/grade/grade_test.go, built only with
// the tag "grade", named TestExerciseN...: N is the exercise's number in the
// chapter. It drives the program as a real process on loopback, so it grades
// any copy of the program; tools/booktest builds the one BOOK_PROGRAM names.
// The graders are a package of their own, so a student's changes to the
// program's functions cannot stop them compiling.
//
// A submission is code we run without having read it, so each grading run
// (one program, all its exercises) is contained: see sandbox.go.
package main

import (
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/socket-to-server/book/tools/exercises"
)

// Exit statuses: a report that ran is not an error, but scripts may want to
// know that an exercise failed.
const (
	exitFailed = 1 // the report has a failing exercise (only without -status=false)
	exitError  = 2 // no report: a wrong argument, or the graders do not compile
)

func main() {
	program := flag.String("program", "", "grade the copy of the chapter's program in this directory")
	class := flag.String("class", "", "grade every folder in this directory, one line each")
	ex := flag.Int("ex", 0, "grade this exercise only")
	format := flag.String("format", "text", "with -class: text, or csv for a gradebook")
	verbose := flag.Bool("v", false, "show all a failing grader said, not its first line")
	limit := flag.Duration("timeout", defaultLimit, "how long one program's grading may take in all")
	status := flag.Bool("status", true, "exit with status 1 when a graded exercise fails")
	root := flag.String("root", ".", "the book's top directory")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "usage: grade [-program DIR | -class DIR [-format csv]] [-ex N] [-v] CHAPTER-NUMBER")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 || *format != "text" && *format != "csv" {
		flag.Usage()
		os.Exit(exitError)
	}
	failed, err := run(*root, flag.Arg(0), *program, *class, *format, *ex, *verbose, *limit)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(exitError)
	}
	if failed && *status {
		os.Exit(exitFailed)
	}
}

// run grades and prints the report; it reports whether an exercise failed.
func run(root, chapterArg, program, class, format string, ex int, verbose bool, limit time.Duration) (failed bool, err error) {
	ch, err := findChapter(root, chapterArg)
	if err != nil {
		return false, err
	}
	if ex != 0 && !ch.graded[ex] {
		return false, fmt.Errorf("chapter %d has no grader for exercise %d (graded: %s)", ch.num, ex, numbers(sortedKeys(ch.graded)))
	}
	opts := options{only: ex, limit: limit}
	tmp, err := os.MkdirTemp("", "grade-")
	if err != nil {
		return false, err
	}
	defer os.RemoveAll(tmp)
	if err := ch.compile(tmp); err != nil {
		return false, err
	}
	if box := sandboxFor(); box.note != "" {
		fmt.Fprintln(os.Stderr, "grade: note:", box.note)
	}
	if class != "" {
		return false, gradeClass(os.Stdout, os.Stderr, ch, class, format, opts)
	}
	rep, err := grade(ch, program, opts)
	if err != nil {
		return false, err
	}
	rep.print(os.Stdout, verbose)
	return !rep.allPass(), nil
}

// defaultLimit bounds one program's grading, all its exercises: the
// reference solutions take 3 to 30 seconds, and a program that does not
// start is given up on after its first exercise.
const defaultLimit = 2 * time.Minute

// chapter is what grading needs to know of a chapter.
type chapter struct {
	root    string // the book's top directory, absolute
	num     int
	slug    string         // "01-client-server"
	titles  map[int]string // exercise number -> title, from the chapter's prose
	graded  map[int]bool   // the exercises that have a grader
	testBin string         // the graders, compiled by compile
	builds  string         // where booktest keeps the programs it built (BOOK_BUILD_CACHE)
	toJSON  []string       // the command that turns the test binary's output into events
}

func (c *chapter) dir() string { return filepath.Join(c.root, "code", c.slug) }

// findChapter finds code/NN-slug for a chapter number and reads the titles
// of its exercises from chapters/NN-slug.md and which have a grader.
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
	src, err := os.ReadFile(filepath.Join(dirs[0], "grade", "grade_test.go"))
	if err != nil {
		return nil, fmt.Errorf("chapter %d has no graders (code/%s/grade/grade_test.go): check its exercises by hand", n, c.slug)
	}
	c.graded = exercises.Graded(string(src))
	data, err := os.ReadFile(filepath.Join(root, "chapters", c.slug+".md"))
	if err != nil {
		return nil, err
	}
	c.titles = map[int]string{}
	for _, x := range exercises.List(string(data)) {
		c.titles[x.Num] = x.Title
	}
	return c, nil
}

// compile compiles the graders into a test binary in dir, once for all the
// programs graded, and compiles the packages the chapter's own program
// needs, which fetches the modules and fills the build cache: a grading
// run has no network (see sandbox.go), and each submission's build then
// compiles its own files only. The program itself is not linked here (go
// list -export compiles without linking): a link costs as much CPU as a
// small compile, and the grading runs link what they run.
func (c *chapter) compile(dir string) error {
	c.testBin = filepath.Join(dir, c.slug+".test")
	c.builds = filepath.Join(dir, "programs")
	if err := os.MkdirAll(c.builds, 0o755); err != nil {
		return err
	}
	// test2json itself, rather than go tool test2json: a grading run is
	// one of many, and the go command costs more to start than the tool
	// (it asks each of the compiler, assembler, linker and C compiler for
	// its version first). go tool -n builds the tool if need be and says
	// where it is.
	c.toJSON = []string{"go", "tool", "test2json"}
	if out, err := exec.Command("go", "tool", "-n", "test2json").Output(); err == nil {
		tool := strings.TrimSpace(string(out))
		if _, err := os.Stat(tool); err == nil {
			c.toJSON = []string{tool}
		}
	}
	steps := [][]string{
		{"test", "-c", "-tags", "grade", "-o", c.testBin, "./code/" + c.slug + "/grade"},
		{"list", "-export", "-deps", "-f", "{{if .Error}}{{.Error}}{{end}}", "./code/" + c.slug},
	}
	errs := make([]error, len(steps))
	done := make(chan struct{})
	for i, args := range steps {
		go func() {
			defer func() { done <- struct{}{} }()
			cmd := exec.Command("go", args...)
			cmd.Dir = c.root
			if out, err := cmd.CombinedOutput(); err != nil {
				errs[i] = fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}()
	}
	for range steps {
		<-done
	}
	return errors.Join(errs...)
}

// result is one exercise's grade.
type result struct {
	Num    int
	Title  string
	Graded bool     // false: the chapter says how to check it by hand
	Pass   bool     // graded, and its grader ran to the end and passed
	Reason string   // why it failed, in one line
	Why    []string // all the grader said when it failed (capped: see lines)
}

// report is one program's grades.
type report struct {
	Chapter *chapter
	Program string
	Results []result
}

func (r *report) allPass() bool {
	pass, graded := r.score()
	return pass == graded
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

// print writes the report for the student: for a failing exercise, its
// reason, and all the grader said with verbose.
func (r *report) print(w io.Writer, verbose bool) {
	fmt.Fprintf(w, "Chapter %d exercises, graded on %s\n", r.Chapter.num, r.Program)
	for _, x := range r.Results {
		switch {
		case !x.Graded:
			fmt.Fprintf(w, "  ----  %d. %s (check it by hand, as the chapter says)\n", x.Num, x.Title)
		case x.Pass:
			fmt.Fprintf(w, "  PASS  %d. %s\n", x.Num, x.Title)
		case verbose:
			fmt.Fprintf(w, "  FAIL  %d. %s\n", x.Num, x.Title)
			for _, line := range x.Why {
				fmt.Fprintf(w, "          %s\n", line)
			}
		default:
			fmt.Fprintf(w, "  FAIL  %d. %s\n          %s", x.Num, x.Title, strings.TrimSuffix(x.Reason, ":"))
			if more := len(x.Why) - 1; more > 0 {
				fmt.Fprintf(w, " (-v shows %d more lines)", more)
			}
			fmt.Fprintln(w)
		}
	}
	pass, graded := r.score()
	fmt.Fprintf(w, "%d of %d graded exercises pass.\n", pass, graded)
}

// options are a grading run's: which graders, how long, what environment.
type options struct {
	only  int           // grade this exercise only; 0: all
	limit time.Duration // the whole run's
	env   []string      // added to the graders' environment
}

// runPattern is the go test -run pattern of the graders to run.
func (o options) runPattern() string {
	if o.only != 0 {
		return fmt.Sprintf("^TestExercise%d($|[^0-9])", o.only)
	}
	return "^TestExercise"
}

// grade runs the chapter's graders (or the one opts.only names) against
// program (a directory; "" for the chapter's own program). A graded
// exercise passes only if its grader ran to the end and passed; else it
// fails, with the reason.
func grade(ch *chapter, program string, opts options) (*report, error) {
	shown := "code/" + ch.slug
	dir := ch.dir()
	if program != "" {
		abs, err := filepath.Abs(program)
		if err != nil {
			return nil, err
		}
		if _, err := os.Stat(abs); err != nil {
			return nil, err
		}
		shown, dir = program, abs
	}
	out, err := runGraders(ch, dir, opts)
	if err != nil {
		return nil, err
	}
	rep := &report{Chapter: ch, Program: shown}
	for _, n := range exerciseNumbers(ch) {
		if opts.only != 0 && n != opts.only {
			continue
		}
		x := result{Num: n, Title: ch.titles[n], Graded: ch.graded[n]}
		if x.Graded {
			out.judge(&x)
		}
		rep.Results = append(rep.Results, x)
	}
	return rep, nil
}

// exerciseNumbers lists, in order, the chapter's exercises and any graded
// one the chapter does not number.
func exerciseNumbers(ch *chapter) []int {
	seen := map[int]bool{}
	for n := range ch.titles {
		seen[n] = true
	}
	for n := range ch.graded {
		seen[n] = true
	}
	return sortedKeys(seen)
}

func sortedKeys(m map[int]bool) []int {
	var keys []int
	for k := range m {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	return keys
}

func numbers(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// A submission is one entry of a class's folder: a student's copy of the
// program, graded, or an entry that is not one, skipped.
type submission struct {
	name    string
	skipped string        // why it was not graded
	rep     *report       // its grades, once done is closed
	err     error         // why it could not be graded
	done    chan struct{} // closed when rep or err is set
}

// gradeSubmissions starts grading each folder of dir (or symbolic link to
// one), a student's submission, at most one per core at a time, and
// returns them in the folders' order. Another entry is skipped, with the
// reason; hidden ones (.git) are ignored.
func gradeSubmissions(ch *chapter, dir string, opts options) ([]*submission, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var subs []*submission
	slots := make(chan struct{}, runtime.NumCPU())
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		s := &submission{name: e.Name(), done: make(chan struct{})}
		subs = append(subs, s)
		path := filepath.Join(dir, e.Name())
		if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
			s.skipped = "skipped: not a directory"
			if err != nil {
				s.skipped = "skipped: " + err.Error()
			}
			close(s.done)
			continue
		}
		go func() {
			defer close(s.done)
			slots <- struct{}{}
			defer func() { <-slots }()
			s.rep, s.err = grade(ch, path, opts)
		}()
	}
	return subs, nil
}

// gradeClass grades a class's folder and prints its report (printClass).
func gradeClass(w, errw io.Writer, ch *chapter, dir, format string, opts options) error {
	subs, err := gradeSubmissions(ch, dir, opts)
	if err != nil {
		return err
	}
	return printClass(w, errw, ch, subs, format, opts.only)
}

// printClass prints one line per student, or with format csv one record
// per student for a gradebook (then skipped entries are named on errw), as
// each is graded, in the folders' order.
func printClass(w, errw io.Writer, ch *chapter, subs []*submission, format string, only int) error {
	var table *csv.Writer
	if format == "csv" {
		table = csv.NewWriter(w)
		table.Write(csvHeader(ch, only))
	}
	var errs []error
	for _, s := range subs {
		<-s.done
		switch {
		case s.err != nil:
			errs = append(errs, fmt.Errorf("%s: %w", s.name, s.err))
		case table != nil && s.rep == nil:
			fmt.Fprintf(errw, "%s: %s\n", s.name, s.skipped)
		case table != nil:
			table.Write(csvRecord(s))
			table.Flush()
		default:
			fmt.Fprintln(w, classLine(s))
		}
	}
	if table != nil {
		table.Flush()
		errs = append(errs, table.Error())
	}
	return errors.Join(errs...)
}

// classLine is a submission's line: the student, the score, each graded
// exercise's mark, and why the failing ones fail.
func classLine(s *submission) string {
	if s.rep == nil {
		return fmt.Sprintf("%-20s  %s", s.name, s.skipped)
	}
	pass, graded := s.rep.score()
	var marks []string
	for _, x := range s.rep.Results {
		if x.Graded {
			marks = append(marks, fmt.Sprintf("%d:%s", x.Num, mark(x)))
		}
	}
	line := fmt.Sprintf("%-20s  %d/%d  %s", s.name, pass, graded, strings.Join(marks, " "))
	if why := reasons(s.rep); why != "" {
		line += "  " + why
	}
	return line
}

// csvHeader names the columns of the CSV: student, score (exercises
// passed), graded (out of), one per graded exercise (ex1, ex2, ...), and
// reason; with only, that exercise's column alone.
func csvHeader(ch *chapter, only int) []string {
	head := []string{"student", "score", "graded"}
	nums := sortedKeys(ch.graded)
	if only != 0 {
		nums = []int{only}
	}
	for _, n := range nums {
		head = append(head, fmt.Sprintf("ex%d", n))
	}
	return append(head, "reason")
}

func csvRecord(s *submission) []string {
	pass, graded := s.rep.score()
	record := []string{s.name, strconv.Itoa(pass), strconv.Itoa(graded)}
	for _, x := range s.rep.Results {
		if x.Graded {
			record = append(record, mark(x))
		}
	}
	return append(record, reasons(s.rep))
}

func mark(x result) string {
	if x.Pass {
		return "pass"
	}
	return "fail"
}

// reasons says in one line why a report's exercises failed: one reason
// when they share it, else each exercise's ("2: ...; 3, 4: ...").
func reasons(rep *report) string {
	var order []string
	byReason := map[string][]int{}
	for _, x := range rep.Results {
		if !x.Graded || x.Pass {
			continue
		}
		why := short(x.Reason)
		if byReason[why] == nil {
			order = append(order, why)
		}
		byReason[why] = append(byReason[why], x.Num)
	}
	if len(order) == 1 {
		return order[0]
	}
	parts := make([]string, len(order))
	for i, why := range order {
		parts[i] = numbers(byReason[why]) + ": " + why
	}
	return strings.Join(parts, "; ")
}

// short cuts a reason to a length a class report's line can hold.
func short(s string) string {
	const max = 100
	if r := []rune(s); len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}
