//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// This file holds the calls earlier chapters explained, which this
// chapter's server and client both use.

// region sockaddr
// sockaddr converts an address to the form bind and connect take: the C
// structs sockaddr_in and sockaddr_in6, which x/sys calls SockaddrInet4 and
// SockaddrInet6. Port is a plain int here; x/sys writes it into the struct
// in network byte order (big-endian), as the kernel expects.
func sockaddr(a netip.AddrPort) (unix.Sockaddr, error) {
	ip := a.Addr()
	if ip.Is4() {
		return &unix.SockaddrInet4{Port: int(a.Port()), Addr: ip.As4()}, nil
	}
	if ip.Zone() != "" {
		return nil, fmt.Errorf("%s: this program takes no IPv6 zone", a)
	}
	return &unix.SockaddrInet6{Port: int(a.Port()), Addr: ip.As16()}, nil
}

// endregion sockaddr

// region newSocket
// newSocket asks the kernel for a socket, always with SOCK_CLOEXEC so that
// the descriptor does not leak into programs this one might exec.
func newSocket(n narrator, domain, typ, proto int) (int, error) {
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
	n.call(fmt.Sprintf("socket(%s, %s|SOCK_CLOEXEC, %s)", domainName(domain), typeName(typ), protoName(proto)),
		strconv.Itoa(fd), err)
	if err != nil {
		what := "socket " + domainName(domain) + " " + typeName(typ)
		if proto != 0 {
			what += " " + protoName(proto)
		}
		return -1, os.NewSyscallError(what, err)
	}
	return fd, nil
}

func closeFD(n narrator, fd int) error {
	err := unix.Close(fd)
	n.call(fmt.Sprintf("close(%d)", fd), "0", err)
	return os.NewSyscallError("close "+strconv.Itoa(fd), err) // nil if err is nil
}

// endregion newSocket

// region wake
// wakeOnCancel shuts fd down when ctx ends. On Linux that wakes a call
// blocked on it: accept4 on a listening socket fails with EINVAL, read on a
// connected one returns 0, and connect on a socket still in SYN_SENT fails.
// Call the function it returns before closing fd, so that shutdown can
// never hit a number the kernel has handed out again.
// SHUT_RD, not SHUT_RDWR: it sends nothing. The FIN leaves with close, once
// this end is done; a FIN sent now would invite the peer to write into a
// socket that no longer reads, and its kernel's RST would fail the read
// that is about to return 0.
func wakeOnCancel(ctx context.Context, n narrator, fd int) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			// Hold the narrator across the call, so that the call this
			// wakes is narrated after the shutdown that woke it.
			n.mu.Lock()
			defer n.mu.Unlock()
			err := unix.Shutdown(fd, unix.SHUT_RD)
			n.print(fmt.Sprintf("shutdown(%d, SHUT_RD)", fd), "0", err)
		case <-done:
		}
	}()
	return func() { close(done); <-stopped }
}

// endregion wake

// region showConn
// showConn asks the kernel for both ends of fd's connection and prints the
// five values that name it: protocol, local IP and port, remote IP and port.
// The other end prints the same five, with local and remote swapped.
func showConn(n narrator, w io.Writer, fd int) (peer string, err error) {
	sa, err := unix.Getsockname(fd)
	local := addrString(sa)
	n.call(fmt.Sprintf("getsockname(%d)", fd), local, err)
	if err != nil {
		return "", os.NewSyscallError(fmt.Sprintf("getsockname %d", fd), err)
	}
	sa, err = unix.Getpeername(fd)
	peer = addrString(sa)
	n.call(fmt.Sprintf("getpeername(%d)", fd), peer, err)
	if err != nil {
		return "", os.NewSyscallError(fmt.Sprintf("getpeername %d", fd), err)
	}
	fmt.Fprintf(w, "connection: TCP, local %s, remote %s\n", local, peer)
	return peer, nil
}

// endregion showConn

// pollEvents names the bits poll set in revents.
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
