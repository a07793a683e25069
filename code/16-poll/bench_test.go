//go:build linux

package main

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// The cost of one call of poll, and of select, against the number of
// descriptors watched, none of them ready: the kernel looks at every one,
// each time. Nothing asserts a time; run them on your machine with
//
//	go test -run '^$' -bench . ./code/16-poll
//
// The descriptors are UDP sockets, unbound: idle, never readable.

func BenchmarkPoll(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			fds := idleSockets(b, n)
			pfds := make([]unix.PollFd, n)
			for i, fd := range fds {
				pfds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
			}
			for b.Loop() {
				got, err := unix.Poll(pfds, 0)
				for err == unix.EINTR { // Go's runtime preempts with SIGURG: ask again
					got, err = unix.Poll(pfds, 0)
				}
				if got != 0 || err != nil {
					b.Fatalf("poll = %d, %v; want 0: nothing is ready", got, err)
				}
			}
		})
	}
}

// BenchmarkSelect stops at 1000: a descriptor above 1023 has no bit in an
// FdSet (TestFdSetSize).
func BenchmarkSelect(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			fds := idleSockets(b, n)
			maxfd := fds[len(fds)-1]
			if maxfd >= unix.FD_SETSIZE {
				b.Skipf("descriptor %d is past FD_SETSIZE", maxfd)
			}
			var set unix.FdSet
			for b.Loop() {
				// select overwrites its sets with the answer: they are
				// filled again before every call, as a loop on select must.
				set.Zero()
				for _, fd := range fds {
					set.Set(fd)
				}
				var tv unix.Timeval
				got, err := unix.Select(maxfd+1, &set, nil, nil, &tv)
				if err == unix.EINTR {
					continue // preempted (SIGURG): the sets are filled again
				}
				if got != 0 || err != nil {
					b.Fatalf("select = %d, %v; want 0: nothing is ready", got, err)
				}
			}
		})
	}
}

// idleSockets opens n unbound UDP sockets, closed when the benchmark ends.
func idleSockets(b *testing.B, n int) []int {
	b.Helper()
	fds := make([]int, 0, n)
	b.Cleanup(func() {
		for _, fd := range fds {
			unix.Close(fd)
		}
	})
	for range n {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Skipf("%d sockets: %v", n, err)
		}
		fds = append(fds, fd)
	}
	return fds
}
