//go:build linux

// The client mode of chapter 5's program: it opens connections, reports
// which handshakes completed, then sends a line on each and prints the
// reply, or with -hold sends nothing at all.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
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
	if err != nil {
		return err
	}
	if waiting > 0 {
		fmt.Fprintf(w, "waiting up to %v for the other %d (Ctrl-C stops)\n", cfg.wait, waiting)
		if waiting, err = handshakes(ctx, n, w, fds, cfg.addr, cfg.wait); err != nil || waiting > 0 {
			return err
		}
	}
	if cfg.hold {
		fmt.Fprintln(w, "sending nothing until Ctrl-C")
		<-ctx.Done()
		return nil
	}
	return talk(ctx, n, w, fds, cfg.msg, cfg.lines)
}

// endregion client

// region talk
// talk sends msg as a line, lines times, on each connection in turn and
// prints each reply before it sends the next line. The sockets are
// non-blocking, so it polls until the reply has arrived: for as long as the
// server is busy with other clients.
func talk(ctx context.Context, n narrator, w io.Writer, fds []int, msg string, lines int) error {
	for _, fd := range fds {
		for range lines {
			line := []byte(msg + "\n")
			sent, err := unix.Write(fd, line)
			n.call(fmt.Sprintf("write(%d, %q, %d)", fd, line, len(line)), strconv.Itoa(sent), err)
			if err != nil {
				return os.NewSyscallError("write", err)
			}
			for ready := 0; ready == 0; { // wake every 100 ms to notice Ctrl-C
				if ctx.Err() != nil {
					return nil
				}
				ready, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 100)
			}
			buf := make([]byte, 1024)
			got, err := unix.Read(fd, buf)
			n.call(fmt.Sprintf("read(%d, %q, %d)", fd, buf[:max(got, 0)], len(buf)), strconv.Itoa(got), err)
			if err != nil {
				return os.NewSyscallError("read", err)
			}
			if got == 0 { // end of file: the server hung up before it answered
				return fmt.Errorf("read %d: the server closed the connection", fd)
			}
			fmt.Fprint(w, string(buf[:got]))
		}
		// Exercise 4. Say we are done with this connection before the next:
		// the server answers lines until it reads end of file, and it will
		// not accept our next connection before that. SHUT_WR sends the
		// end of file and leaves the descriptor for the deferred close.
		err := unix.Shutdown(fd, unix.SHUT_WR)
		n.call(fmt.Sprintf("shutdown(%d, SHUT_WR)", fd), "0", err)
		if err != nil {
			return os.NewSyscallError("shutdown", err)
		}
	}
	return nil
}

// endregion talk

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

// tcpInfo reads TCP_INFO and narrates the state and what more shows of it.
func tcpInfo(n narrator, fd int, more func(*unix.TCPInfo) string) (*unix.TCPInfo, error) {
	info, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO)
	result := ""
	if err == nil {
		result = "{tcpi_state=" + stateName(info.State) + more(info) + "}"
	}
	n.call(fmt.Sprintf("getsockopt(%d, SOL_TCP, TCP_INFO)", fd), result, err)
	return info, os.NewSyscallError("getsockopt TCP_INFO", err)
}

// stateName names a TCP state as the kernel's TCP_INFO reports it.
func stateName(s uint8) string {
	return lookup(int(s), map[int]string{
		unix.BPF_TCP_ESTABLISHED: "TCP_ESTABLISHED", unix.BPF_TCP_SYN_SENT: "TCP_SYN_SENT",
		unix.BPF_TCP_CLOSE: "TCP_CLOSE", unix.BPF_TCP_CLOSE_WAIT: "TCP_CLOSE_WAIT", unix.BPF_TCP_LISTEN: "TCP_LISTEN",
	})
}
