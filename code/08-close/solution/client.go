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

	"golang.org/x/sys/unix"
)

// runClient does the whole exchange cfg.count times (exercise 1), each time
// on a new connection: a new socket, so a new client port. Each connection
// the client closes first leaves its own TIME_WAIT behind.
func runClient(ctx context.Context, cfg config, n narrator, w io.Writer) error {
	for range cfg.count {
		var err error
		if cfg.close == "shutdown" && !cfg.hold {
			err = halfClose(ctx, n, w, cfg) // exercise 4: with the net package
		} else {
			err = exchange(ctx, cfg, n, w)
		}
		if err != nil || ctx.Err() != nil {
			return err // Ctrl-C ends the loop too, as it ends one exchange
		}
	}
	return nil
}

// region client
// exchange connects one socket to cfg.addr and shows the connection from
// its end. Then it sends cfg.msgs and ends the connection the way cfg.close
// says or, with -hold, sends nothing until Ctrl-C.
func exchange(ctx context.Context, cfg config, n narrator, w io.Writer) (err error) {
	fd, err := dial(ctx, n, cfg.addr)
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
	// region ending
	// -close shutdown does not come here: halfClose makes its own
	// connection, with the net package (exercise 4).
	switch cfg.close {
	case "unread":
		err = leaveUnread(ctx, n, fd, cfg.msgs)
	default:
		err = talk(n, w, fd, cfg.msgs)
	}
	if err == nil && cfg.close == "linger0" {
		err = setLinger0(n, fd)
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("%s: %w", cfg.addr, err)
	}
	return nil // the deferred close ends the connection
	// endregion ending
}

// endregion client

// region leaveUnread
// leaveUnread sends all the lines in one write and waits until all the
// echoes are in the receive buffer, but reads none of them: the close that
// follows finds unread data, and resets the connection.
func leaveUnread(ctx context.Context, n narrator, fd int, msgs []string) error {
	lines := []byte(strings.Join(msgs, "\n") + "\n")
	if err := writeAll(n, fd, lines); err != nil {
		return err
	}
	return waitQueued(ctx, n, fd, len(lines))
}

// endregion leaveUnread

// region talk
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

// region dial
// dial makes a socket and connects it to addr, as chapter 6 did: no bind;
// connect gives the socket a local address, with a port the kernel picks,
// and returns when the handshake has succeeded or failed.
func dial(ctx context.Context, n narrator, addr netip.AddrPort) (fd int, err error) {
	sa, err := sockaddr(addr)
	if err != nil {
		return -1, err
	}
	domain := unix.AF_INET6
	if addr.Addr().Is4() {
		domain = unix.AF_INET
	}
	if fd, err = newSocket(n, domain, unix.SOCK_STREAM, 0); err != nil {
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
	n.call(fmt.Sprintf("connect(%d, %s)", fd, addr), "0", err)
	return fd, os.NewSyscallError("connect "+addr.String(), err)
}

// endregion dial

// setLinger0 sets SO_LINGER to {1, 0} on fd. A linger time of 0 makes the
// next close abortive: the kernel sends RST instead of FIN and forgets the
// connection at once. The -close linger0 client and the -linger0 server
// (exercise 2) both use it.
func setLinger0(n narrator, fd int) error {
	l := unix.Linger{Onoff: 1, Linger: 0}
	err := unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &l)
	n.call(fmt.Sprintf("setsockopt(%d, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0})", fd), "0", err)
	return os.NewSyscallError("setsockopt SO_LINGER", err)
}
