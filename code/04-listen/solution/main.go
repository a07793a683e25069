//go:build linux

// Command 04-listen makes a TCP socket, binds it and calls listen, which turns
// it into a listening socket: from then on the kernel completes handshakes
// for it and queues the connections until the program accepts them. This
// server does not accept until told to, so that you can watch the queue fill
// up; its client mode opens many connections at once and reports which ones
// the kernel completed and which are still waiting.
//
// This is the reference solution to the chapter's exercises, the chapter's
// program changed as little as possible so that
//
//  1. SIGUSR2 prints the accept queue without accepting anything;
//  2. with -one, each SIGUSR1 accepts a single connection instead of all;
//  3. with -grow, each SIGUSR2 first calls listen again with twice the
//     backlog, then prints the queue.
//
// Try the exercises before you read it. Run it as the chapter's program:
//
//	go run ./code/04-listen/solution -backlog 2          # listen; accept nothing yet
//	go run ./code/04-listen/solution -client -n 5        # 5 connections to 127.0.0.1:8080
//	kill -USR1 PID                                       # the server accepts its queue
//	kill -USR2 PID                                       # the server prints its queue
//	go run ./code/04-listen/solution -backlog 0 -one     # each SIGUSR1 accepts one
//	go run ./code/04-listen/solution -grow               # each SIGUSR2 doubles the backlog
//	go run ./code/04-listen/solution -q                  # without the narration
//
// and grade it with go run ./tools/grade -program code/04-listen/solution 04.
//
// It needs Linux: it reads the queue with the TCP_INFO socket option.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type config struct {
	addr      netip.AddrPort // the local address to bind
	quiet     bool           // do not narrate system calls
	reuseaddr bool           // set SO_REUSEADDR before bind
	backlog   int            // the backlog argument of listen

	accept <-chan os.Signal // each value: accept the whole queue (SIGUSR1)
	one    bool             // accept one connection per SIGUSR1, not the whole queue

	look <-chan os.Signal // each value: print the queue, accept nothing (SIGUSR2)
	grow bool             // on SIGUSR2, first listen again with twice the backlog

	client bool          // be the client: connect to addr
	conns  int           // how many connections the client opens
	wait   time.Duration // how long the client waits for them to complete
}

func main() {
	var cfg config
	flag.TextVar(&cfg.addr, "addr", netip.MustParseAddrPort("127.0.0.1:8080"), "`address` to listen on (or, with -client, to connect to), IP:PORT or [IPv6]:PORT; port 0 lets the kernel choose")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	// On by default, as Go's net package sets it on every listening socket.
	flag.BoolVar(&cfg.reuseaddr, "reuseaddr", true, "set SO_REUSEADDR before bind")
	// Small on purpose, so that a handful of clients fills the queue.
	flag.IntVar(&cfg.backlog, "backlog", 2, "the `backlog` argument of listen")
	flag.BoolVar(&cfg.one, "one", false, "accept one connection per SIGUSR1, not the whole queue")
	flag.BoolVar(&cfg.grow, "grow", false, "on SIGUSR2, call listen again with twice the backlog before printing the queue")
	flag.BoolVar(&cfg.client, "client", false, "be the client: open -n connections to -addr")
	flag.IntVar(&cfg.conns, "n", 1, "client: how many connections to open")
	flag.DurationVar(&cfg.wait, "wait", time.Minute, "client: how long to wait for every connection to complete")
	flag.Parse()
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	cfg.accept = usr1
	// Without Notify, the Go runtime ignores SIGUSR2: kill -USR2 would do
	// nothing at all.
	usr2 := make(chan os.Signal, 1)
	signal.Notify(usr2, syscall.SIGUSR2)
	cfg.look = usr2
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
	n := narrator{w: w, quiet: cfg.quiet}
	if cfg.client {
		return runClient(ctx, cfg, n, w)
	}

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

	// region listen
	// From here on the kernel answers connection requests for this socket
	// and queues completed connections, up to backlog+1, until accept.
	err = unix.Listen(fd, cfg.backlog)
	n.call(fmt.Sprintf("listen(%d, %d)", fd, cfg.backlog), "0", err)
	if err != nil {
		return os.NewSyscallError("listen "+cfg.addr.String(), err)
	}
	// endregion listen

	// region getsockname
	// With port 0 the kernel chose a port; only getsockname can say which.
	bound, err := unix.Getsockname(fd)
	local := addrString(bound)
	n.call(fmt.Sprintf("getsockname(%d)", fd), local, err)
	if err != nil {
		return os.NewSyscallError(fmt.Sprintf("getsockname %d", fd), err)
	}
	fmt.Fprintf(w, "listening on %s\n", local)
	// endregion getsockname
	if _, err := queueLen(n, w, fd); err != nil {
		return err
	}

	// region hold
	pid := os.Getpid()
	fmt.Fprintf(w, "not accepting until told; from another terminal try\n")
	fmt.Fprintf(w, "  go run ./code/04-listen -client -n %d -addr %s\n", cfg.backlog+3, local)
	fmt.Fprintf(w, "  ss -ltn src %s\n", local)
	if cfg.one {
		fmt.Fprintf(w, "  kill -USR1 %d    # accept one connection from the queue\n", pid)
	} else {
		fmt.Fprintf(w, "  kill -USR1 %d    # accept every connection in the queue\n", pid)
	}
	if cfg.grow {
		fmt.Fprintf(w, "  kill -USR2 %d    # double the backlog, then show the queue\n", pid)
	} else {
		fmt.Fprintf(w, "  kill -USR2 %d    # show the queue, accept nothing\n", pid)
	}
	fmt.Fprintf(w, "Ctrl-C (SIGINT) or kill %d (SIGTERM) closes it and exits\n", pid)
	backlog := cfg.backlog // what the last listen asked for
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-cfg.accept:
			if err := acceptAll(n, w, fd, cfg.one); err != nil {
				return err
			}
		case <-cfg.look:
			// Exercise 3: listen on a listening socket only sets a new
			// backlog; the queue and the connections in it stay. SYNs
			// dropped so far get in when their clients retransmit.
			if cfg.grow {
				backlog *= 2
				err := unix.Listen(fd, backlog)
				n.call(fmt.Sprintf("listen(%d, %d)", fd, backlog), "0", err)
				if err != nil {
					return os.NewSyscallError("listen "+local, err)
				}
			}
			// Exercise 1: TCP_INFO only reads the queue; nothing leaves it.
			if _, err := queueLen(n, w, fd); err != nil {
				return err
			}
		}
	}
	// endregion hold
}

// region queue
// queueLen asks the kernel how many connections wait in the accept queue.
// For a listening socket Linux's TCP_INFO reports the queue's length as
// tcpi_unacked and the backlog as tcpi_sacked: ss -ltn's Recv-Q and Send-Q.
func queueLen(n narrator, w io.Writer, fd int) (int, error) {
	info, err := tcpInfo(n, fd, func(i *unix.TCPInfo) string {
		return fmt.Sprintf(", tcpi_unacked=%d, tcpi_sacked=%d", i.Unacked, i.Sacked)
	})
	if err != nil {
		return 0, err
	}
	fmt.Fprintf(w, "accept queue: %d connections, backlog %d\n", info.Unacked, info.Sacked)
	return int(info.Unacked), nil
}

// endregion queue

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

// region acceptAll
// acceptAll accepts, and closes at once, every connection the queue holds
// now, or with one only the oldest of them. It asks how many first, so
// accept never waits for one to arrive, not even for one with an empty
// queue.
func acceptAll(n narrator, w io.Writer, fd int, one bool) error {
	queued, err := queueLen(n, w, fd)
	if err != nil {
		return err
	}
	if one {
		queued = min(queued, 1) // exercise 2
	}
	for range queued {
		cfd, peer, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
		n.call(fmt.Sprintf("accept4(%d, %s, SOCK_CLOEXEC)", fd, addrString(peer)), strconv.Itoa(cfd), err)
		if err != nil {
			return os.NewSyscallError("accept4", err)
		}
		if err := closeFD(n, cfd); err != nil {
			return err
		}
	}
	return nil
}

// endregion acceptAll

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

// addrString shows a socket address the way this book writes them.
func addrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	}
	return "?" // no address, as when a call failed
}

// narrator prints each system call the way strace shows it, unless quiet.
type narrator struct {
	w     io.Writer
	quiet bool
}

// call prints "call = result", or for a failure "call = -1 ENAME (Message)".
func (n narrator) call(call, result string, err error) {
	if n.quiet {
		return
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		msg := errno.Error()
		result = fmt.Sprintf("-1 %s (%s%s)", unix.ErrnoName(errno), strings.ToUpper(msg[:1]), msg[1:])
	}
	fmt.Fprintf(n.w, "%s = %s\n", call, result)
}

func domainName(d int) string {
	return lookup(d, map[int]string{unix.AF_UNIX: "AF_UNIX", unix.AF_INET: "AF_INET", unix.AF_INET6: "AF_INET6"})
}

func typeName(t int) string {
	if t&unix.SOCK_NONBLOCK != 0 {
		return typeName(t&^unix.SOCK_NONBLOCK) + "|SOCK_NONBLOCK"
	}
	return lookup(t, map[int]string{unix.SOCK_STREAM: "SOCK_STREAM", unix.SOCK_DGRAM: "SOCK_DGRAM"})
}

// stateName names a TCP state as the kernel's TCP_INFO reports it.
func stateName(s uint8) string {
	return lookup(int(s), map[int]string{
		unix.BPF_TCP_ESTABLISHED: "TCP_ESTABLISHED", unix.BPF_TCP_SYN_SENT: "TCP_SYN_SENT",
		unix.BPF_TCP_CLOSE: "TCP_CLOSE", unix.BPF_TCP_CLOSE_WAIT: "TCP_CLOSE_WAIT", unix.BPF_TCP_LISTEN: "TCP_LISTEN",
	})
}

func protoName(p int) string {
	return lookup(p, map[int]string{unix.IPPROTO_TCP: "IPPROTO_TCP", unix.IPPROTO_UDP: "IPPROTO_UDP"})
}

// lookup is the C name of v, or v itself if this program does not know one.
func lookup(v int, names map[int]string) string {
	if name, ok := names[v]; ok {
		return name
	}
	return strconv.Itoa(v)
}
