//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// region resolve
// resolve turns HOST:SERVICE into the socket addresses it names, in the
// order the resolver gives them, which is the order to try them in. C calls
// getaddrinfo; x/sys has no such call, because getaddrinfo is not a system
// call but a library function that reads files (/etc/nsswitch.conf,
// /etc/hosts, /etc/services) and may ask a DNS server. Go's net.Resolver
// does the same work, in Go or, with GODEBUG=netdns=cgo, by calling the C
// library's getaddrinfo.
func resolve(ctx context.Context, n narrator, addr string, passive bool) ([]netip.AddrPort, error) {
	host, service, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("-addr %s: want HOST:SERVICE: %w", addr, err)
	}
	var r net.Resolver
	port, err := r.LookupPort(ctx, "tcp", service)
	n.call(fmt.Sprintf("LookupPort(tcp, %q)", service), strconv.Itoa(port), err)
	if err != nil {
		return nil, fmt.Errorf("-addr %s: %w", addr, err)
	}
	var ips []netip.Addr
	switch {
	case host == "" && passive:
		// No host: every address of the machine, as getaddrinfo gives
		// for a NULL host with AI_PASSIVE: [::] and 0.0.0.0.
		ips = []netip.Addr{netip.IPv6Unspecified(), netip.IPv4Unspecified()}
	case host == "":
		return nil, fmt.Errorf("-addr %s: a client needs a host to connect to", addr)
	default:
		// An address needs no lookup (AI_NUMERICHOST, in C's terms).
		if ip, err := netip.ParseAddr(host); err == nil {
			ips = []netip.Addr{ip}
			break
		}
		ips, err = r.LookupNetIP(ctx, "ip", host)
		n.call(fmt.Sprintf("LookupNetIP(ip, %q)", host), addrList(ips), err)
		if err != nil {
			return nil, fmt.Errorf("-addr %s: %w", addr, err)
		}
	}
	addrs := make([]netip.AddrPort, len(ips))
	for i, ip := range ips {
		// Go's own resolver gives an IPv4 address in its IPv6 form,
		// ::ffff:127.0.0.1; Unmap makes it 127.0.0.1, an AF_INET address.
		addrs[i] = netip.AddrPortFrom(ip.Unmap(), uint16(port))
	}
	return addrs, nil
}

// endregion resolve

// region listenAll
// listenAll makes one listening socket for each address, in order: each
// socket has one family and one address. It prints "listening on ADDR"
// for each. With port 0 the kernel picks the first socket's port, and the
// others take the same one, so that one port serves every address.
// CS:APP's open_listenfd stops at the first address that works; a client
// that tries another (::1 where the server took 127.0.0.1) is refused.
func listenAll(n narrator, w io.Writer, addrs []netip.AddrPort, cfg config) ([]int, error) {
	var fds []int
	var port uint16 // the port the first socket got
	for _, a := range addrs {
		if a.Port() == 0 && port != 0 {
			a = netip.AddrPortFrom(a.Addr(), port)
		}
		fd, bound, err := listenOn(n, w, a, cfg)
		if err != nil {
			return fds, err
		}
		fds, port = append(fds, fd), bound.Port()
	}
	return fds, nil
}

// endregion listenAll

// listenOn makes one listening socket, as chapters 2 to 4 did: socket,
// SO_REUSEADDR, bind, listen, and getsockname to learn the port. The
// address decides the family. It prints "listening on ADDR" and returns
// the socket and the address it is bound to.
func listenOn(n narrator, w io.Writer, a netip.AddrPort, cfg config) (fd int, bound netip.AddrPort, err error) {
	fd, err = newSocket(n, family(a), unix.SOCK_STREAM, 0)
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

	// Every worker's socket on one port: without SO_REUSEPORT the
	// second bind fails with EADDRINUSE.
	if cfg.reuseport {
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

// region poll
// pollAll waits until at least one of pfds is ready and sets its Revents.
// For a listening socket, POLLIN means a connection waits for accept;
// POLLHUP, that the socket was shut down.
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

// acceptConn takes the oldest connection off the listening socket's accept
// queue. The kernel writes the client's address into a buffer it is given,
// and returns a new descriptor for the connection.
func acceptConn(n narrator, fd int) (int, error) {
	cfd, peer, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
	n.call(fmt.Sprintf("accept4(%d, %s, SOCK_CLOEXEC)", fd, addrString(peer)), strconv.Itoa(cfd), err)
	if err != nil {
		return -1, os.NewSyscallError("accept4", err)
	}
	return cfd, nil
}
