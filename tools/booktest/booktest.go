// Package booktest is what the chapter programs' tests share: it builds a
// chapter's program, runs it as real processes on loopback, records what they
// print as a transcript, and compares that transcript with the one stored
// next to the program (testdata/NAME.txt), which is what the book shows.
//
// Run the tests with -update to rewrite the stored transcripts:
//
//	go test ./code/... -update
//
// It also checks that in-process tests leave no file descriptor open, and
// runs the commands a chapter tells the reader to type (Experiment, Shell,
// Machine).
//
// The programs get the test's environment without GODEBUG (ProgramEnv):
// every program's main.go says //go:debug containermaxprocs=0, and the tests
// show that the line, not the environment, gives the book's numbers.
package booktest

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	gobuild "go/build"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the stored transcripts with what the programs print now")

// DisplayPort is the port every chapter program uses by default. A server
// started by a Session listens on an ephemeral port; the transcript shows it
// as this one, which is what a reader who runs the program sees.
const DisplayPort = 8080

// Generous bounds: they only stop a broken program from hanging the tests.
// BOOK_WAIT (a duration) sets a shorter one, for the grader's own tests of
// how it reports a program that hangs.
var (
	waitLimit = envDuration("BOOK_WAIT", 15*time.Second)
	runLimit  = 2 * waitLimit
)

func envDuration(name string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(os.Getenv(name)); err == nil && d > 0 {
		return d
	}
	return def
}

// A Session runs one chapter program as one or more processes and records
// each process's command line and output in a pane: one pane per column of
// the transcript (say "server" and "client").
type Session struct {
	t       testing.TB
	bin     string
	display string // "./code/NN-slug", the path a reader passes to go run
	panes   []*pane
	servers []string // ports servers listen on, shown as DisplayPort
	rules   []func(string) string

	autoAddr bool // Start added -addr 127.0.0.1:0 to a server's arguments
	grader   bool // made by NewGrader: see notStarted

	// Env is added to the environment of every process started after it
	// is set.
	Env []string
}

type pane struct {
	name  string
	procs []*Proc
}

// A Proc is one process of the program. Its output is stdout and stderr
// together, in the order the program wrote them.
type Proc struct {
	s       *Session
	cmd     *exec.Cmd
	shown   []string // the arguments the transcript shows
	out     syncBuffer
	done    chan struct{}
	waitErr error
	addr    string
	sigAt   int // how much had been printed when the test sent SIGINT; -1 if never

	floodTold atomic.Bool // the test has been failed for the process's flood
}

// New builds the program in the test's working directory (the chapter's
// program directory), or the one BOOK_PROGRAM names, and returns a session
// that runs it.
func New(t testing.TB) *Session {
	t.Helper()
	return newSession(t, ".", false)
}

// NewGrader is New for an exercise grader, which lives in the chapter's
// grade/ directory: it builds the program BOOK_PROGRAM names (a student's
// copy, or the reference solution), or else the chapter's own, in the
// parent directory.
func NewGrader(t testing.TB) *Session {
	t.Helper()
	if why := startFailure.get(); why != "" {
		t.Fatalf("%s: %s, as an earlier exercise found", NotRun, why)
	}
	return newSession(t, "..", true)
}

// NotRun begins the failure of a grader that did not run the program,
// because an earlier grader in the same run found that it does not start.
const NotRun = "not run: the program does not start"

// startFailure is why the program under test does not start, once a
// grader has found it: it does not compile, or, started with no arguments
// as the chapter starts it, it ended or hung before printing its listening
// line, hung when it should have ended, or flooded its output. The graders
// after it in the same test binary then fail at once with NotRun instead
// of waiting up to a minute each for the same failure. A failure with
// arguments (an exercise's new flag, which the program may not have yet)
// says nothing of the other exercises, and is not recorded.
var startFailure failureNote

type failureNote struct {
	mu  sync.Mutex
	why string
}

func (f *failureNote) get() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.why
}

func (f *failureNote) set(why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.why == "" {
		f.why = why
	}
}

// notStarted records, for a grader's session, that the program started
// with args failed to get going, for why.
func (s *Session) notStarted(args []string, why string) {
	if s.grader && len(args) == 0 {
		startFailure.set(why)
	}
}

func newSession(t testing.TB, dir string, grader bool) *Session {
	t.Helper()
	if p := os.Getenv("BOOK_PROGRAM"); p != "" {
		dir = p
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	// Commands are shown as a reader types them: go run ./code/NN-slug.
	display := abs
	if rel, err := filepath.Rel(moduleRoot(t, wd), abs); err == nil && !strings.HasPrefix(rel, "..") {
		display = "./" + filepath.ToSlash(rel)
	}
	// Descriptors this test process inherited without close-on-exec (from
	// a shell or an IDE) would otherwise reach every program it starts.
	markCloseOnExec(t)
	s := &Session{t: t, display: display, grader: grader}
	s.bin = build(t, abs, grader)
	// Ports a client was given by the kernel are renumbered in order of
	// appearance, so that two runs print the same transcript.
	s.Renumber(`(?:127\.0\.0\.1|\[::1\]):(\d+)`, 40001)
	return s
}

// Build compiles the program under test (the package in the working
// directory, or the one BOOK_PROGRAM names) into a temporary directory and
// returns the path of the binary.
func Build(t testing.TB) string {
	t.Helper()
	return build(t, cmp.Or(os.Getenv("BOOK_PROGRAM"), "."), false)
}

// build compiles the program in dir. It may be outside the book's module (a
// folder of class submissions), so its files are built by name from the
// module's root, with the book's go.mod; named files ignore build
// constraints, so the ones for this system are picked here. A grader's
// build that fails is recorded as the program's start failure.
func build(t testing.TB, dir string, grader bool) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := moduleRoot(t, wd)
	files := programFiles(t, dir)
	bin := filepath.Join(t.TempDir(), "prog")
	// A grader runs in a process of its own for each exercise, or for each
	// program graded: BOOK_BUILD_CACHE, set by tools/grade, keeps programs
	// already built, by their sources, so each is compiled and linked once.
	cache := os.Getenv("BOOK_BUILD_CACHE")
	var cached string
	if cache != "" {
		cached = filepath.Join(cache, sourceKey(t, root, files))
		// Runs that start together build the same program (tools/grade
		// grades the chapter's own once per exercise, all at once): the
		// first builds it, holding a lock on a file beside it, and the
		// others wait for it rather than each building it too.
		defer lockFile(cached + ".lock")()
		if _, err := os.Stat(cached); err == nil {
			return cached
		}
		// A name of its own (not the PID: each grading run has a PID
		// namespace of its own, where the test binary's PID is the same).
		f, err := os.CreateTemp(cache, "build-*")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		bin = f.Name()
		defer os.Remove(bin) // left only if the build failed
	}
	if cache == "" && builds.dir != "" {
		return buildShared(t, root, dir, files, bin)
	}
	goBuild(t, root, dir, files, bin, grader)
	if cached != "" {
		// Two processes may build the same program at once: each renames
		// a whole binary into place, and either is the same program.
		if err := os.Rename(bin, cached); err != nil {
			t.Fatal(err)
		}
		bin = cached
	}
	return bin
}

// lockFile takes an exclusive lock on the file at path, made if need be,
// and returns what releases it. The kernel releases it too, should the
// process die holding it. Where the lock cannot be had, it does nothing:
// the builds then happen side by side, as they may.
func lockFile(path string) (unlock func()) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return func() {}
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		f.Close()
		return func() {}
	}
	return func() { f.Close() } // closing the only descriptor releases the lock
}

// goBuild compiles files, the program in dir, into bin.
func goBuild(t testing.TB, root, dir string, files []string, bin string, grader bool) {
	t.Helper()
	cmd := exec.Command(goTool(), append([]string{"build", "-o", bin}, files...)...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		if grader {
			startFailure.set("it does not compile")
		}
		t.Fatalf("the program in %s does not compile:\n%s", dir, out)
	}
}

// builds is the test binary's own cache of the programs its tests build,
// by their sources, when its TestMain runs the tests with Run.
var builds struct {
	dir  string // "": each test builds the program itself
	mu   sync.Mutex
	keys map[string]*sync.Mutex // one per program, held while it is built
}

// Run runs a package's tests, as m.Run does, with a cache of the programs
// they build: a chapter's tests start its program in a dozen sessions,
// and each would otherwise pay a go build and a link of its own, most of
// the CPU time some packages' tests take. Each program is built once per
// test binary, by its sources, and each test still gets a binary of its
// own in its temporary directory (a hard link to the cached one). The
// cache is removed when the tests end. A package whose TestMain does not
// call Run builds the program in each test, as before.
func Run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "booktest-builds-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "booktest: no build cache:", err)
		return m.Run()
	}
	defer os.RemoveAll(dir)
	builds.dir = dir
	builds.keys = map[string]*sync.Mutex{}
	return m.Run()
}

// buildShared builds the program in dir into the test binary's cache, if
// an earlier test has not, and links it at bin. Tests that run in
// parallel wait for the one build of their program rather than each
// making one.
func buildShared(t testing.TB, root, dir string, files []string, bin string) string {
	t.Helper()
	key := sourceKey(t, root, files)
	builds.mu.Lock()
	mu := builds.keys[key]
	if mu == nil {
		mu = &sync.Mutex{}
		builds.keys[key] = mu
	}
	builds.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	cached := filepath.Join(builds.dir, key)
	if _, err := os.Stat(cached); err != nil {
		goBuild(t, root, dir, files, cached+".tmp", false)
		if err := os.Rename(cached+".tmp", cached); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(cached, bin); err != nil {
		// Another file system: a copy, as the test's own.
		if err := copyExecutable(cached, bin); err != nil {
			t.Fatal(err)
		}
	}
	return bin
}

func copyExecutable(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o755)
}

// sourceKey names a build of files by everything that decides it: the Go
// toolchain, the module's go.mod and go.sum, GOFLAGS, and each file's name
// and contents.
func sourceKey(t testing.TB, root string, files []string) string {
	t.Helper()
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00%s\x00", goTool(), os.Getenv("GOFLAGS"), os.Getenv("GOOS"))
	for _, f := range append([]string{filepath.Join(root, "go.mod"), filepath.Join(root, "go.sum")}, files...) {
		data, err := os.ReadFile(f)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(f), len(data))
		h.Write(data)
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// programFiles lists the absolute paths of dir's Go files, tests left out,
// that build on this system.
func programFiles(t testing.TB, dir string) []string {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		t.Fatalf("the program's directory: %v", err)
	}
	var files []string
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		if ok, err := gobuild.Default.MatchFile(abs, name); err == nil && ok {
			files = append(files, filepath.Join(abs, name))
		}
	}
	if len(files) == 0 {
		t.Fatalf("no Go files in %s", dir)
	}
	return files
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

func moduleRoot(t testing.TB, dir string) string {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d
		}
		if filepath.Dir(d) == d {
			t.Fatalf("no go.mod above %s", dir)
		}
	}
}

// Renumber replaces each distinct value of pattern's first group with a
// number counted from start, in order of first appearance in the
// transcript. Ports, inode numbers and PIDs differ from run to run; their
// order does not.
func (s *Session) Renumber(pattern string, start int) {
	re := regexp.MustCompile(pattern)
	s.rules = append(s.rules, func(text string) string {
		seen := map[string]string{}
		next := start
		return replaceGroup(re, text, func(v string) string {
			if v == "0" {
				// A server Start gave -addr 127.0.0.1:0 prints that address
				// before the kernel picks a port; the reader, who ran it
				// without -addr, sees the default port there.
				if s.autoAddr {
					return strconv.Itoa(DisplayPort)
				}
				return v
			}
			for _, p := range s.servers {
				if v == p {
					return strconv.Itoa(DisplayPort)
				}
			}
			if n, ok := seen[v]; ok {
				return n
			}
			seen[v] = strconv.Itoa(next)
			next++
			return seen[v]
		})
	})
}

// Replace rewrites every match of pattern with repl (as regexp.ReplaceAllString).
func (s *Session) Replace(pattern, repl string) {
	re := regexp.MustCompile(pattern)
	s.rules = append(s.rules, func(text string) string { return re.ReplaceAllString(text, repl) })
}

// replaceGroup calls f on group 1 of every match and splices the result in.
func replaceGroup(re *regexp.Regexp, text string, f func(string) string) string {
	var b strings.Builder
	last := 0
	for _, m := range re.FindAllStringSubmatchIndex(text, -1) {
		if m[2] < 0 {
			continue
		}
		b.WriteString(text[last:m[2]])
		b.WriteString(f(text[m[2]:m[3]]))
		last = m[3]
	}
	b.WriteString(text[last:])
	return b.String()
}

func (s *Session) pane(name string) *pane {
	for _, p := range s.panes {
		if p.name == name {
			return p
		}
	}
	p := &pane{name: name}
	s.panes = append(s.panes, p)
	return p
}

func (s *Session) start(paneName string, shown, args []string) *Proc {
	s.t.Helper()
	p := &Proc{s: s, shown: shown, done: make(chan struct{}), sigAt: -1}
	p.cmd = exec.Command(s.bin, args...)
	p.cmd.Env = ProgramEnv(s.Env...)
	// The output comes through a pipe of our own, not one exec makes, so
	// that Output can read what is still in it: see syncBuffer.
	r, w, err := os.Pipe()
	if err != nil {
		s.t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = w, w
	// A process group of its own, so that what the program starts (and
	// does not move to a session of its own) ends with it; see procAttr.
	p.cmd.SysProcAttr = procAttr()
	err = p.cmd.Start()
	w.Close() // the program has its copy; ours would keep the pipe open
	if err != nil {
		r.Close()
		s.t.Fatalf("start %s: %v", s.display, err)
	}
	if err := limit(p.cmd.Process.Pid); err != nil {
		p.killGroup()
		s.t.Fatalf("start %s: %v", s.display, err)
	}
	p.out.onFlood = p.killGroup
	copied, err := p.out.follow(r)
	if err != nil {
		s.t.Fatal(err)
	}
	go func() {
		p.waitErr = p.cmd.Wait()
		// The program has ended: so does what it left running in its
		// group. Its pid, the group's ID, is not reused this soon.
		p.killGroup()
		// A child the program started may still hold the pipe open; take
		// what is there and stop waiting for the end of file.
		select {
		case <-copied:
		case <-time.After(waitDelay):
		}
		p.out.drain()
		r.Close()
		<-copied
		close(p.done)
	}()
	s.t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.killGroup()
			<-p.done
		}
		if p.out.isFlooded() && !p.floodTold.Load() {
			s.t.Error(p.floodText())
		}
	})
	pn := s.pane(paneName)
	pn.procs = append(pn.procs, p)
	return p
}

var listeningRE = regexp.MustCompile(`(?:listening on|bound to) (\S+)`)

// Start starts a server in the named pane and waits until it prints its
// "listening on ADDR" line (or "bound to ADDR", for a program that binds
// but does not listen). Unless args name an -addr, the server is given
// -addr 127.0.0.1:0 so the kernel picks a free port; the transcript shows
// the command without it and the port as DisplayPort.
func (s *Session) Start(paneName string, args ...string) *Proc {
	s.t.Helper()
	run := args
	if !hasFlag(args, "addr") {
		run = append(append([]string{}, args...), "-addr", "127.0.0.1:0")
		s.autoAddr = true
	}
	p := s.start(paneName, args, run)
	m, err := p.await(listeningRE, `its "listening on ADDR" line`)
	if err != nil {
		s.notStarted(args, err.why)
		s.t.Fatal(err)
	}
	p.addr = m[1]
	if i := strings.LastIndex(p.addr, ":"); i >= 0 {
		s.servers = append(s.servers, p.addr[i+1:])
	}
	return p
}

// Spawn starts a process in the named pane and returns at once.
func (s *Session) Spawn(paneName string, args ...string) *Proc {
	s.t.Helper()
	return s.start(paneName, args, args)
}

// Run runs a process in the named pane to its end and returns it.
func (s *Session) Run(paneName string, args ...string) *Proc {
	s.t.Helper()
	p := s.start(paneName, args, args)
	if err := p.wait(); err != nil {
		s.notStarted(args, err.why)
		s.t.Fatal(err)
	}
	return p
}

func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			continue // a flag's value, or an argument
		}
		a = strings.TrimLeft(a, "-")
		if a == name || strings.HasPrefix(a, name+"=") {
			return true
		}
	}
	return false
}

// Pid is the process's ID.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Addr is the address a server printed in its "listening on" line.
func (p *Proc) Addr() string { return p.addr }

// Output is what the process has printed so far.
func (p *Proc) Output() string { return p.out.String() }

// ExitCode is the process's exit status, once it has ended.
func (p *Proc) ExitCode() int { return p.cmd.ProcessState.ExitCode() }

// Wait waits for the process to end, killing it (and failing the test)
// if it runs for longer than a generous limit. A process that flooded its
// output fails the test too.
func (p *Proc) Wait() {
	p.s.t.Helper()
	if err := p.wait(); err != nil {
		p.s.t.Fatal(err)
	}
}

// A waitError is a failure of the program that a wait found: the test's
// message, and in a few words why, for the grader's note (notStarted).
type waitError struct {
	why, msg string
}

func (e *waitError) Error() string { return e.msg }

func (p *Proc) wait() *waitError {
	select {
	case <-p.done:
	case <-time.After(runLimit):
		p.killGroup()
		<-p.done
		return &waitError{fmt.Sprintf("it was still running after %v", runLimit),
			fmt.Sprintf("%s was still running after %v, so it was killed. Its output:\n%s", p.command(), runLimit, p.Output())}
	}
	if p.out.isFlooded() {
		return p.floodError()
	}
	return nil
}

// floodError is the failure of a process killed for flooding its output.
func (p *Proc) floodError() *waitError {
	p.floodTold.Store(true)
	return &waitError{"it flooded its output", p.floodText()}
}

// floodText says that the process flooded its output and shows how its
// output began, which is usually enough to see why.
func (p *Proc) floodText() string {
	out := p.Output()
	if len(out) > 2<<10 {
		out = out[:2<<10] + "…"
	}
	return fmt.Sprintf("%s flooded its output: it printed more than %d MiB, so it was killed. Its output began:\n%s",
		p.command(), floodLimit>>20, out)
}

// killGroup kills the process and every process in its group.
func (p *Proc) killGroup() {
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
}

// WaitFor waits until the process has printed text.
func (p *Proc) WaitFor(text string) { p.s.t.Helper(); p.WaitForN(text, 1) }

// WaitForN waits until the process has printed text n times.
func (p *Proc) WaitForN(text string, n int) {
	p.s.t.Helper()
	q := regexp.QuoteMeta(text)
	what := strconv.Quote(text)
	if n > 1 {
		what = fmt.Sprintf("%s %d times", what, n)
	}
	p.waitMatch(regexp.MustCompile("(?s)"+strings.Repeat(q+".*?", n-1)+q), what)
}

func (p *Proc) waitMatch(re *regexp.Regexp, what string) []string {
	p.s.t.Helper()
	m, err := p.await(re, what)
	if err != nil {
		p.s.t.Fatal(err)
	}
	return m
}

// await waits until the process's output matches re, and returns the
// match; what names the awaited text for the failure.
func (p *Proc) await(re *regexp.Regexp, what string) ([]string, *waitError) {
	deadline := time.Now().Add(waitLimit)
	for {
		if m := re.FindStringSubmatch(p.Output()); m != nil {
			return m, nil
		}
		select {
		case <-p.done:
			if m := re.FindStringSubmatch(p.Output()); m != nil {
				return m, nil
			}
			if p.out.isFlooded() {
				return nil, p.floodError()
			}
			return nil, &waitError{fmt.Sprintf("it ended (%s) before printing %s", exitText(p.waitErr), what),
				fmt.Sprintf("%s ended (%s) before printing %s. Its output:\n%s", p.command(), exitText(p.waitErr), what, p.Output())}
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, &waitError{fmt.Sprintf("it did not print %s within %v", what, waitLimit),
				fmt.Sprintf("%s has not printed %s after %v. Its output:\n%s", p.command(), what, waitLimit, p.Output())}
		}
	}
}

// Send sends sig to the process and returns at once: for a signal the
// program handles and goes on, like SIGUSR1.
func (p *Proc) Send(sig os.Signal) {
	p.s.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.s.t.Fatalf("signal %v: %v", sig, err)
	}
}

// command is the process's command line as the transcript shows it.
func (p *Proc) command() string {
	return "go run " + shellJoin(append([]string{p.s.display}, p.shown...))
}

// exitText says how a process ended, in words.
func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error() // "exit status 1", "signal: killed"
}

// Signal sends sig to the process and waits for it to end.
func (p *Proc) Signal(sig os.Signal) {
	p.s.t.Helper()
	if sig == syscall.SIGINT {
		p.sigAt = len(p.Output())
	}
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.s.t.Fatalf("signal %v: %v", sig, err)
	}
	p.Wait()
}

// Interrupt sends SIGINT, as Ctrl-C in a terminal does, and waits for the
// process to end.
func (p *Proc) Interrupt() { p.Signal(syscall.SIGINT) }

// Text is the normalised transcript: for each pane a "=== NAME" line, then
// each of its processes' command lines and output.
func (s *Session) Text() string {
	var b strings.Builder
	for _, pn := range s.panes {
		fmt.Fprintf(&b, "=== %s\n", pn.name)
		for _, p := range pn.procs {
			fmt.Fprintf(&b, "$ go run %s\n", shellJoin(append([]string{s.display}, p.shown...)))
			out := p.Output()
			if p.sigAt >= 0 {
				// Where a terminal echoes the Ctrl-C that stopped the program.
				out = out[:p.sigAt] + "^C\n" + out[p.sigAt:]
			}
			b.WriteString(out)
			if out != "" && !strings.HasSuffix(out, "\n") {
				b.WriteString("\n")
			}
			select {
			case <-p.done:
				if code := p.ExitCode(); code > 0 {
					// What go run itself prints when the program fails.
					fmt.Fprintf(&b, "exit status %d\n", code)
				}
			default:
			}
		}
	}
	text := b.String()
	for _, rule := range s.rules {
		text = rule(text)
	}
	return text
}

func shellJoin(args []string) string {
	quoted := make([]string, len(args))
	for i, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		quoted[i] = a
	}
	return strings.Join(quoted, " ")
}

// Check compares the transcript with testdata/NAME.txt, the file the book
// shows, or rewrites that file when the tests run with -update. Every
// process must have ended.
func (s *Session) Check(name string) {
	s.t.Helper()
	for _, pn := range s.panes {
		for _, p := range pn.procs {
			select {
			case <-p.done:
			default:
				s.t.Fatalf("Check(%q): %s %s is still running; stop it first", name, s.display, strings.Join(p.shown, " "))
			}
		}
	}
	got := s.Text()
	path := filepath.Join("testdata", name+".txt")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			s.t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			s.t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		s.t.Fatalf("%v\nrun: go test %s -update", err, s.display)
	}
	if d := FirstDifference(string(want), got); d != "" {
		s.t.Errorf("%s/%s no longer matches what the program prints (run: go test %s -update, and check the chapter's prose still holds):\n%s",
			s.display, path, s.display, d)
	}
}

// FirstDifference describes the first line where want and got differ, or
// returns "" when they are equal.
func FirstDifference(want, got string) string {
	if want == got {
		return ""
	}
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; ; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl || i >= len(w) || i >= len(g) {
			return fmt.Sprintf("line %d:\n  stored: %q\n  now:    %q", i+1, wl, gl)
		}
	}
}

// waitDelay is how long a Proc's output is followed after the process
// exits, for a child that still holds the pipe.
const waitDelay = 2 * time.Second

// What a syncBuffer keeps of a process's output, and how much the process
// may write before it is taken for a flood: the chapters' programs print a
// few kilobytes, and a program that prints in a loop would otherwise fill
// the test's memory (a grader's once grew to 24 GB).
const (
	keepHead   = 64 << 10
	keepTail   = 64 << 10
	floodLimit = 16 << 20
)

// syncBuffer holds what a process has written to its output pipe: the
// first keepHead bytes and the last keepTail, with a line in between that
// says how many were not kept. String first reads whatever is still in the
// pipe, under the same lock as the goroutine that follows it, so it returns
// everything the process had written when String was called. That makes it
// a point of order a test can rely on: once a client has the server's
// reply, the server's narration of the write that sent it is in the
// server's Output, however loaded the machine is. Without a pipe to follow,
// it is an io.Writer safe for concurrent use (a Machine's Command is given
// it as stdout and stderr).
type syncBuffer struct {
	mu    sync.Mutex
	head  []byte // the first keepHead bytes
	tail  []byte // what came after head; its last keepTail bytes are kept
	total int64  // bytes written in all
	pipe  syscall.RawConn

	// onFlood, if set, is called once (with mu held) when more than
	// floodLimit bytes have been written: it kills the writer.
	onFlood func()
	flooded bool
}

// follow copies r into b until end of file, in a goroutine; the channel it
// returns is closed when that goroutine ends.
func (b *syncBuffer) follow(r *os.File) (<-chan struct{}, error) {
	rc, err := r.SyscallConn()
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	b.pipe = rc
	b.mu.Unlock()
	done := make(chan struct{})
	go func() {
		defer close(done)
		// Read calls the function until it returns true, waiting for the
		// pipe to be readable whenever it returns false.
		rc.Read(func(fd uintptr) bool {
			b.mu.Lock()
			defer b.mu.Unlock()
			return b.readAvailable(int(fd))
		})
	}()
	return done, nil
}

// readAvailable appends what the pipe holds now, without blocking. It
// reports whether the pipe is finished: end of file, or an error.
func (b *syncBuffer) readAvailable(fd int) (finished bool) {
	var chunk [32 << 10]byte
	for {
		n, err := syscall.Read(fd, chunk[:])
		if n > 0 {
			b.add(chunk[:n])
			continue
		}
		return err != syscall.EAGAIN && err != syscall.EINTR
	}
}

// add keeps what it must of p; b.mu is held.
func (b *syncBuffer) add(p []byte) {
	b.total += int64(len(p))
	n := min(len(p), keepHead-len(b.head))
	b.head = append(b.head, p[:n]...)
	p = p[n:]
	if len(p) >= keepTail {
		b.tail = append(b.tail[:0], p[len(p)-keepTail:]...)
	} else {
		b.tail = append(b.tail, p...)
	}
	// Drop the part of tail that is no longer kept now and then, not on
	// every write.
	if len(b.tail) > 2*keepTail {
		b.tail = b.tail[:copy(b.tail, b.tail[len(b.tail)-keepTail:])]
	}
	if b.total > floodLimit && !b.flooded {
		b.flooded = true
		if b.onFlood != nil {
			b.onFlood()
		}
	}
}

// drain appends what is in the pipe now.
func (b *syncBuffer) drain() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pipe != nil {
		b.pipe.Control(func(fd uintptr) { b.readAvailable(int(fd)) })
	}
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.add(p)
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.drain()
	b.mu.Lock()
	defer b.mu.Unlock()
	tail := b.tail[max(0, len(b.tail)-keepTail):]
	if dropped := b.total - int64(len(b.head)+len(tail)); dropped > 0 {
		return fmt.Sprintf("%s\n… %d bytes not kept …\n%s", b.head, dropped, tail)
	}
	return string(b.head) + string(tail)
}

// isFlooded reports whether more than floodLimit bytes were written.
func (b *syncBuffer) isFlooded() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.flooded
}

// Context returns a context that ends with the test or after a generous
// limit, for in-process tests that run a program's run function.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	t.Cleanup(cancel)
	return ctx
}
