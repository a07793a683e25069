//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// listenOn makes the server's listening socket, as chapters 2 to 4 did:
// socket, bind, listen, and getsockname to learn the address. The address
// decides the family: AF_UNIX for a path or an @name, AF_INET or AF_INET6
// for an IP address. It prints "listening on ADDR" and returns the socket.
func listenOn(n narrator, w io.Writer, sa unix.Sockaddr, backlog int, mode uint32) (fd int, err error) {
	// region create
	fd, err = newSocket(n, family(sa), unix.SOCK_STREAM, 0)
	if err != nil {
		return -1, err
	}
	defer func() {
		if err != nil {
			err, fd = errors.Join(err, closeFD(n, fd)), -1
		}
	}()
	// endregion create

	// region bind
	if u, ok := sa.(*unix.SockaddrUnix); ok {
		if err := bindUnix(n, fd, u); err != nil {
			return fd, err
		}
	} else {
		// SO_REUSEADDR matters to TCP only (TIME_WAIT, chapter 3); Go's net
		// package sets it on every listening socket, and so does this one.
		err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		n.call(fmt.Sprintf("setsockopt(%d, SOL_SOCKET, SO_REUSEADDR, 1)", fd), "0", err)
		if err != nil {
			return fd, os.NewSyscallError("setsockopt SO_REUSEADDR", err)
		}
		err = unix.Bind(fd, sa)
		n.call(fmt.Sprintf("bind(%d, %s)", fd, addrString(sa)), "0", err)
		if err != nil {
			return fd, os.NewSyscallError("bind "+addrString(sa), err)
		}
	}
	// endregion bind

	// region chmod
	// Exercise 2: chmod the file, not the socket (fchmod on the descriptor
	// succeeds and changes nothing on disk). Between bind and listen no
	// client can connect yet, so nobody slips in under the old mode.
	if u, ok := sa.(*unix.SockaddrUnix); ok && mode != 0 {
		err := unix.Chmod(u.Name, mode)
		n.call(fmt.Sprintf("chmod(%q, %04o)", u.Name, mode), "0", err)
		if err != nil {
			return fd, errors.Join(os.NewSyscallError("chmod "+u.Name, err), unlinkSocket(n, sa))
		}
	}
	// endregion chmod

	// region listen
	// From here on the kernel queues connections for this socket, up to
	// backlog+1 of them, until accept. A Unix socket's file exists from
	// bind on, but a connect before listen is refused.
	err = unix.Listen(fd, backlog)
	n.call(fmt.Sprintf("listen(%d, %d)", fd, backlog), "0", err)
	if err != nil {
		return fd, errors.Join(os.NewSyscallError("listen "+addrString(sa), err), unlinkSocket(n, sa))
	}
	// endregion listen

	// region getsockname
	bound, err := unix.Getsockname(fd)
	local := addrString(bound)
	n.call(fmt.Sprintf("getsockname(%d)", fd), local, err)
	if err != nil {
		return fd, errors.Join(os.NewSyscallError(fmt.Sprintf("getsockname %d", fd), err), unlinkSocket(n, sa))
	}
	fmt.Fprintf(w, "listening on %s\n", local)
	// endregion getsockname
	return fd, nil
}

// checkStale returns nil if the file at sa is a socket nobody listens on.
func checkStale(n narrator, sa *unix.SockaddrUnix) error {
	var st unix.Stat_t
	err := unix.Lstat(sa.Name, &st)
	n.call(fmt.Sprintf("lstat(%q, {st_mode=%s})", sa.Name, fileMode(st.Mode)), "0", err)
	if err != nil {
		return os.NewSyscallError("lstat", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		return errors.New("a file that is not a socket is in the way")
	}
	probe, err := newSocket(n, unix.AF_UNIX, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	err = unix.Connect(probe, sa)
	n.call(fmt.Sprintf("connect(%d, %s)", probe, sa.Name), "0", err)
	closeFD(n, probe)
	switch err {
	case unix.ECONNREFUSED: // a socket file with no socket behind it
		return nil
	case nil:
		return errors.New("another server is listening there")
	}
	return os.NewSyscallError("connect", err)
}

// region accept
// acceptConn takes the oldest connection off the listening socket's accept
// queue, waiting for one if the queue is empty. A Unix client rarely binds,
// so its address is usually unnamed.
func acceptConn(n narrator, fd int) (int, error) {
	cfd, peer, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
	n.call(fmt.Sprintf("accept4(%d, %s, SOCK_CLOEXEC)", fd, addrString(peer)), strconv.Itoa(cfd), err)
	if err != nil {
		return -1, os.NewSyscallError("accept4", err)
	}
	return cfd, nil
}

// endregion accept

// region serve
// serve echoes one client's lines until the client closes its end, then
// closes the connection.
func serve(ctx context.Context, n narrator, w io.Writer, fd, bufsize, uid int) (err error) {
	defer func() { err = errors.Join(err, closeFD(n, fd)) }()
	stop := wakeOnCancel(ctx, n, fd) // a silent client must not hold up Ctrl-C
	defer stop()

	peer, err := showConn(n, w, fd)
	if err != nil {
		return err
	}
	// Exercise 3: the credentials of this connection's peer, not of the
	// listening socket (whose SO_PEERCRED is the server itself).
	if uid >= 0 {
		cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil {
			return os.NewSyscallError("getsockopt SO_PEERCRED", err)
		}
		if int(cred.Uid) != uid {
			return fmt.Errorf("%s: pid %d runs as uid %d, not %d: refused", peer, cred.Pid, cred.Uid, uid)
		}
	}
	if err := echo(n, fd, bufsize); err != nil {
		return fmt.Errorf("%s: %w", peer, err)
	}
	return nil
}

// endregion serve
