//go:build linux

// Passing a connection from one process to another. The acceptor (-handoff)
// accepts TCP clients and sends each connection's descriptor over a Unix
// socket to the worker (-worker), which serves it. What travels is not a
// number but the open socket itself: the kernel installs a new descriptor
// for it in the worker, and the acceptor closes its own.

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

// runHandoff is the acceptor. It connects to the worker at cfg.handoff,
// listens on sa (TCP), and passes every connection it accepts to the
// worker, never reading a byte of it.
func runHandoff(ctx context.Context, cfg config, n narrator, w io.Writer, sa unix.Sockaddr) (err error) {
	to, err := parseAddr(cfg.handoff)
	if err != nil {
		return err
	}
	if _, ok := to.(*unix.SockaddrUnix); !ok {
		return fmt.Errorf("-handoff %s: descriptors travel only over a Unix socket", cfg.handoff)
	}
	wfd, err := dial(ctx, n, to)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeFD(n, wfd)) }()
	fd, err := listenOn(n, w, sa, cfg.backlog, 0)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, unlinkSocket(n, sa), closeFD(n, fd)) }()
	stop := wakeOnCancel(ctx, n, fd)
	defer stop()
	for {
		cfd, err := acceptConn(n, fd)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		// The worker has the connection now, and the client stays
		// connected only through the worker's descriptor once ours is closed.
		err = errors.Join(sendFD(n, wfd, cfd), closeFD(n, cfd))
		if err != nil {
			return err // without a worker there is nobody to serve clients
		}
	}
}

// region sendFD
// sendFD sends the descriptor fd over the Unix socket sock: one byte of
// data (a stream socket sends no message without any), and a control
// message of type SCM_RIGHTS that carries fd. unix.UnixRights builds it.
func sendFD(n narrator, sock, fd int) error {
	err := unix.Sendmsg(sock, []byte("c"), unix.UnixRights(fd), nil, 0)
	n.call(fmt.Sprintf("sendmsg(%d, \"c\", [SCM_RIGHTS %d], 0)", sock, fd), "1", err)
	return os.NewSyscallError("sendmsg SCM_RIGHTS", err)
}

// endregion sendFD

// region recvFD
// recvFD receives one descriptor sent by sendFD. The kernel installs it
// in this process's table, at the lowest free number, which need not be
// the number the sender had; MSG_CMSG_CLOEXEC gives it close-on-exec, as
// SOCK_CLOEXEC does for the descriptors this program makes itself. It
// returns -1 at the end of the stream: the acceptor has gone.
func recvFD(n narrator, sock int) (int, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4)) // room for one int32 descriptor
	got, oobn, _, _, err := unix.Recvmsg(sock, buf, oob, unix.MSG_CMSG_CLOEXEC)
	fds, perr := []int(nil), error(nil)
	if err == nil && oobn > 0 {
		fds, perr = parseRights(oob[:oobn])
	}
	rights := "[]"
	if len(fds) > 0 {
		rights = fmt.Sprintf("[SCM_RIGHTS %d]", fds[0])
	}
	n.call(fmt.Sprintf("recvmsg(%d, %s, %s, MSG_CMSG_CLOEXEC)", sock, quote(buf[:max(got, 0)]), rights), strconv.Itoa(got), err)
	switch {
	case err != nil:
		return -1, os.NewSyscallError("recvmsg", err)
	case perr != nil:
		return -1, perr
	case got == 0:
		return -1, nil
	case len(fds) != 1:
		for _, fd := range fds {
			closeFD(n, fd) // descriptors we did not ask for are ours to close
		}
		return -1, fmt.Errorf("recvmsg: %d descriptors, want 1", len(fds))
	}
	return fds[0], nil
}

// parseRights takes the descriptors out of SCM_RIGHTS control messages.
func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("recvmsg: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			return nil, fmt.Errorf("recvmsg: %w", err)
		}
		fds = append(fds, got...)
	}
	return fds, nil
}

// endregion recvFD

// region worker
// serveWorker serves the acceptor connected on fd: each descriptor it
// receives is a TCP client, served as serve serves any client, until the
// acceptor closes its end.
func serveWorker(ctx context.Context, n narrator, w, stderr io.Writer, fd, bufsize int) (err error) {
	defer func() { err = errors.Join(err, closeFD(n, fd)) }()
	stop := wakeOnCancel(ctx, n, fd)
	defer stop()
	if _, err := showConn(n, w, fd); err != nil {
		return err
	}
	for ctx.Err() == nil {
		cfd, err := recvFD(n, fd)
		if err != nil || cfd < 0 {
			return err
		}
		if err := serve(ctx, n, w, cfd, bufsize, -1); err != nil {
			fmt.Fprintln(stderr, err)
		}
	}
	return nil
}

// endregion worker
