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
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// errClosed is what talk reports when the server closes the connection
// instead of echoing.
var errClosed = errors.New("the server closed the connection")

// region client
// runClient connects to the first of addrs that answers and shows the
// connection from its end. Then it sends cfg.msgs and checks the echoes.
func runClient(ctx context.Context, cfg config, n narrator, w io.Writer, addrs []netip.AddrPort) (err error) {
	fd, addr, err := dialAny(ctx, n, addrs, cfg.timeout)
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
	if err := talk(n, w, fd, cfg.msgs); err != nil && ctx.Err() == nil {
		return fmt.Errorf("%s: %w", addr, err)
	}
	return nil
}

// endregion client

// region dialAny
// dialAny tries each address in turn, in the resolver's order, until a
// connect succeeds: a refused address (no server on ::1, say) is not the
// end while another may answer. Each attempt needs a socket of its own,
// of the address's family; a failed one is closed before the next. Only
// when every address has failed does it report all their errors.
func dialAny(ctx context.Context, n narrator, addrs []netip.AddrPort, timeout time.Duration) (int, netip.AddrPort, error) {
	var errs []error
	for _, a := range addrs {
		fd, err := dial(ctx, n, a, timeout)
		if err == nil {
			return fd, a, nil
		}
		if ctx.Err() != nil {
			return -1, a, err
		}
		errs = append(errs, err)
	}
	return -1, netip.AddrPort{}, errors.Join(errs...)
}

// endregion dialAny

// dial makes a socket of a's family and connects it to a. With timeout 0
// it is the plain, blocking connect. Otherwise the socket is non-blocking
// while it connects, and poll waits for the handshake, at most timeout;
// then it blocks again, as the reads and writes in rw.go expect.
func dial(ctx context.Context, n narrator, a netip.AddrPort, timeout time.Duration) (fd int, err error) {
	sa, err := sockaddr(a)
	if err != nil {
		return -1, err
	}
	typ := unix.SOCK_STREAM
	if timeout > 0 {
		typ |= unix.SOCK_NONBLOCK
	}
	if fd, err = newSocket(n, family(a), typ, 0); err != nil {
		return -1, err
	}
	defer func() {
		if err != nil {
			err, fd = errors.Join(err, closeFD(n, fd)), -1
		}
	}()
	stop := wakeOnCancel(ctx, n, fd) // Ctrl-C must not wait for the kernel's timeout
	defer stop()
	err = unix.Connect(fd, sa)
	n.call(fmt.Sprintf("connect(%d, %s)", fd, a), "0", err)
	if err != unix.EINPROGRESS {
		return fd, os.NewSyscallError("connect "+a.String(), err)
	}
	if err := waitConnected(n, fd, a, timeout); err != nil {
		return fd, err
	}
	err = unix.SetNonblock(fd, false)
	n.call(fmt.Sprintf("fcntl(%d, F_SETFL, O_RDWR)", fd), "0", err)
	return fd, os.NewSyscallError("fcntl", err)
}

// waitConnected waits for the handshake a non-blocking connect started,
// at most timeout; SO_ERROR says how it ended.
func waitConnected(n narrator, fd int, a netip.AddrPort, timeout time.Duration) error {
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
		return fmt.Errorf("connect %s: no answer within %v: %w", a, timeout, unix.ETIMEDOUT)
	}
	soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	n.call(fmt.Sprintf("getsockopt(%d, SOL_SOCKET, SO_ERROR)", fd), strconv.Itoa(soerr), err)
	if err != nil {
		return os.NewSyscallError("getsockopt SO_ERROR", err)
	}
	if soerr != 0 {
		return os.NewSyscallError("connect "+a.String(), unix.Errno(soerr))
	}
	return nil
}

// talk sends each message as a line and checks that the same line comes
// back. An echo is exactly as long as what was sent, so the client knows how
// many bytes to wait for, however many reads they take.
func talk(n narrator, w io.Writer, fd int, msgs []string) error {
	for _, m := range msgs {
		line := []byte(m + "\n")
		if err := writeAll(n, fd, line); err != nil {
			return err
		}
		echo := make([]byte, len(line))
		if err := readFull(n, fd, echo); err != nil {
			if err == io.EOF {
				return errClosed
			}
			return err
		}
		if !slices.Equal(echo, line) {
			return fmt.Errorf("sent %q, got back %q", line, echo)
		}
		fmt.Fprintf(w, "echoed %q\n", echo)
	}
	return nil
}
