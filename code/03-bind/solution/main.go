//go:build linux

//go:debug containermaxprocs=0

// Command 03-bind makes one TCP socket and gives it an address with bind: an
// IP address and a port. It reads back the address the kernel recorded with
// getsockname, so that port 0 shows which port the kernel chose, then holds
// the socket until Ctrl-C so that you can look at it with ss, and closes it,
// narrating each call.
//
// This is the reference solution to the chapter's exercises.
//
//	go run ./code/03-bind/solution                        # bind 127.0.0.1:8080
//	go run ./code/03-bind/solution -addr 0.0.0.0:8080     # every local IPv4 address
//	go run ./code/03-bind/solution -addr '[::1]:0'        # IPv6 loopback, any free port
//	go run ./code/03-bind/solution -addr '[fe80::1%lo]:0' # a link-local address, with its zone
//	go run ./code/03-bind/solution -reuseaddr=false       # without SO_REUSEADDR
//	go run ./code/03-bind/solution -reuseport             # with SO_REUSEPORT
//	go run ./code/03-bind/solution -q                     # only the bound address
//
// Exercise 1 needs no code. [::1] and [::] give AF_INET6 sockets, 0.0.0.0 an
// AF_INET one, and port 0 a port from the ephemeral range. While one copy
// holds [::]:PORT, -addr 0.0.0.0:PORT -reuseaddr=false fails with EADDRINUSE:
// IPV6_V6ONLY is 0 by default, so the IPv6 wildcard also owns the IPv4 port.
//
// It needs Linux: the book's programs from here on are Linux servers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

type config struct {
	addr      netip.AddrPort // the local address to bind
	quiet     bool           // do not narrate system calls
	reuseaddr bool           // set SO_REUSEADDR before bind
	reuseport bool           // set SO_REUSEPORT before bind
}

func main() {
	var cfg config
	flag.TextVar(&cfg.addr, "addr", netip.MustParseAddrPort("127.0.0.1:8080"), "local `address` to bind, IP:PORT or [IPv6]:PORT; port 0 lets the kernel choose")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	// On by default, as Go's net package sets it on every listening socket.
	flag.BoolVar(&cfg.reuseaddr, "reuseaddr", true, "set SO_REUSEADDR before bind")
	flag.BoolVar(&cfg.reuseport, "reuseport", false, "set SO_REUSEPORT before bind")
	flag.Parse()
	// Ctrl-C (SIGINT) and kill (SIGTERM) cancel ctx instead of ending the
	// program at once, so that run can close its socket on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, w io.Writer) (err error) {
	n := newNarrator(w, cfg.quiet)

	// region create
	// The address decides the family: an IPv4 address needs an AF_INET
	// socket, an IPv6 one an AF_INET6 socket.
	domain := unix.AF_INET6
	if cfg.addr.Addr().Is4() {
		domain = unix.AF_INET
	}
	fd, err := newSocket(n, domain, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeFD(n, fd)) }()
	// endregion create

	// region reuseaddr
	// SO_REUSEADDR must be set before bind: bind is where the kernel checks
	// whether the address is free.
	if cfg.reuseaddr {
		err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		n.call(fmt.Sprintf("setsockopt(%d, SOL_SOCKET, SO_REUSEADDR, 1)", fd), "0", err)
		if err != nil {
			return os.NewSyscallError("setsockopt SO_REUSEADDR", err)
		}
	}
	// endregion reuseaddr

	// Exercise 4. SO_REUSEPORT lets sockets share an address only if every
	// one of them set it, before its bind. And, socket(7) says, only if
	// they have the effective user ID of the first socket's bind, which
	// keeps another user's process from hijacking a share of the port: so a
	// copy run with -reuseport -reuseaddr=false as another user than the
	// first gets EADDRINUSE. (With SO_REUSEADDR on both, and neither
	// listening, the two may still share it: that is the other option's
	// rule, shown by the chapter's "twice" transcript.)
	if cfg.reuseport {
		err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1)
		n.call(fmt.Sprintf("setsockopt(%d, SOL_SOCKET, SO_REUSEPORT, 1)", fd), "0", err)
		if err != nil {
			return os.NewSyscallError("setsockopt SO_REUSEPORT", err)
		}
	}

	// region bind
	sa, err := sockaddr(cfg.addr)
	if err != nil {
		return err
	}
	err = unix.Bind(fd, sa)
	n.call(fmt.Sprintf("bind(%d, %s)", fd, cfg.addr), "0", err)
	if err != nil {
		return os.NewSyscallError("bind "+cfg.addr.String(), err)
	}
	// endregion bind

	// Exercise 2. The kernel's own answer, not the flag's: 1 when the
	// option is set, 0 when it is not.
	reuse, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR)
	n.call(fmt.Sprintf("getsockopt(%d, SOL_SOCKET, SO_REUSEADDR)", fd), strconv.Itoa(reuse), err)
	if err != nil {
		return os.NewSyscallError("getsockopt SO_REUSEADDR", err)
	}

	// region getsockname
	// With port 0 the kernel chose a port; only getsockname can say which.
	bound, err := unix.Getsockname(fd)
	local := boundString(bound)
	n.call(fmt.Sprintf("getsockname(%d)", fd), local, err)
	if err != nil {
		return os.NewSyscallError(fmt.Sprintf("getsockname %d", fd), err)
	}
	fmt.Fprintf(w, "bound to %s\n", local)
	// endregion getsockname

	// region hold
	pid := os.Getpid()
	fmt.Fprintf(w, "holding the socket in pid %d; from another terminal try\n", pid)
	fmt.Fprintf(w, "  ls -l /proc/%d/fd\n", pid)
	fmt.Fprintf(w, "  go run ./code/03-bind -addr %s -reuseaddr=false\n", local)
	fmt.Fprintf(w, "Ctrl-C (SIGINT) or kill %d (SIGTERM) closes it and exits\n", pid)
	<-ctx.Done()
	// endregion hold
	return nil
}

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
	sa := &unix.SockaddrInet6{Port: int(a.Port()), Addr: ip.As16()}
	// Exercise 3. fe80::1 may exist on every interface, so a link-local
	// address needs a zone to say which one; the kernel takes it as the
	// interface's index, sin6_scope_id, and refuses the bind (EINVAL)
	// without one.
	if zone := ip.Zone(); zone != "" {
		ifi, err := net.InterfaceByName(zone)
		if err != nil {
			return nil, fmt.Errorf("bind %s: zone %s: %w", a, zone, err)
		}
		sa.ZoneId = uint32(ifi.Index)
	}
	return sa, nil
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

// boundString is narrate.go's addrString, which every chapter shares, plus
// exercise 3: getsockname returns the zone of a link-local address too, and
// without it the address printed could not be bound again.
func boundString(sa unix.Sockaddr) string {
	if a, ok := sa.(*unix.SockaddrInet6); ok && a.ZoneId != 0 {
		ip := netip.AddrFrom16(a.Addr).WithZone(zoneName(a.ZoneId))
		return netip.AddrPortFrom(ip, uint16(a.Port)).String()
	}
	return addrString(sa)
}

// zoneName is the name of the interface with index id, or the number itself.
func zoneName(id uint32) string {
	if ifi, err := net.InterfaceByIndex(int(id)); err == nil {
		return ifi.Name
	}
	return strconv.FormatUint(uint64(id), 10)
}
