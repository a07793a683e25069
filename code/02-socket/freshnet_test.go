//go:build linux

package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// The chapter's "see it yourself" commands name port 8080 and files in /tmp,
// as a reader types them. To run them exactly as written, a test gives them
// a machine of their own: a fresh network namespace (only loopback, where
// 8080 is free) and a mount namespace with an empty tmpfs on /tmp. A holder
// process keeps the namespaces alive; each command runs in them with nsenter,
// from the repository's root, under bash. It needs root, unshare and nsenter
// (util-linux) and ip (iproute2); without them the test is skipped.
type freshNet struct {
	t      *testing.T
	holder *exec.Cmd
	root   string // the repository's root, where go build ./code/... works
}

func newFreshNet(t *testing.T) *freshNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: runs the chapter's commands in namespaces of their own")
	}
	for _, tool := range []string{"unshare", "nsenter", "ip", "bash"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s", tool)
		}
	}
	// Descriptors this test inherited without close-on-exec would reach the
	// commands and change the numbers they show.
	if ents, err := os.ReadDir("/proc/self/fd"); err == nil {
		for _, e := range ents {
			if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
				syscall.CloseOnExec(fd)
			}
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	n := &freshNet{t: t, root: root}
	n.holder = exec.Command("unshare", "--net", "--mount", "--propagation", "private",
		"bash", "-c", booktest.PrivateTmp+"ip link set lo up && echo ready && exec sleep 3600")
	n.holder.Dir = root
	// Should the test die, the namespaces go with it.
	n.holder.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := n.holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.holder.Stderr = os.Stderr
	if err := n.holder.Start(); err != nil {
		t.Skipf("unshare: %v", err)
	}
	t.Cleanup(func() { n.holder.Process.Kill(); n.holder.Wait() })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if line != "ready\n" {
		t.Skipf("could not make the namespaces: %q %v", line, err)
	}
	return n
}

// A command is one shell command running in the namespaces, in a process
// group of its own, as a terminal's foreground job is.
type command struct {
	t    *testing.T
	text string
	cmd  *exec.Cmd
	out  *buffer
	done chan struct{}
}

func (n *freshNet) start(text string) *command {
	n.t.Helper()
	c := &command{t: n.t, text: text, out: &buffer{}, done: make(chan struct{})}
	c.cmd = exec.Command("nsenter", "-t", strconv.Itoa(n.holder.Process.Pid), "-n", "-m", "--wd="+n.root,
		"bash", "-c", text)
	c.cmd.Dir = n.root
	c.cmd.Env = booktest.ProgramEnv() // no GODEBUG: the //go:debug lines decide
	c.cmd.Stdout, c.cmd.Stderr = c.out, c.out
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A pipe that is never written: a command that reads its input (cat)
	// waits, as on a terminal where nothing is typed.
	stdin, err := c.cmd.StdinPipe()
	if err != nil {
		n.t.Fatal(err)
	}
	if err := c.cmd.Start(); err != nil {
		n.t.Fatalf("%s: %v", text, err)
	}
	go func() { c.cmd.Wait(); close(c.done) }()
	n.t.Cleanup(func() {
		syscall.Kill(-c.cmd.Process.Pid, syscall.SIGKILL)
		stdin.Close()
		<-c.done
	})
	return c
}

// run runs a command to its end and returns what it printed.
func (n *freshNet) run(text string) string {
	n.t.Helper()
	out, code := n.runCode(text)
	if code != 0 {
		n.t.Fatalf("%s: exit status %d; output:\n%s", text, code, out)
	}
	return out
}

// runCode runs a command to its end and returns what it printed and its
// exit status.
func (n *freshNet) runCode(text string) (string, int) {
	n.t.Helper()
	c := n.start(text)
	c.wait()
	return c.out.String(), c.exitCode()
}

// interrupt is Ctrl-C: SIGINT to the command's whole process group.
func (c *command) interrupt() {
	syscall.Kill(-c.cmd.Process.Pid, syscall.SIGINT)
}

// wait waits (boundedly) for the command to end.
func (c *command) wait() {
	c.t.Helper()
	select {
	case <-c.done:
	case <-time.After(2 * time.Minute):
		c.t.Fatalf("%s did not end; output:\n%s", c.text, c.out)
	}
}

func (c *command) exitCode() int { return c.cmd.ProcessState.ExitCode() }

// waitFor waits until the command has printed text.
func (c *command) waitFor(text string) {
	c.t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if strings.Contains(c.out.String(), text) {
			return
		}
	}
	c.t.Fatalf("%s did not print %q; output:\n%s", c.text, text, c.out)
}

// buffer collects what a command prints while the test reads it.
type buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
