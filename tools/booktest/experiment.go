package booktest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// ExperimentRE matches a fence's info string that marks a command block as
// one of the chapter's experiments: "sh experiment=NAME". tools/book shows
// such a block as plain sh and rejects a name used twice in a chapter.
var ExperimentRE = regexp.MustCompile(`^sh\s+experiment=([A-Za-z0-9_-]+)$`)

// Experiment returns the text of the fenced code block in this chapter's
// Markdown whose info string is `sh experiment=NAME`: a command the chapter
// tells the reader to type, so that a test can run it as written. The test
// fails if there is no such block, or more than one.
//
// The chapter is chapters/NN-slug.md at the module's root, found from the
// test's working directory (code/NN-slug, or a directory below it such as
// grade/); a test run elsewhere finds it from BOOK_PROGRAM's path instead
// (a copy named NN-anything picks chapter NN).
func Experiment(t testing.TB, name string) string {
	t.Helper()
	file := chapterFile(t)
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := ParseExperiments(string(data))
	if err != nil {
		t.Fatalf("%s:%v", file, err)
	}
	for _, b := range blocks {
		if b.Name == name {
			return b.Text
		}
	}
	t.Fatalf("%s has no block marked ```sh experiment=%s", file, name)
	return ""
}

// An ExperimentBlock is one "sh experiment=NAME" block of a chapter.
type ExperimentBlock struct {
	Name string
	Line int    // the line of its opening fence, from 1
	Text string // its lines, each ending in a newline, indentation of the fence removed
}

// ParseExperiments returns the experiment blocks of a chapter's Markdown.
// Its error names the line ("12: ...") of a name used twice or of a block
// that is not closed.
func ParseExperiments(text string) ([]ExperimentBlock, error) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	var blocks []ExperimentBlock
	seen := map[string]int{}
	for i := 0; i < len(lines); i++ {
		fence, indent, info := openFence(lines[i])
		if fence == "" {
			continue
		}
		start := i
		var body strings.Builder
		closed := false
		for i++; i < len(lines); i++ {
			if closesFence(lines[i], fence) {
				closed = true
				break
			}
			line := lines[i]
			// Remove up to the fence's indentation, as CommonMark does.
			n := len(line) - len(strings.TrimLeft(line, " "))
			body.WriteString(line[min(n, indent):] + "\n")
		}
		m := ExperimentRE.FindStringSubmatch(info)
		if m == nil {
			continue
		}
		if !closed {
			return nil, fmt.Errorf("%d: the block sh experiment=%s is not closed", start+1, m[1])
		}
		if first, dup := seen[m[1]]; dup {
			return nil, fmt.Errorf("%d: experiment=%s is also the name of the block on line %d", start+1, m[1], first)
		}
		seen[m[1]] = start + 1
		blocks = append(blocks, ExperimentBlock{Name: m[1], Line: start + 1, Text: body.String()})
	}
	return blocks, nil
}

// openFence returns the fence a line opens (``` or ~~~, or longer), its
// indentation and its info string, or "" if it opens none.
func openFence(line string) (fence string, indent int, info string) {
	t := strings.TrimLeft(line, " ")
	indent = len(line) - len(t)
	for _, c := range []string{"`", "~"} {
		n := len(t) - len(strings.TrimLeft(t, c))
		if n >= 3 {
			info = strings.TrimSpace(t[n:])
			if c == "`" && strings.Contains(info, "`") {
				return "", 0, "" // not a fence (CommonMark)
			}
			return t[:n], indent, info
		}
	}
	return "", 0, ""
}

func closesFence(line, fence string) bool {
	t := strings.TrimSpace(line)
	return strings.HasPrefix(t, fence) && strings.Trim(t, fence[:1]) == ""
}

var chapterDirRE = regexp.MustCompile(`^(\d\d)-`)

// chapterFile finds the Markdown of the chapter under test.
func chapterFile(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root := moduleRoot(t, wd)
	for _, start := range []string{wd, os.Getenv("BOOK_PROGRAM")} {
		if start == "" {
			continue
		}
		abs, err := filepath.Abs(start)
		if err != nil {
			continue
		}
		for d := abs; filepath.Dir(d) != d; d = filepath.Dir(d) {
			m := chapterDirRE.FindStringSubmatch(filepath.Base(d))
			if m == nil {
				continue
			}
			// The chapter's own name first, then any chapter NN.
			if f := filepath.Join(root, "chapters", filepath.Base(d)+".md"); fileExists(f) {
				return f
			}
			if found, _ := filepath.Glob(filepath.Join(root, "chapters", m[1]+"-*.md")); len(found) == 1 {
				return found[0]
			}
		}
	}
	t.Fatalf("cannot tell which chapter %s belongs to: run the test from code/NN-slug", wd)
	return ""
}

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// ProgramEnv is the environment every program the tests start gets: the
// test's own, without GODEBUG, so that a developer's shell cannot change
// what the programs print. Each program sets what it needs with a
// //go:debug line in its main.go.
func ProgramEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GODEBUG=") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// Shell runs script with bash in a network namespace of its own, with only
// loopback, up: port 8080 is free there, so the chapter's commands run
// exactly as written (an experiment's `go run ./code/05-accept` and the
// `nc 127.0.0.1 8080` that talks to it). The script runs in the module's
// root, with ProgramEnv plus env; its stdin is empty. Shell returns
// stdout and stderr together, and the error of a script that exits with a
// status other than 0.
//
// When the script ends, whatever it left running in the background is
// killed; a script still running after a generous limit (2 minutes: its
// go run commands compile first, on a machine that may be busy) is killed
// and fails the test.
//
// As root the namespace is made with `unshare -n`; otherwise with
// `unshare -rn`, in a user namespace of its own, where the kernel allows
// that. If neither works the test is skipped.
func Shell(t testing.TB, script string, env ...string) (string, error) {
	t.Helper()
	unshare := netnsCommand(t)
	closeInheritedOnExec()
	out, err := os.CreateTemp(t.TempDir(), "shell-out")
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), shellLimit)
	defer cancel()
	args := append(unshare, "bash", "-c", "ip link set lo up || exit 125\n"+script)
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Dir = moduleRoot(t, wd)
	cmd.Env = ProgramEnv(env...)
	// A temporary file, not a pipe: a background process that outlives the
	// script cannot keep Wait waiting.
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err = cmd.Run()
	if cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // what the script left behind
	}
	text, rerr := os.ReadFile(out.Name())
	if rerr != nil {
		t.Fatal(rerr)
	}
	if ctx.Err() != nil {
		t.Fatalf("the script was still running after %v, so it was killed. Script:\n%s\nOutput:\n%s", shellLimit, script, text)
	}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() == 125 {
		t.Fatalf("ip link set lo up failed in the new network namespace:\n%s", text)
	}
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return string(text), err
}

// closeInheritedOnExec marks close-on-exec every descriptor above 2 that
// this test process has. Go opens its own that way; the others were handed
// down by whatever started go test, and would otherwise show up in the
// script's programs (in /proc/PID/fd, say) as descriptors the book never
// mentions.
func closeInheritedOnExec() {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return // not Linux: nothing to show the reader anyway
	}
	for _, e := range ents {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// PrivateTmp is the start of a bash script run in a new mount namespace,
// in the repository's root. It mounts an empty tmpfs on /tmp, so that a
// chapter's commands write /tmp/NAME as a reader's do without meeting the
// files of another test running at the same time; if that hid the working
// directory (a checkout under /tmp, as CI's may be), it binds the directory
// back at its own path. It exits 125 if it cannot.
const PrivateTmp = `root=$(pwd -P)
mount -t tmpfs booktest-tmp /tmp || exit 125
if [ ! -e "$root/go.mod" ]; then
	mkdir -p "$root" && mount --no-canonicalize --bind . "$root" || exit 125
fi
cd "$root" || exit 125
`

// shellLimit bounds a Shell script.
const shellLimit = 2 * time.Minute

// netnsCommand is the command that runs another in a new network
// namespace on this machine, or skips the test.
func netnsCommand(t testing.TB) []string {
	t.Helper()
	for _, tool := range []string{"unshare", "ip", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s (util-linux, iproute2, bash) to run the chapter's commands in a network namespace", tool)
		}
	}
	// A PID namespace too, with its own /proc: the chapters' pkill and
	// pgrep must find this script's programs only, not those of another
	// test running at the same time.
	cmd := []string{"unshare", "-n", "-m", "-p", "-f", "--kill-child", "--mount-proc"}
	if os.Geteuid() != 0 {
		cmd = append([]string{"unshare", "-r"}, cmd[1:]...)
	}
	probe := exec.Command(cmd[0], append(cmd[1:], "ip", "link", "set", "lo", "up")...)
	probe.WaitDelay = time.Second
	if out, err := probe.CombinedOutput(); err != nil {
		t.Skipf("cannot make a network namespace (%s: %v: %s): run as root, or where user namespaces are allowed",
			strings.Join(cmd, " "), err, cmp.Or(strings.TrimSpace(string(out)), "no output"))
	}
	return cmd
}
