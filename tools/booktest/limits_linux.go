package booktest

import (
	"fmt"
	"syscall"

	"golang.org/x/sys/unix"
)

// procAttr puts a program in a process group of its own, which killGroup
// ends with everything in it, and has the kernel kill it should the test
// process die first (killed at its time-out, say), so that it never
// outlives its test. The kernel sends that signal when the thread that
// started the program ends; Go ends a thread only when a goroutine locked
// to it (runtime.LockOSThread) exits without unlocking, which the book's
// tests do on no path that goes on to run programs.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// The limits of a program under test, and of what it starts: generous for
// the chapters' programs (a few megabytes, milliseconds of CPU), so that
// only a runaway one reaches them, which then fails its test instead of
// starving the machine. A Go program that cannot allocate dies with "fatal
// error: runtime: out of memory"; one past its CPU time is killed.
// RLIMIT_NPROC is left alone: it counts every process of the user (root is
// not bound by it at all), not those of one program.
var limits = []struct {
	resource int
	name     string
	value    uint64
}{
	{unix.RLIMIT_DATA, "RLIMIT_DATA", 512 << 20},  // heap and other private memory
	{unix.RLIMIT_CPU, "RLIMIT_CPU", 60},           // seconds of CPU
	{unix.RLIMIT_FSIZE, "RLIMIT_FSIZE", 64 << 20}, // the largest file it may write
	{unix.RLIMIT_CORE, "RLIMIT_CORE", 0},          // no core dumps
}

// limit sets the limits on the process pid, just started.
func limit(pid int) error {
	for _, l := range limits {
		rl := unix.Rlimit{Cur: l.value, Max: l.value}
		if err := unix.Prlimit(pid, l.resource, &rl, nil); err != nil && err != unix.ESRCH {
			return fmt.Errorf("prlimit %s: %w", l.name, err)
		}
	}
	return nil
}
