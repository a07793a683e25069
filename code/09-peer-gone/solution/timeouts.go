//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// keepaliveProbes is how many keepalive probes in a row may go unanswered
// before the kernel gives up on the peer.
const keepaliveProbes = 3

// laterDelay is how long -later waits after the echoes before it sends one
// more line: long enough to make a peer vanish by hand (exercise 2).
const laterDelay = 5 * time.Second

// region keepalive
// setKeepalive turns on TCP keepalive for a connected socket. After idle of
// silence the kernel sends a probe, which the peer's kernel must answer,
// then another every idle; when keepaliveProbes in a row go unanswered it
// drops the connection, and a read fails with ETIMEDOUT.
func setKeepalive(n narrator, fd int, idle time.Duration) error {
	secs := int(idle / time.Second)
	for _, o := range []struct {
		level, opt int
		name       string
		value      int
	}{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, "SOL_SOCKET, SO_KEEPALIVE", 1},
		{unix.SOL_TCP, unix.TCP_KEEPIDLE, "SOL_TCP, TCP_KEEPIDLE", secs},
		{unix.SOL_TCP, unix.TCP_KEEPINTVL, "SOL_TCP, TCP_KEEPINTVL", secs},
		{unix.SOL_TCP, unix.TCP_KEEPCNT, "SOL_TCP, TCP_KEEPCNT", keepaliveProbes},
	} {
		err := unix.SetsockoptInt(fd, o.level, o.opt, o.value)
		n.call(fmt.Sprintf("setsockopt(%d, %s, %d)", fd, o.name, o.value), "0", err)
		if err != nil {
			_, name, _ := strings.Cut(o.name, ", ")
			return os.NewSyscallError("setsockopt "+name, err)
		}
	}
	return nil
}

// endregion keepalive

// setUserTimeout is exercise 2. TCP_USER_TIMEOUT bounds how long sent data
// may stay unacknowledged, in milliseconds, before the kernel drops the
// connection and the next call fails with ETIMEDOUT. Keepalive watches a
// silent connection; this watches one whose data goes nowhere, which the
// kernel would otherwise retransmit for about 15 minutes. Since Linux 5.11
// it also bounds how long the peer may advertise a window of 0.
func setUserTimeout(n narrator, fd int, timeout time.Duration) error {
	ms := int(timeout / time.Millisecond)
	err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_USER_TIMEOUT, ms)
	n.call(fmt.Sprintf("setsockopt(%d, SOL_TCP, TCP_USER_TIMEOUT, %d)", fd, ms), "0", err)
	return os.NewSyscallError("setsockopt TCP_USER_TIMEOUT", err)
}

// sayLater is exercise 2's -later: after the echoes it waits laterDelay,
// long enough to make the server vanish by hand, then sends one more line
// and reads its echo. The write succeeds whatever has become of the peer;
// only the read can tell, with TCP_USER_TIMEOUT after that many
// milliseconds, without it after the kernel's 15 minutes of retransmits.
func sayLater(ctx context.Context, n narrator, w io.Writer, fd int) error {
	fmt.Fprintf(w, "sending one more line in %v\n", laterDelay)
	select {
	case <-ctx.Done():
		return nil // Ctrl-C: we are stopping, not failing
	case <-time.After(laterDelay):
	}
	return talk(n, w, fd, []string{"later"})
}
