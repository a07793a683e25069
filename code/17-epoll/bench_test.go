//go:build linux

package main

import (
	"fmt"
	"testing"

	"golang.org/x/sys/unix"
)

// The cost of one epoll_wait against the number of descriptors on the
// interest list, none of them ready, to set beside chapter 16's poll and
// select: the kernel looks at its ready list, not at every descriptor.
// Nothing asserts a time; run it on your machine with
//
//	go test -run '^$' -bench . ./code/17-epoll
//
// The descriptors are unbound UDP sockets, as in chapter 16: never readable.

func BenchmarkEpollWait(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { unix.Close(epfd) })
			for _, fd := range idleSockets(b, n) {
				if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
					b.Fatal(err)
				}
			}
			events := make([]unix.EpollEvent, 128)
			for b.Loop() {
				got, err := unix.EpollWait(epfd, events, 0)
				for err == unix.EINTR { // Go's runtime preempts with SIGURG: ask again
					got, err = unix.EpollWait(epfd, events, 0)
				}
				if got != 0 || err != nil {
					b.Fatalf("epoll_wait = %d, %v; want 0: nothing is ready", got, err)
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
