//go:build linux

package booktest

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A Machine is a machine of the test's own on which to run a chapter's "see
// it yourself" commands exactly as a reader types them, one after another,
// some left running while others look at them (a server, then ss and ls
// /proc/PID/fd). It is a fresh network namespace, where loopback is the only
// link and port 8080 is free, and a mount namespace with an empty tmpfs on
// /tmp (see PrivateTmp), so /tmp/ch1 is free too; what one command writes
// there the next one sees. A holder process keeps the namespaces alive until
// the test ends (and a PID namespace with its own /proc, so pgrep and pkill
// find only its programs); each command enters them with nsenter and runs under bash,
// from the repository's root, with ProgramEnv, in a process group of its own
// as a terminal's foreground job is.
//
// It needs root, unshare and nsenter (util-linux), ip (iproute2) and bash;
// without them the test is skipped. For one script that needs no process
// left running while the test looks, Shell is simpler.
type Machine struct {
	t      testing.TB
	holder *exec.Cmd
	root   string // the repository's root, where go build ./code/... works
}

// A Command is one shell command running on a Machine. Its output is its
// stdout and stderr together.
type Command struct {
	t    testing.TB
	text string
	cmd  *exec.Cmd
	out  syncBuffer
	done chan struct{}
}

// How long a Machine waits for a command to end (its go build or go run
// compiles first, on a machine that may be busy), and for output or a
// state to appear.
const (
	machineRunLimit  = 2 * time.Minute
	machineWaitLimit = 30 * time.Second
)

// NewMachine makes a Machine for the test; it goes away when the test ends,
// and so does every command still running on it.
func NewMachine(t testing.TB) *Machine {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs the chapter's commands in namespaces of their own")
	}
	for _, tool := range []string{"unshare", "nsenter", "ip", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	closeInheritedOnExec()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	m := &Machine{t: t, root: moduleRoot(t, wd)}
	// A PID namespace with its own /proc as well, so that the chapters'
	// pgrep and pkill see this machine's programs only. unshare forks: its
	// child is the namespace's first process, and commands join the
	// namespace through unshare's pid_for_children.
	m.holder = exec.Command("unshare", "--net", "--mount", "--propagation", "private",
		"--pid", "--fork", "--kill-child", "--mount-proc",
		"bash", "-c", PrivateTmp+"ip link set lo up && echo ready && exec sleep 3600")
	m.holder.Dir = m.root
	// Should the test die, the namespaces go with it.
	m.holder.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := m.holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	m.holder.Stderr = os.Stderr
	if err := m.holder.Start(); err != nil {
		t.Skipf("unshare: %v", err)
	}
	t.Cleanup(func() { m.holder.Process.Kill(); m.holder.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		t.Skipf("could not make the namespaces: %q %v", line, err)
	}
	return m
}

// Start starts a shell command on the machine and returns at once, as a
// reader does who leaves a server running in one terminal and goes on in
// another. Its stdin is a pipe that is never written: a command that reads
// its input (cat, nc) waits, as on a terminal where nothing is typed. If the
// command is still running when the test ends, its process group is killed.
func (m *Machine) Start(text string) *Command {
	m.t.Helper()
	c := &Command{t: m.t, text: text, done: make(chan struct{})}
	holder := fmt.Sprint(m.holder.Process.Pid)
	c.cmd = exec.Command("nsenter", "-t", holder, "-n", "-m", "--pid=/proc/"+holder+"/ns/pid_for_children",
		"--wd="+m.root, "bash", "-c", text)
	c.cmd.Dir = m.root
	c.cmd.Env = ProgramEnv() // no GODEBUG: the //go:debug lines decide
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := c.cmd.StdinPipe()
	if err != nil {
		m.t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		m.t.Fatalf("%s: %v", text, err)
	}
	go func() { c.cmd.Wait(); close(c.done) }()
	m.t.Cleanup(func() {
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		stdin.Close()
		<-c.done
	})
	return c
}

// Run runs a shell command on the machine to its end and returns what it
// printed. A command that exits with a status other than 0 fails the test.
func (m *Machine) Run(text string) string {
	m.t.Helper()
	out, code := m.RunCode(text)
	if code != 0 {
		m.t.Fatalf("%s: exit status %d; output:\n%s", text, code, out)
	}
	return out
}

// RunCode runs a shell command on the machine to its end and returns what
// it printed and its exit status, for a command expected to fail (a grep
// that finds nothing exits 1).
func (m *Machine) RunCode(text string) (string, int) {
	m.t.Helper()
	c := m.Start(text)
	c.Wait()
	return c.Output(), c.ExitCode()
}

// RunUntil runs a shell command again and again (with Run) until its output
// matches re, and returns that output: for a state the kernel reaches a
// little after the command that causes it, such as a connection that ss
// shows once the client has made it.
func (m *Machine) RunUntil(text string, re *regexp.Regexp) string {
	m.t.Helper()
	var out string
	for deadline := time.Now().Add(machineWaitLimit); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if out = m.Run(text); re.MatchString(out) {
			return out
		}
	}
	m.t.Fatalf("%s never printed a match for %s; last output:\n%s", text, re, out)
	return ""
}

// Interrupt is Ctrl-C: it sends SIGINT to the command's whole process
// group (bash and all it started, strace and the program it traces) and
// returns at once; Wait for the command to end. nsenter, which leads the
// group only to carry the command into the namespaces, is left out: it
// waits for bash and exits as bash does, which is what a terminal shows.
func (c *Command) Interrupt() {
	leader := c.cmd.Process.Pid
	procs, err := os.ReadDir("/proc")
	if err != nil {
		c.t.Fatal(err)
	}
	for _, e := range procs {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == leader {
			continue
		}
		if pgid, err := syscall.Getpgid(pid); err == nil && pgid == leader {
			syscall.Kill(pid, syscall.SIGINT)
		}
	}
}

// Wait waits for the command to end. One still running after a generous
// limit fails the test.
func (c *Command) Wait() {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(machineRunLimit):
		c.t.Fatalf("%s did not end; output:\n%s", c.text, c.Output())
	}
}

// WaitFor waits until the command has printed text.
func (c *Command) WaitFor(text string) {
	c.t.Helper()
	for deadline := time.Now().Add(machineWaitLimit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(c.Output(), text) {
			return
		}
	}
	c.t.Fatalf("%s did not print %q; output:\n%s", c.text, text, c.Output())
}

// Output is what the command has printed so far.
func (c *Command) Output() string { return c.out.String() }

// ExitCode is the command's exit status, once Wait has returned: -1 if a
// signal killed it.
func (c *Command) ExitCode() int { return c.cmd.ProcessState.ExitCode() }
