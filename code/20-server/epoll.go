//go:build linux

// The three epoll calls, narrated as strace shows them, and the names of
// their event bits.

package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// region epoll
// epollCreate makes an epoll instance: a descriptor for a kernel object
// that holds the interest list (what to watch) and the ready list (what
// has happened since the last epoll_wait).
func epollCreate(n narrator) (int, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	n.call("epoll_create1(EPOLL_CLOEXEC)", strconv.Itoa(epfd), err)
	return epfd, os.NewSyscallError("epoll_create1", err)
}

// epollCtl adds fd to the interest list, changes what is watched on it, or
// takes it off: op is EPOLL_CTL_ADD, _MOD or _DEL. The event's Fd is the
// caller's own datum, returned by epoll_wait: here, the descriptor.
func epollCtl(n narrator, epfd, op, fd int, events uint32) error {
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	err := unix.EpollCtl(epfd, op, fd, &ev)
	if n.quiet && err == nil {
		return nil // nothing to say: format nothing
	}
	ops := map[int]string{unix.EPOLL_CTL_ADD: "EPOLL_CTL_ADD", unix.EPOLL_CTL_MOD: "EPOLL_CTL_MOD", unix.EPOLL_CTL_DEL: "EPOLL_CTL_DEL"}
	n.call(fmt.Sprintf("epoll_ctl(%d, %s, %d, {events=%s, fd=%d})", epfd, ops[op], fd, epollEvents(events), fd), "0", err)
	return os.NewSyscallError("epoll_ctl "+ops[op]+" "+strconv.Itoa(fd), err)
}

// epollWait waits at most timeout milliseconds (-1: for ever) until the
// ready list has something, and copies at most len(events) entries of it.
// It costs in what is ready, not in what is watched. A signal that comes
// while it waits ends it with EINTR, whatever SA_RESTART says; Go's
// runtime sends its threads SIGURG to preempt goroutines, so a raw
// epoll_wait in Go sees EINTR now and then: it is narrated, and retried.
func epollWait(n narrator, epfd int, events []unix.EpollEvent, timeout int) (int, error) {
	for {
		got, err := unix.EpollWait(epfd, events, timeout)
		if n.quiet && err == nil {
			return got, nil
		}
		var ready []string
		for _, ev := range events[:max(got, 0)] {
			ready = append(ready, fmt.Sprintf("{events=%s, fd=%d}", epollEvents(ev.Events), ev.Fd))
		}
		n.call(fmt.Sprintf("epoll_wait(%d, [%s], %d, %d)", epfd, strings.Join(ready, ", "), len(events), timeout),
			strconv.Itoa(got), err)
		if err != unix.EINTR {
			return max(got, 0), os.NewSyscallError("epoll_wait", err)
		}
	}
}

// endregion epoll

// epollEvents names the bits of an epoll event mask.
func epollEvents(ev uint32) string {
	var names []string
	for _, b := range []struct {
		bit  uint32
		name string
	}{
		{unix.EPOLLIN, "EPOLLIN"}, {unix.EPOLLOUT, "EPOLLOUT"}, {unix.EPOLLRDHUP, "EPOLLRDHUP"},
		{unix.EPOLLERR, "EPOLLERR"}, {unix.EPOLLHUP, "EPOLLHUP"}, {unix.EPOLLET, "EPOLLET"},
	} {
		if ev&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	return strings.Join(names, "|")
}
