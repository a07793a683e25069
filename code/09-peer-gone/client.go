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

// region client
// runClient connects one socket to cfg.addr and shows the connection from
// its end. Then it sends cfg.msgs and checks the echoes or, with -hold,
// sends nothing until Ctrl-C; -close says how it ends.
func runClient(ctx context.Context, cfg config, n narrator, w io.Writer) (err error) {
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
	if cfg.keepalive > 0 {
		if err := setKeepalive(n, fd, cfg.keepalive); err != nil {
			return err
		}
	}
	if cfg.hold {
		fmt.Fprintln(w, "sending nothing until Ctrl-C")
		<-ctx.Done()
		return nil
	}
	// region ending
	err = talk(n, w, fd, cfg.msgs)
	if err == nil && cfg.close == "write-after-eof" {
		err = writeAfterEOF(ctx, n, fd)
	}
	if err == nil && cfg.close == "linger0" {
		// A linger time of 0 makes the close below abortive: the kernel
		// sends RST instead of FIN and forgets the connection at once.
		l := unix.Linger{Onoff: 1, Linger: 0}
		err = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &l)
		n.call(fmt.Sprintf("setsockopt(%d, SOL_SOCKET, SO_LINGER, {onoff=1, linger=0})", fd), "0", err)
		err = os.NewSyscallError("setsockopt SO_LINGER", err)
	}
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("%s: %w", cfg.addr, err)
	}
	return nil // the deferred close ends the connection
	// endregion ending
}

// endregion client
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
