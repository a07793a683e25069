package booktest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRenumberPorts(t *testing.T) {
	s := &Session{servers: []string{"39211"}}
	s.Renumber(`(?:127\.0\.0\.1|\[::1\]):(\d+)`, 40001)
	got := s.rules[0]("listening on 127.0.0.1:39211\n" +
		"accepted 127.0.0.1:51000\n" +
		"accepted [::1]:51002 then 127.0.0.1:51000 again\n" +
		"port 51000 alone is not an address\n")
	want := "listening on 127.0.0.1:8080\n" +
		"accepted 127.0.0.1:40001\n" +
		"accepted [::1]:40002 then 127.0.0.1:40001 again\n" +
		"port 51000 alone is not an address\n"
	if got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}

// A server started with an automatic -addr 127.0.0.1:0 may print that
// address; the reader ran it without -addr and sees the default port.
func TestRenumberAutoAddr(t *testing.T) {
	s := &Session{servers: []string{"39211"}, autoAddr: true}
	s.Renumber(`127\.0\.0\.1:(\d+)`, 40001)
	got := s.rules[0]("bind 127.0.0.1:0\nlistening on 127.0.0.1:39211\nfrom 127.0.0.1:51000\n")
	if want := "bind 127.0.0.1:8080\nlistening on 127.0.0.1:8080\nfrom 127.0.0.1:40001\n"; got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
	s.autoAddr = false
	if got := s.rules[0]("bind 127.0.0.1:0\n"); got != "bind 127.0.0.1:0\n" {
		t.Errorf("an explicit port 0 was renumbered: %q", got)
	}
}

func TestReplace(t *testing.T) {
	s := &Session{}
	s.Replace(`pid \d+`, "pid 4242")
	if got := s.rules[0]("my pid 1234567\n"); got != "my pid 4242\n" {
		t.Errorf("got %q", got)
	}
}

func TestShellJoin(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"./code/01-x", "-client"}, "./code/01-x -client"},
		{[]string{"-msg", "hello, world"}, "-msg 'hello, world'"},
		{[]string{"-msg", "it's"}, `-msg 'it'\''s'`},
		{[]string{"-msg", ""}, "-msg ''"},
	} {
		if got := shellJoin(tt.args); got != tt.want {
			t.Errorf("shellJoin(%q) = %s, want %s", tt.args, got, tt.want)
		}
	}
}

func TestFirstDifference(t *testing.T) {
	for _, tt := range []struct{ want, got, diff string }{
		{"a\nb\n", "a\nb\n", ""},
		{"a\nb\n", "a\nc\n", "line 2:\n  stored: \"b\"\n  now:    \"c\""},
		{"a\n", "a\nb\n", "line 2:\n  stored: \"\"\n  now:    \"b\""},
	} {
		if d := FirstDifference(tt.want, tt.got); d != tt.diff {
			t.Errorf("FirstDifference(%q, %q) = %q, want %q", tt.want, tt.got, d, tt.diff)
		}
	}
}

func TestHasFlag(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want bool
	}{
		{[]string{"-addr", "x"}, true},
		{[]string{"--addr=x"}, true},
		{[]string{"-address"}, false},
		{[]string{"-msg", "addr"}, false},
		{nil, false},
	} {
		if got := hasFlag(tt.args, "addr"); got != tt.want {
			t.Errorf("hasFlag(%q) = %v", tt.args, got)
		}
	}
}

const chapterText = "---\ntitle: T\n---\n\nRun this:\n\n" +
	"```sh experiment=strace\nstrace -f go run ./code/05-x\n```\n\n" +
	"```sh\nnot an experiment\n```\n\n" +
	"1. In a list:\n\n   ```sh experiment=ss\n   ss -tln\n     indented more\n   ```\n\n" +
	"````markdown\n```sh experiment=inside\nshown, not run\n```\n````\n"

func TestParseExperiments(t *testing.T) {
	blocks, err := ParseExperiments(chapterText)
	if err != nil {
		t.Fatal(err)
	}
	want := []ExperimentBlock{
		{Name: "strace", Line: 7, Text: "strace -f go run ./code/05-x\n"},
		{Name: "ss", Line: 17, Text: "ss -tln\n  indented more\n"},
	}
	if len(blocks) != len(want) {
		t.Fatalf("got %+v, want %+v", blocks, want)
	}
	for i := range want {
		if blocks[i] != want[i] {
			t.Errorf("block %d = %+v, want %+v", i, blocks[i], want[i])
		}
	}
	_, err = ParseExperiments("```sh experiment=a\nx\n```\n\n```sh experiment=a\ny\n```\n")
	if err == nil || err.Error() != "5: experiment=a is also the name of the block on line 1" {
		t.Errorf("a repeated name: err = %v", err)
	}
	if _, err := ParseExperiments("```sh experiment=a\nx\n"); err == nil {
		t.Error("an unclosed block: no error")
	}
}

// fatalT records a test's Fatal instead of failing this one.
type fatalT struct {
	testing.TB
	msg string
}

func (f *fatalT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (f *fatalT) Fatal(args ...any) { f.Fatalf("%s", fmt.Sprint(args...)) }

// fatalOf runs f with a fatalT and returns its Fatal message, or "".
func fatalOf(t *testing.T, f func(testing.TB)) string {
	ft := &fatalT{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(ft)
	}()
	<-done
	return ft.msg
}

// A module laid out like the book's, with a chapter 05-x: Experiment finds
// the chapter from code/05-x, from code/05-x/grade, and from BOOK_PROGRAM.
func TestExperiment(t *testing.T) {
	root := t.TempDir()
	for name, text := range map[string]string{
		"go.mod":                  "module example\n",
		"chapters/05-x.md":        chapterText,
		"chapters/06-y.md":        "```sh experiment=a\n1\n```\n```sh experiment=a\n2\n```\n",
		"code/05-x/grade/x.go":    "package grade\n",
		"code/06-y/main.go":       "package main\n",
		"elsewhere/05-mine/x.txt": "",
	} {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("BOOK_PROGRAM", "")
	t.Chdir(filepath.Join(root, "code", "05-x"))
	if got := Experiment(t, "strace"); got != "strace -f go run ./code/05-x\n" {
		t.Errorf("Experiment(strace) = %q", got)
	}
	if msg := fatalOf(t, func(tb testing.TB) { Experiment(tb, "inside") }); !strings.Contains(msg, "has no block marked ```sh experiment=inside") {
		t.Errorf("a block inside another fence was found (fatal: %q)", msg)
	}
	t.Chdir(filepath.Join(root, "code", "05-x", "grade"))
	if got := Experiment(t, "ss"); got != "ss -tln\n  indented more\n" {
		t.Errorf("from grade/: Experiment(ss) = %q", got)
	}
	t.Chdir(filepath.Join(root, "elsewhere"))
	t.Setenv("BOOK_PROGRAM", filepath.Join(root, "elsewhere", "05-mine"))
	if got := Experiment(t, "ss"); got != "ss -tln\n  indented more\n" {
		t.Errorf("from BOOK_PROGRAM: Experiment(ss) = %q", got)
	}
	t.Chdir(filepath.Join(root, "code", "06-y"))
	if msg := fatalOf(t, func(tb testing.TB) { Experiment(tb, "a") }); !strings.Contains(msg, "06-y.md:4: experiment=a is also the name of the block on line 1") {
		t.Errorf("a repeated name: fatal %q", msg)
	}
}

func TestProgramEnvDropsGODEBUG(t *testing.T) {
	t.Setenv("GODEBUG", "containermaxprocs=1")
	for _, kv := range ProgramEnv("X=1") {
		if strings.HasPrefix(kv, "GODEBUG=") {
			t.Errorf("ProgramEnv keeps %s", kv)
		}
	}
	if env := ProgramEnv("X=1"); env[len(env)-1] != "X=1" {
		t.Errorf("ProgramEnv(X=1) ends with %q", env[len(env)-1])
	}
}

// Shell runs a script in a network namespace of its own, whose only link
// is loopback, without GODEBUG, and returns when the script ends even if
// it left a job in the background.
func TestShell(t *testing.T) {
	out, err := Shell(t, `
ip -o link show | grep -c ': '
sleep 600 &
echo "GODEBUG=${GODEBUG-unset}"
exit 3`, "EXTRA=1")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 3 {
		t.Errorf("err = %v, want exit status 3", err)
	}
	if !strings.HasPrefix(out, "1\n") || !strings.Contains(out, "GODEBUG=unset\n") {
		t.Errorf("want one link (lo) and no GODEBUG; got:\n%s", out)
	}
}

// program writes a program of one main.go in a directory outside the
// module and makes it the program under test (BOOK_PROGRAM), as a class
// submission is.
func program(t *testing.T, code string) {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BOOK_PROGRAM", dir)
}

// A buffer keeps the head and the tail of what is written to it, and says
// how much it dropped in between.
func TestSyncBufferKeepsHeadAndTail(t *testing.T) {
	var b syncBuffer
	line := strings.Repeat("x", 99) + "\n"
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&b, "%05d%s", i, line)
	}
	got := b.String()
	if !strings.HasPrefix(got, "00000xxx") || !strings.HasSuffix(got, "09999"+line) {
		t.Errorf("the head or the tail is missing: %q … %q", got[:10], got[len(got)-10:])
	}
	const written = 10000 * 105
	if want := fmt.Sprintf("\n… %d bytes not kept …\n", written-keepHead-keepTail); !strings.Contains(got, want) {
		t.Errorf("no line %q in what the buffer kept", want)
	}
	if len(got) > keepHead+keepTail+100 {
		t.Errorf("the buffer kept %d bytes of %d, want at most %d and a line", len(got), written, keepHead+keepTail)
	}
}

// A program that writes far more than any chapter's is killed and fails
// its test, and what is kept of its output is bounded.
func TestFloodIsKilled(t *testing.T) {
	program(t, `package main

import (
	"bytes"
	"os"
)

func main() {
	b := bytes.Repeat([]byte("flood\n"), 1<<20/6)
	for range 64 {
		os.Stdout.Write(b)
	}
}
`)
	var p *Proc
	msg := fatalOf(t, func(tb testing.TB) {
		p = New(tb).Spawn("flood")
		p.Wait()
	})
	if !strings.Contains(msg, "flooded its output: it printed more than 16 MiB, so it was killed") {
		t.Errorf("a program that wrote 64 MiB did not fail its test for flooding; the failure: %.300q", msg)
	}
	if n := len(p.Output()); n > keepHead+keepTail+100 {
		t.Errorf("%d bytes of its output were kept, want at most %d", n, keepHead+keepTail+100)
	}
}

// sleepers lists the processes whose command line is "sleep ARG".
func sleepers(arg string) []string {
	procs, _ := os.ReadDir("/proc")
	var found []string
	for _, e := range procs {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && string(cmdline) == "sleep\x00"+arg+"\x00" {
			found = append(found, e.Name())
		}
	}
	return found
}

// What a program starts in its process group ends when the program does,
// and when the test ends a program it left running.
func TestProgramsChildrenEndWithIt(t *testing.T) {
	arg := fmt.Sprintf("%d.%d", 600+os.Getpid()%100, time.Now().UnixNano()%1e6) // a duration no one else sleeps
	program(t, `package main

import (
	"fmt"
	"os"
	"os/exec"
	"time"
)

func main() {
	if err := exec.Command("sleep", "`+arg+`").Start(); err != nil {
		panic(err)
	}
	fmt.Println("started sleep")
	if len(os.Args) > 1 {
		time.Sleep(time.Hour)
	}
}
`)
	t.Cleanup(func() {
		for _, pid := range sleepers(arg) {
			n, _ := strconv.Atoi(pid)
			syscall.Kill(n, syscall.SIGKILL)
		}
	})
	gone := func(when string) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for len(sleepers(arg)) > 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if left := sleepers(arg); len(left) > 0 {
			t.Errorf("%s, its child sleep %s is still running (pid %s)", when, arg, strings.Join(left, ", "))
		}
	}
	t.Run("exits", func(t *testing.T) {
		New(t).Run("prog")
		gone("after the program exited")
	})
	t.Run("still running", func(t *testing.T) {
		New(t).Spawn("prog", "-stay").WaitFor("started sleep")
	})
	gone("after the test that left the program running")
}

// A program runs with limits: 4 GiB is more memory than it may have, and
// it dies trying. It asks in 64 MiB pieces: Linux (6.18 here) lets one
// mapping over address space Go has already reserved grow past
// RLIMIT_DATA, and refuses only the next new mapping, so a single 1 GiB
// slice sometimes got through and the program printed it. Asked piece by
// piece, the runtime soon needs a new mapping for its own bookkeeping and
// is refused. The pages are never touched, so were the limit not there,
// the machine would lend address space, not memory.
func TestProgramLimits(t *testing.T) {
	program(t, `package main

import (
	"fmt"
	"os"
	"strings"
)

func main() {
	limits, _ := os.ReadFile("/proc/self/limits")
	for _, line := range strings.Split(string(limits), "\n") {
		if strings.HasPrefix(line, "Max data size") || strings.HasPrefix(line, "Max cpu time") {
			fmt.Println(strings.Join(strings.Fields(line), " "))
		}
	}
	var pieces [][]byte
	for range 64 {
		pieces = append(pieces, make([]byte, 64<<20))
	}
	fmt.Println("allocated", len(pieces)<<26)
}
`)
	p := New(t).Run("prog")
	out := p.Output()
	for _, want := range []string{"Max data size 536870912 536870912 bytes", "Max cpu time 60 60 seconds"} {
		if !strings.Contains(out, want) {
			t.Errorf("the program's output has no %q:\n%.2000s", want, out)
		}
	}
	// Go's runtime says "out of memory", or crashes in the collector.
	if strings.Contains(out, "allocated") || p.ExitCode() == 0 {
		t.Errorf("the program allocated 4 GiB (exit status %d):\n%.3000s", p.ExitCode(), out)
	}
}
