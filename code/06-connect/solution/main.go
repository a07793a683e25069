//go:build linux

//go:debug containermaxprocs=0

// Command 06-connect, the reference solution to chapter 6's exercises: the
// chapter's program, changed as little as possible so that the client
//
//  1. binds its socket to -from ADDR before connect, when it is given;
//  2. with -retry N, tries again on ECONNREFUSED, with a new socket, a second
//     later, up to N times (dialRetry, in client.go);
//  3. takes a comma-separated list in -addr and tries each address in turn,
//     stopping at the first that connects (runClient, in client.go);
//  4. while it waits for a handshake with -timeout, prints the socket's
//     TCP_INFO every second (showSYNs, in client.go).
//
// Try the exercises before you read it. Grade it with
// make exercise CH=06 PROGRAM=code/06-connect/solution.
//
//	go run ./code/06-connect/solution -client -from 127.0.0.1:50000
//	go run ./code/06-connect/solution -client -retry 10
//	go run ./code/06-connect/solution -client -timeout 1s -addr 127.0.0.1:8080,127.0.0.1:8081
//
// It needs Linux: it uses accept4, and SOCK_CLOEXEC and SOCK_NONBLOCK.
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
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type config struct {
	addr      netip.AddrPort // the local address to bind
	addrs     addrList       // -addr: the server's address, or the client's list of them
	quiet     bool           // do not narrate system calls
	reuseaddr bool           // set SO_REUSEADDR before bind
	backlog   int            // the backlog argument of listen

	client  bool           // be the client: connect to addr
	timeout time.Duration  // if not 0, how long the client waits for connect
	msg     string         // the line the client sends
	hold    bool           // the client sends nothing and holds on until Ctrl-C
	from    netip.AddrPort // if valid, the client binds to it before connect
	retry   int            // how many times the client tries again when refused
}

func main() {
	var cfg config
	cfg.addrs = addrList{netip.MustParseAddrPort("127.0.0.1:8080")}
	flag.Var(&cfg.addrs, "addr", "`address` to listen on (or, with -client, to connect to: a comma-separated list is tried in turn), IP:PORT or [IPv6]:PORT; port 0 lets the kernel choose")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	// On by default, as Go's net package sets it on every listening socket.
	flag.BoolVar(&cfg.reuseaddr, "reuseaddr", true, "set SO_REUSEADDR before bind")
	// Small on purpose, so that a handful of clients fills the queue.
	flag.IntVar(&cfg.backlog, "backlog", 2, "the `backlog` argument of listen")
	flag.BoolVar(&cfg.client, "client", false, "be the client: connect to -addr")
	flag.DurationVar(&cfg.timeout, "timeout", 0, "client: give up connecting after this long (0: when the kernel does)")
	flag.StringVar(&cfg.msg, "msg", "hello", "client: the line to send")
	flag.BoolVar(&cfg.hold, "hold", false, "client: connect, then send nothing until Ctrl-C")
	flag.TextVar(&cfg.from, "from", netip.AddrPort{}, "client: bind to this `address` before connect (port 0: the kernel chooses)")
	flag.IntVar(&cfg.retry, "retry", 0, "client: when refused, try again a second later, up to `N` times")
	flag.Parse()
	cfg.addr = cfg.addrs[0]
	if !cfg.client && len(cfg.addrs) > 1 {
		fmt.Fprintln(os.Stderr, "-addr: a server listens on one address")
		os.Exit(2)
	}
	// Ctrl-C (SIGINT) and kill (SIGTERM) cancel ctx instead of ending the
	// program at once, so that run can close its socket on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run is the client with -client, else the server, which reports to stderr
// the errors of a client that it survives.
func run(ctx context.Context, cfg config, w, stderr io.Writer) (err error) {
	n := newNarrator(w, cfg.quiet)
	if cfg.client {
		return runClient(ctx, cfg, n, w)
	}
	fd, err := listenOn(n, w, cfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeFD(n, fd)) }()

	// region loop
	// Ctrl-C must not wait for a client that may never come: see wakeOnCancel.
	stop := wakeOnCancel(ctx, n, fd)
	defer stop()
	// An iterative server: it serves one client from accept4 to close before
	// it takes the next. Meanwhile the kernel completes the handshakes of
	// other clients and queues their connections.
	for {
		cfd, err := acceptConn(n, fd)
		if err != nil {
			if ctx.Err() != nil {
				return nil // shutdown woke accept4: we are stopping, not failing
			}
			return err
		}
		// One client's failure is not the server's: report it and go on.
		if err := serve(ctx, n, w, cfd); err != nil {
			fmt.Fprintln(stderr, err)
		}
	}
	// endregion loop
}

// region dial
// dial makes a socket and connects it to addr, from the address from if it
// is valid. With timeout 0 it is the plain, blocking connect, which returns
// when the handshake has succeeded or failed: after about two minutes if
// nobody answers. Otherwise the socket is non-blocking, and waitConnected
// waits for the handshake, at most timeout.
func dial(ctx context.Context, n narrator, w io.Writer, addr, from netip.AddrPort, timeout time.Duration) (fd int, err error) {
	sa, err := sockaddr(addr)
	if err != nil {
		return -1, err
	}
	domain := unix.AF_INET6
	if addr.Addr().Is4() {
		domain = unix.AF_INET
	}
	typ := unix.SOCK_STREAM
	if timeout > 0 {
		typ |= unix.SOCK_NONBLOCK
	}
	if fd, err = newSocket(n, domain, typ, 0); err != nil {
		return -1, err
	}
	defer func() {
		if err != nil {
			err, fd = errors.Join(err, closeFD(n, fd)), -1
		}
	}()
	stop := wakeOnCancel(ctx, n, fd) // Ctrl-C must not wait for the kernel's timeout
	defer stop()

	// Without -from, no bind: connect picks the local address and port.
	// With it (exercise 1), bind picks them first, and connect keeps them;
	// for port 0, bind picks the other parity than connect would.
	if from.IsValid() {
		local, err := sockaddr(from)
		if err != nil {
			return fd, err
		}
		err = unix.Bind(fd, local)
		n.call(fmt.Sprintf("bind(%d, %s)", fd, from), "0", err)
		if err != nil {
			return fd, os.NewSyscallError("bind "+from.String(), err)
		}
	}
	err = unix.Connect(fd, sa)
	n.call(fmt.Sprintf("connect(%d, %s)", fd, addr), "0", err)
	if err == unix.EINPROGRESS {
		return fd, waitConnected(n, w, fd, addr, timeout)
	}
	return fd, os.NewSyscallError("connect "+addr.String(), err)
}

// endregion dial

// region wait
// waitConnected waits for the handshake that a non-blocking connect started.
// The socket becomes writable when the handshake ends, whether it succeeded
// or failed; SO_ERROR says which, as connect's own result would have.
func waitConnected(n narrator, w io.Writer, fd int, addr netip.AddrPort, timeout time.Duration) error {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	deadline := time.Now().Add(timeout)
	for {
		// At most a second at a time, to report each second (exercise 4).
		ms := pollMillis(deadline)
		ready, err := unix.Poll(pfd, ms)
		for err == unix.EINTR { // a signal is not an answer: wait out the rest
			ms = pollMillis(deadline)
			ready, err = unix.Poll(pfd, ms)
		}
		result := fmt.Sprintf("%d ([{fd=%d, revents=%s}])", ready, fd, pollEvents(pfd[0].Revents))
		if ready == 0 {
			result = "0 (Timeout)"
		}
		n.call(fmt.Sprintf("poll([{fd=%d, events=POLLOUT}], 1, %d)", fd, ms), result, err)
		if err != nil {
			return os.NewSyscallError("poll", err)
		}
		if ready > 0 {
			break
		}
		if err := showSYNs(n, w, fd); err != nil {
			return err
		}
		if time.Until(deadline) <= 0 {
			// The kernel would go on trying; this program gives up.
			return fmt.Errorf("connect %s: no answer within %v: %w", addr, timeout, unix.ETIMEDOUT)
		}
	}
	soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	result := "0"
	if soerr != 0 {
		result = fmt.Sprintf("%d (%s)", soerr, unix.ErrnoName(unix.Errno(soerr)))
	}
	n.call(fmt.Sprintf("getsockopt(%d, SOL_SOCKET, SO_ERROR)", fd), result, err)
	if err != nil {
		return os.NewSyscallError("getsockopt SO_ERROR", err)
	}
	if soerr != 0 {
		return os.NewSyscallError("connect "+addr.String(), unix.Errno(soerr))
	}
	return nil
}

// endregion wait

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
