package booktest

import (
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// CheckFDs fails the test if, when it ends, this process has a file
// descriptor open that it did not have when CheckFDs was called. Call it at
// the top of a test that runs a program's code in-process.
func CheckFDs(t testing.TB) {
	t.Helper()
	warmUp.Do(startPoller)
	before := OpenFDs(t)
	t.Cleanup(func() {
		after := OpenFDs(t)
		var leaked []string
		for fd, target := range after {
			if _, ok := before[fd]; !ok {
				leaked = append(leaked, fd+" -> "+target)
			}
		}
		sort.Strings(leaked)
		if len(leaked) > 0 {
			t.Errorf("leaked file descriptors: %s", strings.Join(leaked, ", "))
		}
	})
}

var warmUp sync.Once

// startPoller makes Go's runtime create its network poller (an epoll
// descriptor and an eventfd, kept for the life of the process) before the
// first snapshot, so they are not taken for a test's leak.
func startPoller() {
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
}

// OpenFDs lists /proc/self/fd: each open descriptor and what it refers to
// (a file's path, "socket:[INODE]", "pipe:[INODE]", ...).
func OpenFDs(t testing.TB) map[string]string {
	t.Helper()
	f, err := os.Open("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd on this system (%v): descriptor leaks are checked on Linux only", err)
	}
	names, err := f.Readdirnames(-1)
	// Readdirnames used a descriptor of its own; close it before reading the links.
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	fds := map[string]string{}
	for _, n := range names {
		target, err := os.Readlink("/proc/self/fd/" + n)
		if err != nil {
			continue // the directory's own descriptor, closed by now
		}
		fds[n] = target
	}
	return fds
}

// markCloseOnExec sets FD_CLOEXEC on every descriptor above stderr, so that
// processes the test starts get only stdin, stdout and stderr.
func markCloseOnExec(t testing.TB) {
	t.Helper()
	for fd := range OpenFDs(t) {
		if n, err := strconv.Atoi(fd); err == nil && n > 2 {
			syscall.CloseOnExec(n)
		}
	}
}
