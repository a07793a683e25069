//go:build linux

//go:debug containermaxprocs=0

// Command 04-listen makes a TCP socket, binds it and calls listen, which turns
// it into a listening socket: from then on the kernel completes handshakes
// for it and queues the connections until the program accepts them. This
// server does not accept until told to, so that you can watch the queue fill
// up; its client mode opens many connections at once and reports which ones
// the kernel completed and which are still waiting.
//
// This is the reference solution to the chapter's exercises, the chapter's
// program changed as little as possible: SIGUSR2 prints the accept queue
// without accepting anything (exercise 1); with -one each SIGUSR1 accepts a
// single connection (exercise 2); with -grow each SIGUSR2 first calls listen
// again with twice the backlog (exercise 3). Try them before you read it.
//
//	go run ./code/04-listen/solution -backlog 0 -one     # each SIGUSR1 accepts one
//	go run ./code/04-listen/solution -grow               # each SIGUSR2 doubles the backlog
//	kill -USR2 PID                                       # the server prints its queue
//
// Grade it with make exercise CH=04 PROGRAM=code/04-listen/solution.
// It needs Linux, for TCP_INFO. The client is in client.go, the calls of
// earlier chapters in socket.go, and the narrator in narrate.go.
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
	n := newNarrator(w, cfg.quiet)
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
