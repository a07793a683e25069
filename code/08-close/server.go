//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// listenOn makes the server's listening socket, as chapters 2 to 4 did:
// socket, SO_REUSEADDR, bind, listen, and getsockname to learn the port.
// It prints "listening on ADDR" and returns the socket.
func listenOn(n narrator, w io.Writer, cfg config) (fd int, err error) {
	// region create
	// The address decides the family: an IPv4 address needs an AF_INET
	// socket, an IPv6 one an AF_INET6 socket.
	domain := unix.AF_INET6
	if cfg.addr.Addr().Is4() {
		domain = unix.AF_INET
	}
	fd, err = newSocket(n, domain, unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, err
	}
	defer func() {
		if err != nil {
			err, fd = errors.Join(err, closeFD(n, fd)), -1
		}
	}()
	// endregion create

	// region reuseaddr
	// SO_REUSEADDR must be set before bind: bind is where the kernel checks
	// whether the address is free.
	if cfg.reuseaddr {
		err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		n.call(fmt.Sprintf("setsockopt(%d, SOL_SOCKET, SO_REUSEADDR, 1)", fd), "0", err)
		if err != nil {
			return fd, os.NewSyscallError("setsockopt SO_REUSEADDR", err)
		}
	}
	// endregion reuseaddr

	// region bind
	sa, err := sockaddr(cfg.addr)
	if err != nil {
		return fd, err
	}
	err = unix.Bind(fd, sa)
	n.call(fmt.Sprintf("bind(%d, %s)", fd, cfg.addr), "0", err)
	if err != nil {
		return fd, os.NewSyscallError("bind "+cfg.addr.String(), err)
	}
	// endregion bind

	// region listen
	// From here on the kernel answers connection requests for this socket
	// and queues completed connections, up to backlog+1, until accept.
	err = unix.Listen(fd, cfg.backlog)
	n.call(fmt.Sprintf("listen(%d, %d)", fd, cfg.backlog), "0", err)
	if err != nil {
		return fd, os.NewSyscallError("listen "+cfg.addr.String(), err)
	}
	// endregion listen

	// region getsockname
	// With port 0 the kernel chose a port; only getsockname can say which.
	bound, err := unix.Getsockname(fd)
	local := addrString(bound)
	n.call(fmt.Sprintf("getsockname(%d)", fd), local, err)
	if err != nil {
		return fd, os.NewSyscallError(fmt.Sprintf("getsockname %d", fd), err)
	}
	fmt.Fprintf(w, "listening on %s\n", local)
	// endregion getsockname
	return fd, nil
}

// region accept
// acceptConn takes the oldest connection off the listening socket's accept
// queue, waiting for one if the queue is empty. The kernel writes the
// client's address into a buffer it is given, and returns a new descriptor
// for the connection; fd goes on listening.
func acceptConn(n narrator, fd int) (int, error) {
	cfd, peer, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
	n.call(fmt.Sprintf("accept4(%d, %s, SOCK_CLOEXEC)", fd, addrString(peer)), strconv.Itoa(cfd), err)
	if err != nil {
		return -1, os.NewSyscallError("accept4", err)
	}
	return cfd, nil
}

// endregion accept

// region echo
// echo reads whatever has arrived, up to len(buf) bytes at a time, and
// writes back each whole line it has, until the read that returns 0: end of
// file. A read may hold half a line, or several; echo never assumes one line.
func echo(n narrator, fd int) error {
	buf := make([]byte, bufSize)
	var line []byte // what has arrived of the next line
	for {
		got, err := readFD(n, fd, buf)
		if err != nil {
			return err
		}
		if got == 0 { // the client closed its end: nothing more will come
			if len(line) > 0 {
				return fmt.Errorf("end of file after %d bytes of a line", len(line))
			}
			return nil
		}
		line = append(line, buf[:got]...)
		// A line ends within maxLine bytes, newline included, whatever the
		// reads brought; else a client could make the server buffer for ever.
		for {
			i := slices.Index(line[:min(len(line), maxLine)], '\n')
			if i < 0 {
				break
			}
			if err := writeAll(n, fd, line[:i+1]); err != nil {
				return err
			}
			line = line[i+1:]
		}
		if len(line) >= maxLine {
			return fmt.Errorf("no newline in %d bytes", maxLine)
		}
	}
}

// endregion echo
