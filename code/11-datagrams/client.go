//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// maxDatagram is room for the largest datagram there is: an IP packet is
// at most 65,535 bytes, headers included.
const maxDatagram = 65536

// region client
// runClient sends each of cfg.msgs as one datagram to sa and waits for its
// echo. Unconnected, it says where each datagram goes (sendto) and hears
// where each reply came from (recvfrom). With -connect it connects the
// socket first: no packet is sent, but the socket now has a default peer,
// so write and read need no address, and the kernel drops datagrams from
// anyone else and reports an ICMP "port unreachable" from the peer.
func runClient(ctx context.Context, cfg config, n narrator, w io.Writer, sa unix.Sockaddr) (err error) {
	fd, err := newSocket(n, family(sa), unix.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeFD(n, fd)) }()
	stop := wakeOnCancel(ctx, n, fd) // Ctrl-C must not wait for an echo that may never come
	defer stop()
	if cfg.timeout > 0 {
		// Nothing tells a UDP client that its datagram, or the echo, was
		// lost: without a time limit it would wait for ever.
		tv := unix.NsecToTimeval(cfg.timeout.Nanoseconds())
		err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		n.call(fmt.Sprintf("setsockopt(%d, SOL_SOCKET, SO_RCVTIMEO, %v)", fd, cfg.timeout), "0", err)
		if err != nil {
			return os.NewSyscallError("setsockopt SO_RCVTIMEO", err)
		}
	}
	if cfg.connect {
		err := unix.Connect(fd, sa)
		n.call(fmt.Sprintf("connect(%d, %s)", fd, addrString(sa)), "0", err)
		if err != nil {
			return os.NewSyscallError("connect "+addrString(sa), err)
		}
		// connect sent nothing, but it chose the local address and port
		// that datagrams to and from the peer will use.
		local, err := unix.Getsockname(fd)
		n.call(fmt.Sprintf("getsockname(%d)", fd), addrString(local), err)
		if err != nil {
			return os.NewSyscallError(fmt.Sprintf("getsockname %d", fd), err)
		}
	}
	if cfg.flood > 0 {
		return flood(n, w, fd, sa, []byte(cfg.msgs[0]+"\n"), cfg.flood)
	}
	for _, m := range cfg.msgs {
		err := exchange(n, w, fd, sa, []byte(m+"\n"), cfg.connect)
		if ctx.Err() != nil {
			return nil // Ctrl-C woke the receive: we are stopping, not failing
		}
		if errors.Is(err, unix.EAGAIN) {
			err = fmt.Errorf("no echo in %v", cfg.timeout)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", addrString(sa), err)
		}
	}
	return nil
}

// endregion client

// region exchange
// exchange sends one datagram and receives one, and checks that it is the
// echo: the same bytes, from the address the datagram went to.
func exchange(n narrator, w io.Writer, fd int, sa unix.Sockaddr, line []byte, connected bool) error {
	buf := make([]byte, maxDatagram)
	var got int
	var from unix.Sockaddr
	var err error
	if connected {
		if _, err = writeFD(n, fd, line); err != nil {
			return err
		}
		got, err = readFD(n, fd, buf)
		from = sa // the kernel lets through only what the peer sends
	} else {
		if _, err = sendTo(n, fd, line, sa); err != nil {
			return err
		}
		got, from, err = recvFrom(n, fd, buf, 0)
	}
	if err != nil {
		return err
	}
	if echo := buf[:got]; !slices.Equal(echo, line) {
		return fmt.Errorf("sent %q, got back %q", line, echo)
	}
	if addrString(from) != addrString(sa) {
		return fmt.Errorf("the echo came from %s, not from the address it was sent to", addrString(from))
	}
	fmt.Fprintf(w, "echoed %q\n", line)
	return nil
}

// endregion exchange

// flood sends count datagrams as fast as it can and reads nothing: a
// sender UDP never slows down, whatever becomes of its datagrams.
func flood(n narrator, w io.Writer, fd int, sa unix.Sockaddr, line []byte, count int) error {
	for range count {
		if _, err := sendTo(n, fd, line, sa); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "sent %d datagrams of %d bytes\n", count, len(line))
	return nil
}

// readFD is one read(2) on a connected socket: one datagram, from the peer.
func readFD(n narrator, fd int, buf []byte) (int, error) {
	got, err := unix.Read(fd, buf)
	for err == unix.EINTR {
		got, err = unix.Read(fd, buf)
	}
	n.call(fmt.Sprintf("read(%d, %s, %d)", fd, quote(buf[:max(got, 0)]), len(buf)), strconv.Itoa(got), err)
	return max(got, 0), os.NewSyscallError("read "+strconv.Itoa(fd), err)
}

// writeFD is one write(2) on a connected socket: one datagram, to the peer.
func writeFD(n narrator, fd int, buf []byte) (int, error) {
	sent, err := unix.Write(fd, buf)
	for err == unix.EINTR {
		sent, err = unix.Write(fd, buf)
	}
	n.call(fmt.Sprintf("write(%d, %s, %d)", fd, quote(buf), len(buf)), strconv.Itoa(sent), err)
	return max(sent, 0), os.NewSyscallError("write "+strconv.Itoa(fd), err)
}
