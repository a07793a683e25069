//go:build linux

// The client mode of chapter 4's program: it opens many connections at once
// and reports which handshakes the kernel completed.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// region client
// runClient starts cfg.conns connections to cfg.addr at once: a non-blocking
// connect sends the SYN and returns without waiting for the handshake. Then
// it reports which handshakes the kernel completed, and waits for the rest.
func runClient(ctx context.Context, cfg config, n narrator, w io.Writer) (err error) {
	sa, err := sockaddr(cfg.addr)
	if err != nil {
		return err
	}
	domain := unix.AF_INET6
	if cfg.addr.Addr().Is4() {
		domain = unix.AF_INET
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			err = errors.Join(err, closeFD(n, fd))
		}
	}()
	for range cfg.conns {
		fd, err := newSocket(n, domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			return err
		}
		fds = append(fds, fd)
		err = unix.Connect(fd, sa)
		n.call(fmt.Sprintf("connect(%d, %s)", fd, cfg.addr), "0", err)
		if err != nil && err != unix.EINPROGRESS {
			return os.NewSyscallError("connect "+cfg.addr.String(), err)
		}
	}
	// On loopback a handshake takes microseconds: half a second is plenty
	// for every one the server's kernel is willing to complete now.
	waiting, err := handshakes(ctx, n, w, fds, cfg.addr, 500*time.Millisecond)
	if err != nil || waiting == 0 {
		return err
	}
	fmt.Fprintf(w, "waiting up to %v for the other %d (Ctrl-C stops)\n", cfg.wait, waiting)
	_, err = handshakes(ctx, n, w, fds, cfg.addr, cfg.wait)
	return err
}

// endregion client

// region handshakes
// handshakes waits until no connection in fds is in SYN_SENT any more, or
// for limit, or until ctx ends; then it asks the kernel for each one's TCP
// state and reports how many still wait for the server's SYN-ACK.
func handshakes(ctx context.Context, n narrator, w io.Writer, fds []int, addr netip.AddrPort, limit time.Duration) (int, error) {
	for deadline := time.Now().Add(limit); ctx.Err() == nil && time.Now().Before(deadline); {
		var pending []unix.PollFd
		for _, fd := range fds {
			if i, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO); err == nil && i.State == unix.BPF_TCP_SYN_SENT {
				pending = append(pending, unix.PollFd{Fd: int32(fd), Events: unix.POLLOUT})
			}
		}
		if len(pending) == 0 {
			break
		}
		// A socket becomes writable when its handshake ends. Wake every
		// 100 ms anyway, to notice the deadline and Ctrl-C.
		unix.Poll(pending, 100)
	}
	waiting := 0
	for _, fd := range fds {
		info, err := tcpInfo(n, fd, func(*unix.TCPInfo) string { return "" })
		if err != nil {
			return 0, err
		}
		switch info.State {
		case unix.BPF_TCP_SYN_SENT:
			waiting++
		case unix.BPF_TCP_CLOSE: // the handshake failed; SO_ERROR says why
			soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			n.call(fmt.Sprintf("getsockopt(%d, SOL_SOCKET, SO_ERROR)", fd), unix.ErrnoName(unix.Errno(soerr)), err)
			return 0, os.NewSyscallError("connect "+addr.String(), unix.Errno(soerr))
		}
	}
	fmt.Fprintf(w, "%d of %d connected", len(fds)-waiting, len(fds))
	if waiting > 0 {
		fmt.Fprintf(w, ", %d waiting in SYN_SENT", waiting)
	}
	fmt.Fprintln(w)
	return waiting, nil
}

// endregion handshakes
