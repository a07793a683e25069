//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// region client
// runClient connects one socket to cfg.addr and shows the connection from
// its end. Then it sends cfg.msgs and checks the echoes or, with -hold,
// sends nothing until Ctrl-C.
func runClient(ctx context.Context, cfg config, n narrator, w io.Writer) (err error) {
	fd, err := dial(ctx, n, cfg.addr, cfg.timeout)
	if err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl-C stopped the connect: we are stopping, not failing
		}
		return err
	}
	defer func() { err = errors.Join(err, closeFD(n, fd)) }()
	if _, err := showConn(n, w, fd); err != nil {
		return err
	}
	stop := wakeOnCancel(ctx, n, fd) // Ctrl-C must not wait for a server that says nothing
	defer stop()
	if cfg.hold {
		fmt.Fprintln(w, "sending nothing until Ctrl-C")
		<-ctx.Done()
		return nil
	}
	if err := talk(ctx, n, w, fd, cfg.msgs, cfg.batch); err != nil && ctx.Err() == nil {
		return fmt.Errorf("%s: %w", cfg.addr, err)
	}
	return nil
}

// endregion client

// region talk
// talk sends each message as a line and checks that the same line comes
// back. An echo is exactly as long as what was sent, so the client knows how
// many bytes to wait for, however many reads they take.
func talk(ctx context.Context, n narrator, w io.Writer, fd int, msgs []string, batch bool) error {
	var lines [][]byte
	for _, m := range msgs {
		lines = append(lines, []byte(m+"\n"))
	}
	if batch {
		lines = [][]byte{slices.Concat(lines...)} // all of them in one write
	}
	for _, line := range lines {
		if err := writeAll(n, fd, line); err != nil {
			return err
		}
		if batch {
			// The server writes each echo separately. Once all of them
			// are here, one read returns them together.
			if err := waitQueued(ctx, n, fd, len(line)); err != nil {
				return err
			}
		}
		echo := make([]byte, len(line))
		if err := readFull(n, fd, echo); err != nil {
			return err
		}
		if !slices.Equal(echo, line) {
			return fmt.Errorf("sent %q, got back %q", line, echo)
		}
		fmt.Fprintf(w, "echoed %q\n", echo)
	}
	return nil
}

// endregion talk

// region waitQueued
// waitQueued waits until want bytes are in fd's receive buffer, asking
// every 10 ms with ioctl FIONREAD (SIOCINQ in x/sys: the same request), for
// at most 5 seconds. Only -batch uses it, to make sure that the echoes have
// all arrived before the one read that takes them.
func waitQueued(ctx context.Context, n narrator, fd, want int) error {
	for tries := 1; ; tries++ {
		queued, err := unix.IoctlGetInt(fd, unix.SIOCINQ)
		if err != nil || queued >= want || tries == 500 || ctx.Err() != nil {
			n.call(fmt.Sprintf("ioctl(%d, FIONREAD, [%d])", fd, queued), "0", err)
			if err != nil {
				return os.NewSyscallError("ioctl FIONREAD", err)
			}
			if queued < want {
				return fmt.Errorf("%d of %d bytes arrived", queued, want)
			}
			return nil
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// endregion waitQueued

// region dial
// dial makes a socket and connects it to addr. With timeout 0 it is the
// plain, blocking connect, which returns when the handshake has succeeded or
// failed: after about two minutes if nobody answers. Otherwise the socket is
// non-blocking, and waitConnected waits for the handshake, at most timeout.
func dial(ctx context.Context, n narrator, addr netip.AddrPort, timeout time.Duration) (fd int, err error) {
	sa, err := sockaddr(addr)
	if err != nil {
		return -1, err
	}
	domain := unix.AF_INET6
	if addr.Addr().Is4() {
		domain = unix.AF_INET
	}
	typ := unix.SOCK_STREAM
	if timeout > 0 {
		typ |= unix.SOCK_NONBLOCK
	}
	if fd, err = newSocket(n, domain, typ, 0); err != nil {
		return -1, err
	}
	defer func() {
		if err != nil {
			err, fd = errors.Join(err, closeFD(n, fd)), -1
		}
	}()
	stop := wakeOnCancel(ctx, n, fd) // Ctrl-C must not wait for the kernel's timeout
	defer stop()

	// No bind: connect gives the socket a local address, with a port the
	// kernel picks, and then sends the SYN.
	err = unix.Connect(fd, sa)
	n.call(fmt.Sprintf("connect(%d, %s)", fd, addr), "0", err)
	if err == unix.EINPROGRESS {
		return fd, waitConnected(n, fd, addr, timeout)
	}
	return fd, os.NewSyscallError("connect "+addr.String(), err)
}

// endregion dial

// region wait
// waitConnected waits for the handshake that a non-blocking connect started.
// The socket becomes writable when the handshake ends, whether it succeeded
// or failed; SO_ERROR says which, as connect's own result would have.
func waitConnected(n narrator, fd int, addr netip.AddrPort, timeout time.Duration) error {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	ms, deadline := int(timeout.Milliseconds()), time.Now().Add(timeout)
	ready, err := unix.Poll(pfd, ms)
	for err == unix.EINTR { // a signal is not an answer: wait out the rest
		ready, err = unix.Poll(pfd, max(int(time.Until(deadline).Milliseconds()), 0))
	}
	result := fmt.Sprintf("%d ([{fd=%d, revents=%s}])", ready, fd, pollEvents(pfd[0].Revents))
	if ready == 0 {
		result = "0 (Timeout)"
	}
	n.call(fmt.Sprintf("poll([{fd=%d, events=POLLOUT}], 1, %d)", fd, ms), result, err)
	if err != nil {
		return os.NewSyscallError("poll", err)
	}
	if ready == 0 {
		// The kernel would go on trying; this program gives up. ETIMEDOUT is
		// what a blocking connect reports when the kernel gives up.
		return fmt.Errorf("connect %s: no answer within %v: %w", addr, timeout, unix.ETIMEDOUT)
	}
	soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	result = "0"
	if soerr != 0 {
		result = fmt.Sprintf("%d (%s)", soerr, unix.ErrnoName(unix.Errno(soerr)))
	}
	n.call(fmt.Sprintf("getsockopt(%d, SOL_SOCKET, SO_ERROR)", fd), result, err)
	if err != nil {
		return os.NewSyscallError("getsockopt SO_ERROR", err)
	}
	if soerr != 0 {
		return os.NewSyscallError("connect "+addr.String(), unix.Errno(soerr))
	}
	return nil
}

// endregion wait

// region showConn
// showConn asks the kernel for both ends of fd's connection and prints the
// five values that name it: protocol, local IP and port, remote IP and port.
// The other end prints the same five, with local and remote swapped.
func showConn(n narrator, w io.Writer, fd int) (peer string, err error) {
	sa, err := unix.Getsockname(fd)
	local := addrString(sa)
	n.call(fmt.Sprintf("getsockname(%d)", fd), local, err)
	if err != nil {
		return "", os.NewSyscallError(fmt.Sprintf("getsockname %d", fd), err)
	}
	sa, err = unix.Getpeername(fd)
	peer = addrString(sa)
	n.call(fmt.Sprintf("getpeername(%d)", fd), peer, err)
	if err != nil {
		return "", os.NewSyscallError(fmt.Sprintf("getpeername %d", fd), err)
	}
	fmt.Fprintf(w, "connection: TCP, local %s, remote %s\n", local, peer)
	return peer, nil
}

// endregion showConn

// waitReady waits in poll until fd is ready: with POLLIN, until there is
// something to read; with POLLOUT, until there is room to write. Only a
// non-blocking socket, such as the -timeout client's, gets here.
func waitReady(n narrator, fd int, events int16) error {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: events}}
	ready, err := unix.Poll(pfd, -1)
	for err == unix.EINTR {
		ready, err = unix.Poll(pfd, -1)
	}
	n.call(fmt.Sprintf("poll([{fd=%d, events=%s}], 1, -1)", fd, pollEvents(events)),
		fmt.Sprintf("%d ([{fd=%d, revents=%s}])", ready, fd, pollEvents(pfd[0].Revents)), err)
	return os.NewSyscallError("poll", err)
}

// pollEvents names the bits poll set in revents.
func pollEvents(ev int16) string {
	var names []string
	for _, b := range []struct {
		bit  int16
		name string
	}{{unix.POLLIN, "POLLIN"}, {unix.POLLOUT, "POLLOUT"}, {unix.POLLERR, "POLLERR"}, {unix.POLLHUP, "POLLHUP"}} {
		if ev&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	return strings.Join(names, "|")
}
