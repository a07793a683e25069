//go:build linux

// How the loops learn that the server is to stop: epoll_wait does not
// notice that a Go context was cancelled, so a goroutine writes to an
// eventfd on each loop's interest list, and the loop wakes.

package main

import (
	"context"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// region wake
// newEventfd makes an eventfd: a descriptor for a kernel counter, readable
// when it is not 0. Chapter 19 shut the listening socket down instead, to
// wake the loop; that resets the connections in its accept queue, which
// a graceful end must serve.
func newEventfd(n narrator) (int, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	n.call("eventfd2(0, EFD_CLOEXEC|EFD_NONBLOCK)", strconv.Itoa(fd), err)
	return fd, os.NewSyscallError("eventfd2", err)
}

// wakeOnCancel adds 1 to the loop's eventfd when ctx ends. Call the
// function it returns before closing the eventfd, so that the write can
// never hit a number the kernel has handed out again.
func (l *loop) wakeOnCancel(ctx context.Context) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			// Hold the narrator across the call, so that the loop's
			// wake-up is narrated after the write that woke it.
			l.n.mu.Lock()
			defer l.n.mu.Unlock()
			one := [8]byte{1} // the counter is a uint64 in the machine's byte order: little-endian here
			_, err := unix.Write(l.wake, one[:])
			l.n.print(fmt.Sprintf("write(%d, [eventfd 1], 8)", l.wake), "8", err)
		case <-done:
		}
	}()
	return func() { close(done); <-stopped }
}

// endregion wake
