//go:build linux

// The calls of earlier chapters that this program repeats: making a socket,
// closing it, the address in the form bind and sendto take; how Ctrl-C
// wakes a call blocked on a socket; and the small helpers that show bytes
// and flags in the narration.

package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// sockaddr converts an address to the form bind and sendto take: the C
// structs sockaddr_in and sockaddr_in6, which x/sys calls SockaddrInet4 and
// SockaddrInet6.
func sockaddr(a netip.AddrPort) (unix.Sockaddr, error) {
	ip := a.Addr()
	if ip.Is4() {
		return &unix.SockaddrInet4{Port: int(a.Port()), Addr: ip.As4()}, nil
	}
	if ip.Zone() != "" {
		return nil, fmt.Errorf("-addr %s: this program takes no IPv6 zone", a)
	}
	return &unix.SockaddrInet6{Port: int(a.Port()), Addr: ip.As16()}, nil
}

// family is the address family a socket needs for the address sa.
func family(sa unix.Sockaddr) int {
	if _, ok := sa.(*unix.SockaddrInet4); ok {
		return unix.AF_INET
	}
	return unix.AF_INET6
}

// newSocket asks the kernel for a socket, always with SOCK_CLOEXEC so that
// the descriptor does not leak into programs this one might exec.
func newSocket(n narrator, domain, typ, proto int) (int, error) {
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
	n.call(fmt.Sprintf("socket(%s, %s|SOCK_CLOEXEC, %s)", domainName(domain), typeName(typ), protoName(proto)),
		strconv.Itoa(fd), err)
	if err != nil {
		return -1, os.NewSyscallError("socket "+domainName(domain)+" "+typeName(typ), err)
	}
	return fd, nil
}

func closeFD(n narrator, fd int) error {
	err := unix.Close(fd)
	n.call(fmt.Sprintf("close(%d)", fd), "0", err)
	return os.NewSyscallError("close "+strconv.Itoa(fd), err) // nil if err is nil
}

// region wake
// wakeOnCancel shuts fd down when ctx ends, which wakes a recvfrom or read
// blocked on it: it returns 0. On a socket with no connection (the server's,
// an unconnected client's) shutdown itself fails with ENOTCONN, there being
// no connection to shut down, but Linux marks the socket shut and wakes the
// waiting call all the same. Call the function it returns before closing
// fd, so that shutdown can never hit a number the kernel has handed out
// again.
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
			err := unix.Shutdown(fd, unix.SHUT_RDWR)
			n.print(fmt.Sprintf("shutdown(%d, SHUT_RDWR)", fd), "0", err)
		case <-done:
		}
	}()
	return func() { close(done); <-stopped }
}

// endregion wake

// quote shows bytes as strace does: quoted, escaped, at most 32 of them.
func quote(b []byte) string {
	if len(b) > 32 {
		return strconv.Quote(string(b[:32])) + "..."
	}
	return strconv.Quote(string(b))
}

// flagNames shows the flags of a receive as strace does: MSG_PEEK|MSG_TRUNC.
func flagNames(flags int) string {
	var names []string
	for _, f := range []struct {
		bit  int
		name string
	}{{unix.MSG_PEEK, "MSG_PEEK"}, {unix.MSG_TRUNC, "MSG_TRUNC"}, {unix.MSG_DONTWAIT, "MSG_DONTWAIT"}} {
		if flags&f.bit != 0 {
			names = append(names, f.name)
			flags &^= f.bit
		}
	}
	if flags != 0 || len(names) == 0 {
		names = append(names, strconv.Itoa(flags))
	}
	return strings.Join(names, "|")
}
