package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
)

// A sandbox contains a grading run: the test binary of the graders, the
// go build of the submission it makes, and the submission's programs with
// all they start. Where it can, each run has namespaces of its own
// (unshare, from util-linux):
//
//   - a PID namespace, with its own /proc, whose first process is the run's
//     test2json: when it ends, or the grader kills it at the run's time
//     limit, the kernel kills everything else in it, including what a
//     submission detached with setsid or a double fork;
//   - a network namespace whose only link is loopback: a submission
//     reaches no other machine, and students graded at the same time
//     cannot meet on each other's ports (a program that ignores -addr and
//     binds 8080 would otherwise fail or pass by the luck of timing). It
//     costs a few milliseconds. Chapter 3's exercise 3 then finds no
//     link-local address outside lo, and tries [fe80::1%lo] only, as on
//     any machine with none.
//
// A user who is not root gets a user namespace too (--map-root-user),
// which the others need. Where namespaces are not allowed, a run is a
// process group, killed whole at its limit: a process a submission
// detaches may then outlive it, and the report says so once.
//
// Each program the graders start also runs in a process group of its own
// with limits on its memory, CPU time and file size (tools/booktest).
type sandbox struct {
	prefix []string // the command a run is given to; none: a process group only
	note   string   // what the sandbox lacks, for the report
}

var (
	probed     sync.Once
	theSandbox sandbox
)

// sandboxFor is the best sandbox this machine allows, found once.
func sandboxFor() sandbox {
	probed.Do(func() { theSandbox = probeSandbox() })
	return theSandbox
}

func probeSandbox() sandbox {
	base := []string{"unshare"}
	if os.Geteuid() != 0 {
		base = append(base, "--map-root-user")
	}
	base = append(base, "--pid", "--fork", "--kill-child", "--mount-proc")
	// sh brings loopback up, then becomes the command.
	withNet := append(slices.Clone(base), "--net", "--", "sh", "-c", `ip link set lo up && exec "$0" "$@"`)
	pidOnly := append(slices.Clone(base), "--")
	var failed []string
	for _, prefix := range [][]string{withNet, pidOnly} {
		out, err := exec.Command(prefix[0], append(prefix[1:], "true")...).CombinedOutput()
		if err == nil {
			box := sandbox{prefix: prefix}
			if len(failed) > 0 {
				box.note = "no network namespace (" + failed[0] + "): the submissions graded at once share loopback"
			}
			return box
		}
		failed = append(failed, fmt.Sprintf("%s: %v %s", strings.Join(prefix, " "), err, strings.TrimSpace(string(out))))
	}
	return sandbox{note: "no PID namespace (" + failed[len(failed)-1] + "): each grading run is a process group, and a process a submission detaches (setsid) may outlive it"}
}

// command is exec.CommandContext for a command run in the sandbox. When
// ctx ends, the run's process group is killed; and should the grader die,
// so does the run (with namespaces, unshare's --kill-child takes the whole
// namespace with it).
func (b sandbox) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	argv := append(append(slices.Clone(b.prefix), name), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = runAttr()
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	return cmd
}
