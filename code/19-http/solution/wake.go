//go:build linux

// How the server and the client stop: a blocked accept4, connect or read
// does not notice that a Go context was cancelled, so a goroutine wakes it
// with shutdown.

package main

import (
	"context"
	"fmt"

	"golang.org/x/sys/unix"
)

// region wake
// wakeOnCancel shuts fd down when ctx ends. On Linux that wakes a call
// blocked on it: accept4 on a listening socket fails with EINVAL, read on a
// connected one returns 0, and connect on a socket still in SYN_SENT fails
// with ECONNRESET. Call the function it returns before closing fd, so that
// shutdown can never hit a number the kernel has handed out again.
func wakeOnCancel(ctx context.Context, n narrator, fd int) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			// Hold the narrator across the call, so that the call this
			// wakes is narrated after the shutdown that woke it.
			n.mu.Lock()
			defer n.mu.Unlock()
			err := unix.Shutdown(fd, unix.SHUT_RDWR)
			n.print(fmt.Sprintf("shutdown(%d, SHUT_RDWR)", fd), "0", err)
		case <-done:
		}
	}()
	return func() { close(done); <-stopped }
}

// endregion wake
