//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// listenOn makes one listening socket, as chapters 2 to 4 did: socket,
// SO_REUSEADDR, bind, listen, and getsockname to learn the port. The
// address decides the family. It prints "listening on ADDR" and returns
// the socket and the address it is bound to. The socket is non-blocking
// (SOCK_NONBLOCK): see acceptConn. With more than one loop, each loop has
// sockets of its own on the same addresses: SO_REUSEPORT.
func listenOn(n narrator, w io.Writer, a netip.AddrPort, cfg config) (fd int, bound netip.AddrPort, err error) {
	fd, err = newSocket(n, family(a), unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
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
	if cfg.loops > 1 {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		n.call(fmt.Sprintf("setsockopt(%d, SOL_SOCKET, SO_REUSEPORT, 1)", fd), "0", err)
		if err != nil {
			return fd, bound, os.NewSyscallError("setsockopt SO_REUSEPORT", err)
		}
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

// accept takes one connection that poll said is waiting, and shows it. A
// client that gave up in between leaves the queue empty: EAGAIN, no conn.
func accept(n narrator, w io.Writer, lfd int) (*conn, error) {
	fd, err := acceptConn(n, lfd)
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
// and returns a new descriptor for the connection, non-blocking:
// SOCK_NONBLOCK in accept4 saves an fcntl. On a non-blocking listening
// socket, an empty queue is EAGAIN, not a wait.
func acceptConn(n narrator, fd int) (int, error) {
	cfd, peer, err := unix.Accept4(fd, unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK)
	n.call(fmt.Sprintf("accept4(%d, %s, SOCK_CLOEXEC|SOCK_NONBLOCK)", fd, addrString(peer)), strconv.Itoa(cfd), err)
	if err != nil {
		return -1, os.NewSyscallError("accept4", err)
	}
	return cfd, nil
}
