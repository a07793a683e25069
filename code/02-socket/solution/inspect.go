//go:build linux

// What the kernel says about a socket, and what /proc/self/fd shows: the
// questions this chapter's program asks about the sockets it made.

package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// region inspect
// inspect asks the kernel what fd is, and returns the answers as a table row.
func inspect(n narrator, fd int) (string, error) {
	row := []string{strconv.Itoa(fd)}
	for _, o := range []struct {
		opt  int
		name string
		show func(int) string
	}{
		{unix.SO_DOMAIN, "SO_DOMAIN", domainName},
		{unix.SO_TYPE, "SO_TYPE", sockTypeName},
		{unix.SO_PROTOCOL, "SO_PROTOCOL", protoName},
	} {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, o.opt)
		n.call(fmt.Sprintf("getsockopt(%d, SOL_SOCKET, %s)", fd, o.name), withName(v, o.show(v)), err)
		if err != nil {
			return "", os.NewSyscallError(fmt.Sprintf("getsockopt %d %s", fd, o.name), err)
		}
		row = append(row, withName(v, o.show(v)))
	}
	// endregion inspect
	// region flags
	cloexec, err := getFD(n, fd)
	if err != nil {
		return "", err
	}
	sa, err := unix.Getsockname(fd)
	local := addrString(sa)
	n.call(fmt.Sprintf("getsockname(%d)", fd), local, err)
	if err != nil {
		return "", os.NewSyscallError(fmt.Sprintf("getsockname %d", fd), err)
	}
	return strings.Join(append(row, cloexec, local), "\t"), nil
}

// endregion flags

// getFD shows the flags of descriptor fd. Close-on-exec is a flag on this
// process's descriptor, not on the socket, so it is fcntl that reports it.
func getFD(n narrator, fd int) (string, error) {
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	cloexec := "0"
	if flags&unix.FD_CLOEXEC != 0 {
		cloexec = "FD_CLOEXEC"
	}
	n.call(fmt.Sprintf("fcntl(%d, F_GETFD)", fd), cloexec, err)
	if err != nil {
		return "", os.NewSyscallError(fmt.Sprintf("fcntl %d F_GETFD", fd), err)
	}
	return cloexec, nil
}

// region listFDs
// listFDs prints what ls -l /proc/self/fd shows: every descriptor this process
// has open, its own and any the Go runtime or its parent gave it.
func listFDs(w io.Writer) error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	var fds []int
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			return fmt.Errorf("/proc/self/fd/%s: %w", e.Name(), err)
		}
		fds = append(fds, fd)
	}
	slices.Sort(fds)
	fmt.Fprintln(w, "/proc/self/fd:")
	for _, fd := range fds {
		target, err := os.Readlink(fdPath(fd))
		if errors.Is(err, fs.ErrNotExist) {
			continue // the descriptor ReadDir read the directory with, closed since
		} else if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %d -> %s\n", fd, target)
	}
	fmt.Fprintln(w)
	return nil
}

// endregion listFDs

func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// withName shows a number the kernel returned and, if it has one, its name.
func withName(v int, name string) string {
	if name == strconv.Itoa(v) {
		return name
	}
	return fmt.Sprintf("%d (%s)", v, name)
}
