package booktest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
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
