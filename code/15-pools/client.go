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

	"golang.org/x/sys/unix"
)

// errClosed is what talk reports when the server closes the connection
// instead of echoing.
var errClosed = errors.New("the server closed the connection")

// region client
// runClient connects to the first of addrs that answers and shows the
// connection from its end. Then it sends cfg.msgs and checks the echoes.
func runClient(ctx context.Context, cfg config, n narrator, w io.Writer, addrs []netip.AddrPort) (err error) {
	fd, addr, err := dialAny(ctx, n, addrs)
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
	if err := talk(n, w, conn{fd: fd}, cfg.msgs); err != nil && ctx.Err() == nil {
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
func dialAny(ctx context.Context, n narrator, addrs []netip.AddrPort) (int, netip.AddrPort, error) {
	var errs []error
	for _, a := range addrs {
		fd, err := dial(ctx, n, a)
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

// dial makes a socket of a's family and connects it to a: the plain,
// blocking connect, which returns when the handshake has succeeded or
// failed.
func dial(ctx context.Context, n narrator, a netip.AddrPort) (fd int, err error) {
	sa, err := sockaddr(a)
	if err != nil {
		return -1, err
	}
	if fd, err = newSocket(n, family(a), unix.SOCK_STREAM, 0); err != nil {
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
	return fd, os.NewSyscallError("connect "+a.String(), err)
}

// talk sends each message as a line and checks that the same line comes
// back. An echo is exactly as long as what was sent, so the client knows how
// many bytes to wait for, however many reads they take.
func talk(n narrator, w io.Writer, c conn, msgs []string) error {
	for _, m := range msgs {
		line := []byte(m + "\n")
		if err := writeAll(n, c, line); err != nil {
			return err
		}
		echo := make([]byte, len(line))
		if err := readFull(n, c, echo); err != nil {
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
