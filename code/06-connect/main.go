//go:build linux

//go:debug containermaxprocs=0

// Command 06-connect is chapter 5's iterative server with a client that
// connects properly: socket, then connect, which has the kernel pick a local
// port and do the TCP handshake. Both ends print the connection as they see
// it: protocol, local address, remote address. With -timeout the client
// connects without blocking and waits for the handshake itself, for at most
// that long, instead of the kernel's two minutes.
//
//	go run ./code/06-connect                      # serve clients one at a time
//	go run ./code/06-connect -client              # connect, send "hello", print the reply
//	go run ./code/06-connect -client -timeout 1s  # give up after a second
//	go run ./code/06-connect -client -hold        # connect, say nothing until Ctrl-C
//	go run ./code/06-connect -q                   # without the narration
//
// This file holds what the chapter is about: connect, with and without a
// deadline, and the connection as each end sees it. The rest of the server
// is in server.go, the client's conversation in client.go, how Ctrl-C
// stops both in wake.go, the calls of earlier chapters in socket.go, and
// the narrator in narrate.go.
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
	quiet     bool           // do not narrate system calls
	reuseaddr bool           // set SO_REUSEADDR before bind
	backlog   int            // the backlog argument of listen

	client  bool          // be the client: connect to addr
	timeout time.Duration // if not 0, how long the client waits for connect
	msg     string        // the line the client sends
	hold    bool          // the client sends nothing and holds on until Ctrl-C
}

func main() {
	var cfg config
	flag.TextVar(&cfg.addr, "addr", netip.MustParseAddrPort("127.0.0.1:8080"), "`address` to listen on (or, with -client, to connect to), IP:PORT or [IPv6]:PORT; port 0 lets the kernel choose")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	// On by default, as Go's net package sets it on every listening socket.
	flag.BoolVar(&cfg.reuseaddr, "reuseaddr", true, "set SO_REUSEADDR before bind")
	// Small on purpose, so that a handful of clients fills the queue.
	flag.IntVar(&cfg.backlog, "backlog", 2, "the `backlog` argument of listen")
	flag.BoolVar(&cfg.client, "client", false, "be the client: connect to -addr")
	flag.DurationVar(&cfg.timeout, "timeout", 0, "client: give up connecting after this long (0: when the kernel does)")
	flag.StringVar(&cfg.msg, "msg", "hello", "client: the line to send")
	flag.BoolVar(&cfg.hold, "hold", false, "client: connect, then send nothing until Ctrl-C")
	flag.Parse()
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
// dial makes a socket and connects it to addr. With timeout 0 it is the
// plain, blocking connect, which returns when the handshake has succeeded or
// failed: after about two minutes if nobody answers. Otherwise the socket is
// non-blocking, and waitConnected waits for the handshake, at most timeout.
func dial(ctx context.Context, n narrator, addr netip.AddrPort, timeout time.Duration) (fd int, err error) {
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

	// No bind: connect gives the socket a local address, with a port the
	// kernel picks, and then sends the SYN.
	err = unix.Connect(fd, sa)
	n.call(fmt.Sprintf("connect(%d, %s)", fd, addr), "0", err)
	if err == unix.EINPROGRESS {
		return fd, waitConnected(n, fd, addr, timeout)
	}
	return fd, os.NewSyscallError("connect "+addr.String(), err)
}

// endregion dial

// region wait
// waitConnected waits for the handshake that a non-blocking connect started.
// The socket becomes writable when the handshake ends, whether it succeeded
// or failed; SO_ERROR says which, as connect's own result would have.
func waitConnected(n narrator, fd int, addr netip.AddrPort, timeout time.Duration) error {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	ms, deadline := int(timeout.Milliseconds()), time.Now().Add(timeout)
	ready, err := unix.Poll(pfd, ms)
	for err == unix.EINTR { // a signal is not an answer: wait out the rest
		ready, err = unix.Poll(pfd, max(int(time.Until(deadline).Milliseconds()), 0))
	}
	result := fmt.Sprintf("%d ([{fd=%d, revents=%s}])", ready, fd, pollEvents(pfd[0].Revents))
	if ready == 0 {
		result = "0 (Timeout)"
	}
	n.call(fmt.Sprintf("poll([{fd=%d, events=POLLOUT}], 1, %d)", fd, ms), result, err)
	if err != nil {
		return os.NewSyscallError("poll", err)
	}
	if ready == 0 {
		// The kernel would go on trying; this program gives up. ETIMEDOUT is
		// what a blocking connect reports when the kernel gives up.
		return fmt.Errorf("connect %s: no answer within %v: %w", addr, timeout, unix.ETIMEDOUT)
	}
	soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	result = "0"
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
