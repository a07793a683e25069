//go:build linux

package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// watchProbes is exercise 4's -probes: it waits for fd to be readable in
// poll, a second at a time, instead of blocking in read, and after each
// second with nothing to read it asks TCP_INFO how many keepalive probes in
// a row have gone unanswered. On loopback the peer's kernel answers every
// probe and the count stays 0; for a vanished peer it climbs to the
// keepalive count, then the kernel drops the connection. A connection that
// is reset or dropped is readable, with POLLERR|POLLHUP: the read that
// follows reports why.
func watchProbes(n narrator, fd int) error {
	const ms = 1000
	for {
		pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		ready, err := unix.Poll(pfd, ms)
		for err == unix.EINTR { // poll is never restarted after a signal
			ready, err = unix.Poll(pfd, ms)
		}
		result := fmt.Sprintf("%d ([{fd=%d, revents=%s}])", ready, fd, pollEvents(pfd[0].Revents))
		if ready == 0 {
			result = "0 (Timeout)"
		}
		n.call(fmt.Sprintf("poll([{fd=%d, events=POLLIN}], 1, %d)", fd, ms), result, err)
		if err != nil {
			return os.NewSyscallError("poll", err)
		}
		if ready > 0 {
			return nil
		}
		info, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO)
		if err != nil {
			n.call(fmt.Sprintf("getsockopt(%d, SOL_TCP, TCP_INFO)", fd), "", err)
			return os.NewSyscallError("getsockopt TCP_INFO", err)
		}
		n.call(fmt.Sprintf("getsockopt(%d, SOL_TCP, TCP_INFO)", fd), fmt.Sprintf("{tcpi_probes=%d}", info.Probes), nil)
	}
}
