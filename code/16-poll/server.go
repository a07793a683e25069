//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// listenOn makes one listening socket, as chapters 2 to 4 did: socket,
// SO_REUSEADDR, bind, listen, and getsockname to learn the port. The
// address decides the family. It prints "listening on ADDR" and returns
// the socket and the address it is bound to. The socket is non-blocking
// (SOCK_NONBLOCK) unless cfg.blocking: see acceptConn.
func listenOn(n narrator, w io.Writer, a netip.AddrPort, cfg config) (fd int, bound netip.AddrPort, err error) {
	typ := unix.SOCK_STREAM | unix.SOCK_NONBLOCK
	if cfg.blocking {
		typ = unix.SOCK_STREAM
	}
	fd, err = newSocket(n, family(a), typ, 0)
	if err != nil {
		return -1, bound, err
	}
	defer func() {
		if err != nil {
			err, fd = errors.Join(err, closeFD(n, fd)), -1
		}
	}()
	err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
	n.call(fmt.Sprintf("setsockopt(%d, SOL_SOCKET, SO_REUSEADDR, 1)", fd), "0", err)
	if err != nil {
		return fd, bound, os.NewSyscallError("setsockopt SO_REUSEADDR", err)
	}

	// region v6only
	// An IPv6 socket with IPV6_V6ONLY 0 takes IPv4 clients too, when it
	// is bound to [::]: they appear as ::ffff:a.b.c.d. Then 0.0.0.0 on the
	// same port is taken, and binding it fails with EADDRINUSE. With 1,
	// each family gets a socket of its own, and both binds succeed.
	if family(a) == unix.AF_INET6 {
		v := 0
		if cfg.v6only {
			v = 1
		}
		err = unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v)
		n.call(fmt.Sprintf("setsockopt(%d, IPPROTO_IPV6, IPV6_V6ONLY, %d)", fd, v), "0", err)
		if err != nil {
			return fd, bound, os.NewSyscallError("setsockopt IPV6_V6ONLY", err)
		}
	}
	// endregion v6only

	sa, err := sockaddr(a)
	if err != nil {
		return fd, bound, err
	}
	err = unix.Bind(fd, sa)
	n.call(fmt.Sprintf("bind(%d, %s)", fd, a), "0", err)
	if err != nil {
		return fd, bound, os.NewSyscallError("bind "+a.String(), err)
	}
	err = unix.Listen(fd, cfg.backlog)
	n.call(fmt.Sprintf("listen(%d, %d)", fd, cfg.backlog), "0", err)
	if err != nil {
		return fd, bound, os.NewSyscallError("listen "+a.String(), err)
	}
	got, err := unix.Getsockname(fd)
	local := addrString(got)
	n.call(fmt.Sprintf("getsockname(%d)", fd), local, err)
	if err != nil {
		return fd, bound, os.NewSyscallError(fmt.Sprintf("getsockname %d", fd), err)
	}
	fmt.Fprintf(w, "listening on %s\n", local)
	bound, err = netip.ParseAddrPort(local)
	return fd, bound, err
}

// region poll
// pollAll waits until at least one of pfds is ready and sets its Revents.
// For a listening socket, POLLIN means a connection waits for accept;
// POLLHUP, that the socket was shut down. For a connected one, POLLIN means
// a read will not wait (bytes, or end of file); POLLOUT, a write will not.
func pollAll(n narrator, pfds []unix.PollFd) error {
	ready, err := unix.Poll(pfds, -1)
	for err == unix.EINTR { // a signal is not an answer: wait again
		ready, err = unix.Poll(pfds, -1)
	}
	var asked, got []string
	for _, p := range pfds {
		asked = append(asked, fmt.Sprintf("{fd=%d, events=%s}", p.Fd, pollEvents(p.Events)))
		if p.Revents != 0 {
			got = append(got, fmt.Sprintf("{fd=%d, revents=%s}", p.Fd, pollEvents(p.Revents)))
		}
	}
	n.call(fmt.Sprintf("poll([%s], %d, -1)", strings.Join(asked, ", "), len(pfds)),
		fmt.Sprintf("%d ([%s])", ready, strings.Join(got, ", ")), err)
	return os.NewSyscallError("poll", err)
}

// endregion poll

// pollEvents names the bits of a poll event mask.
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

// accept takes one connection that poll said is waiting, and shows it. A
// client that gave up in between leaves the queue empty: EAGAIN, no conn.
func accept(n narrator, w io.Writer, lfd int, blocking bool) (*conn, error) {
	fd, err := acceptConn(n, lfd, blocking)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.ECONNABORTED) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	peer, err := showConn(n, w, fd)
	if err != nil {
		return nil, errors.Join(err, closeFD(n, fd))
	}
	return &conn{fd: fd, peer: peer}, nil
}

// acceptConn takes the oldest connection off the listening socket's accept
// queue. The kernel writes the client's address into a buffer it is given,
// and returns a new descriptor for the connection, non-blocking unless
// blocking is set: SOCK_NONBLOCK in accept4 saves an fcntl. On a
// non-blocking listening socket, an empty queue is EAGAIN, not a wait.
func acceptConn(n narrator, fd int, blocking bool) (int, error) {
	flags, shown := unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, "SOCK_CLOEXEC|SOCK_NONBLOCK"
	if blocking {
		flags, shown = unix.SOCK_CLOEXEC, "SOCK_CLOEXEC"
	}
	cfd, peer, err := unix.Accept4(fd, flags)
	n.call(fmt.Sprintf("accept4(%d, %s, %s)", fd, addrString(peer), shown), strconv.Itoa(cfd), err)
	if err != nil {
		return -1, os.NewSyscallError("accept4", err)
	}
	return cfd, nil
}
