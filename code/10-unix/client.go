//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

// errClosed is what talk reports when the server closes the connection
// instead of echoing.
var errClosed = errors.New("the server closed the connection")

// region client
// runClient connects one socket to sa and shows the connection from its
// end; on a Unix socket that includes who the server is. Then it sends
// cfg.msgs and checks the echoes.
func runClient(ctx context.Context, cfg config, n narrator, w io.Writer, sa unix.Sockaddr) (err error) {
	fd, err := dial(ctx, n, sa)
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
		return fmt.Errorf("%s: %w", addrString(sa), err)
	}
	return nil
}

// endregion client

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

// region dial
// dial makes a socket of the family sa needs and connects it to sa. A Unix
// connect involves no handshake on a wire: it succeeds at once if a socket
// listens on that path and its queue has room, and fails at once if not.
func dial(ctx context.Context, n narrator, sa unix.Sockaddr) (fd int, err error) {
	if fd, err = newSocket(n, family(sa), unix.SOCK_STREAM, 0); err != nil {
		return -1, err
	}
	defer func() {
		if err != nil {
			err, fd = errors.Join(err, closeFD(n, fd)), -1
		}
	}()
	stop := wakeOnCancel(ctx, n, fd) // Ctrl-C must not wait for a full queue to drain
	defer stop()
	err = unix.Connect(fd, sa)
	n.call(fmt.Sprintf("connect(%d, %s)", fd, addrString(sa)), "0", err)
	return fd, os.NewSyscallError("connect "+addrString(sa), err)
}

// endregion dial
