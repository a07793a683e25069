//go:build linux

// The exercises' additions that are not about making sockets: a child that
// lists what it inherited (exercise 2), running out of descriptors (exercise
// 3), and more descriptors for one socket (exercise 4).

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// runLS runs ls -l /proc/self/fd in a child process, which lists the child's
// own descriptor table: what it inherited from this process through exec.
// Its standard input, output and error are this process's own, passed as
// they are. Left nil, they would make os/exec open /dev/null, and opening a
// file starts the Go runtime's poller, whose two descriptors (an epoll and an
// eventfd) would then stay open here and shift every number after them.
func runLS(w io.Writer) error {
	fmt.Fprintln(w, "$ ls -l /proc/self/fd")
	cmd := exec.Command("ls", "-l", "/proc/self/fd")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, w, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ls -l /proc/self/fd: %w", err)
	}
	fmt.Fprintln(w)
	return nil
}

// hitLimit is exercise 3: it lowers the soft RLIMIT_NOFILE to limit, then
// creates sockets until the kernel refuses one, and closes them all. Only
// the soft limit changes, and it binds root too.
func hitLimit(n narrator, w io.Writer, limit int) (err error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return os.NewSyscallError("getrlimit RLIMIT_NOFILE", err)
	}
	lim.Cur = uint64(limit)
	err = unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	n.call(fmt.Sprintf("setrlimit(RLIMIT_NOFILE, {rlim_cur=%d, rlim_max=%d})", lim.Cur, lim.Max), "0", err)
	if err != nil {
		return os.NewSyscallError(fmt.Sprintf("setrlimit RLIMIT_NOFILE %d", limit), err)
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			err = errors.Join(err, closeFD(n, fd))
		}
	}()
	for {
		fd, err := newSocket(n, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		var errno unix.Errno
		if errors.As(err, &errno) {
			// The expected end, not a failure: say how far it got.
			last := "none"
			if len(fds) > 0 {
				last = strconv.Itoa(fds[len(fds)-1])
			}
			fmt.Fprintf(w, "limit %d: last socket %s, then %s\n", limit, last, errnoText(errno))
			return nil
		} else if err != nil {
			return err
		}
		fds = append(fds, fd)
	}
}

// dupTwice is exercise 4: two more descriptors for the socket fd. dup copies
// the table entry but not its close-on-exec flag, which belongs to the entry;
// F_DUPFD_CLOEXEC sets it on the copy in the same call. A copy that failed is
// -1, which the caller's cleanup skips.
func dupTwice(n narrator, fd int) (dup, dupCloexec int, err error) {
	dup, err = unix.Dup(fd)
	n.call(fmt.Sprintf("dup(%d)", fd), strconv.Itoa(dup), err)
	if err != nil {
		return -1, -1, os.NewSyscallError(fmt.Sprintf("dup %d", fd), err)
	}
	dupCloexec, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	n.call(fmt.Sprintf("fcntl(%d, F_DUPFD_CLOEXEC, 0)", fd), strconv.Itoa(dupCloexec), err)
	if err != nil {
		return dup, -1, os.NewSyscallError(fmt.Sprintf("fcntl %d F_DUPFD_CLOEXEC", fd), err)
	}
	for _, d := range []int{dup, dupCloexec} {
		if _, err := getFD(n, d); err != nil {
			return dup, dupCloexec, err
		}
	}
	return dup, dupCloexec, nil
}

// errnoText shows an errno as strace does: "EMFILE (Too many open files)".
func errnoText(errno unix.Errno) string {
	msg := errno.Error()
	return fmt.Sprintf("%s (%s%s)", unix.ErrnoName(errno), strings.ToUpper(msg[:1]), msg[1:])
}
