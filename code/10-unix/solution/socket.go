//go:build linux

// The calls of earlier chapters that this program repeats: making a socket,
// closing it, the address in the form bind and connect take, and showing a
// connection's two ends; and the small helpers that show bytes and file
// modes in the narration.

package main

import (
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// region sockaddr
// sockaddr converts an address to the form bind takes: the C structs
// sockaddr_in and sockaddr_in6, which x/sys calls SockaddrInet4 and
// SockaddrInet6. Port is a plain int here; x/sys writes it into the struct
// in network byte order (big-endian), as the kernel expects.
func sockaddr(a netip.AddrPort) (unix.Sockaddr, error) {
	ip := a.Addr()
	if ip.Is4() {
		return &unix.SockaddrInet4{Port: int(a.Port()), Addr: ip.As4()}, nil
	}
	if ip.Zone() != "" {
		return nil, fmt.Errorf("bind %s: this program takes no IPv6 zone", a)
	}
	return &unix.SockaddrInet6{Port: int(a.Port()), Addr: ip.As16()}, nil
}

// family is the address family a socket needs for the address sa.
func family(sa unix.Sockaddr) int {
	switch sa.(type) {
	case *unix.SockaddrUnix:
		return unix.AF_UNIX
	case *unix.SockaddrInet4:
		return unix.AF_INET
	}
	return unix.AF_INET6
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

// quote shows bytes as strace does: quoted, escaped, at most 32 of them.
func quote(b []byte) string {
	if len(b) > 32 {
		return strconv.Quote(string(b[:32])) + "..."
	}
	return strconv.Quote(string(b))
}

// region showConn
// showConn asks the kernel for both ends of fd's connection and prints
// them, with the protocol: TCP, or Unix for an AF_UNIX stream socket.
func showConn(n narrator, w io.Writer, fd int) (peer string, err error) {
	sa, err := unix.Getsockname(fd)
	local := addrString(sa)
	n.call(fmt.Sprintf("getsockname(%d)", fd), local, err)
	if err != nil {
		return "", os.NewSyscallError(fmt.Sprintf("getsockname %d", fd), err)
	}
	proto := "TCP"
	if _, ok := sa.(*unix.SockaddrUnix); ok {
		proto = "Unix"
	}
	sa, err = unix.Getpeername(fd)
	peer = addrString(sa)
	n.call(fmt.Sprintf("getpeername(%d)", fd), peer, err)
	if err != nil {
		return "", os.NewSyscallError(fmt.Sprintf("getpeername %d", fd), err)
	}
	fmt.Fprintf(w, "connection: %s, local %s, remote %s\n", proto, local, peer)
	if proto == "Unix" {
		return peer, peerCred(n, w, fd)
	}
	return peer, nil
}

// endregion showConn

// fileMode shows a st_mode as strace does: S_IFSOCK|0755.
func fileMode(m uint32) string {
	kinds := map[uint32]string{unix.S_IFSOCK: "S_IFSOCK", unix.S_IFREG: "S_IFREG", unix.S_IFDIR: "S_IFDIR", unix.S_IFLNK: "S_IFLNK"}
	kind, ok := kinds[m&unix.S_IFMT]
	if !ok {
		kind = fmt.Sprintf("%#o", m&unix.S_IFMT)
	}
	return fmt.Sprintf("%s|%04o", kind, m&^unix.S_IFMT)
}
