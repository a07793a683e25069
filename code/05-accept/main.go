//go:build linux

//go:debug containermaxprocs=0

// Command 05-accept is an iterative server: it listens, then accepts one
// client at a time, with accept4, which returns a new descriptor for that
// client's connection while the listening one goes on listening. It reads one
// line from the client, answers it, closes the connection, and accepts the
// next. Its client mode connects, sends one line and prints the reply; with
// -hold it connects and sends nothing, which keeps the server busy.
//
//	go run ./code/05-accept                     # serve clients one at a time
//	go run ./code/05-accept -client             # send "hello", print the reply
//	go run ./code/05-accept -client -hold       # connect, say nothing until Ctrl-C
//	go run ./code/05-accept -q                  # without the narration
//
// It needs Linux: it uses accept4 and reads TCP_INFO in Linux's form. The
// client is in client.go, how the server stops in wake.go, the calls of
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

	client bool          // be the client: connect to addr
	conns  int           // how many connections the client opens
	wait   time.Duration // how long the client waits for them to complete
	msg    string        // the line the client sends on each connection
	hold   bool          // the client sends nothing and holds on until Ctrl-C
}

func main() {
	var cfg config
	flag.TextVar(&cfg.addr, "addr", netip.MustParseAddrPort("127.0.0.1:8080"), "`address` to listen on (or, with -client, to connect to), IP:PORT or [IPv6]:PORT; port 0 lets the kernel choose")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	// On by default, as Go's net package sets it on every listening socket.
	flag.BoolVar(&cfg.reuseaddr, "reuseaddr", true, "set SO_REUSEADDR before bind")
	// Small on purpose, so that a handful of clients fills the queue.
	flag.IntVar(&cfg.backlog, "backlog", 2, "the `backlog` argument of listen")
	flag.BoolVar(&cfg.client, "client", false, "be the client: open -n connections to -addr")
	flag.IntVar(&cfg.conns, "n", 1, "client: how many connections to open")
	flag.DurationVar(&cfg.wait, "wait", time.Minute, "client: how long to wait for every connection to complete")
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
		if err := serve(ctx, n, cfd); err != nil {
			fmt.Fprintln(stderr, err)
		}
	}
	// endregion loop
}

// region accept
// acceptConn takes the oldest connection off the listening socket's accept
// queue, waiting for one if the queue is empty. The kernel writes the
// client's address into a buffer it is given, and returns a new descriptor
// for the connection; fd goes on listening.
func acceptConn(n narrator, fd int) (int, error) {
	cfd, peer, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
	n.call(fmt.Sprintf("accept4(%d, %s, SOCK_CLOEXEC)", fd, addrString(peer)), strconv.Itoa(cfd), err)
	if err != nil {
		return -1, os.NewSyscallError("accept4", err)
	}
	return cfd, nil
}

// endregion accept

// region serve
// serve answers one client: it asks for both ends' addresses, reads one
// line, writes one line, and closes the connection. One read is enough for
// a short line on loopback; chapter 7 reads and writes properly.
func serve(ctx context.Context, n narrator, fd int) (err error) {
	defer func() { err = errors.Join(err, closeFD(n, fd)) }()
	stop := wakeOnCancel(ctx, n, fd) // a silent client must not hold up Ctrl-C
	defer stop()

	local, err := unix.Getsockname(fd)
	n.call(fmt.Sprintf("getsockname(%d)", fd), addrString(local), err)
	if err != nil {
		return os.NewSyscallError(fmt.Sprintf("getsockname %d", fd), err)
	}
	sa, err := unix.Getpeername(fd)
	peer := addrString(sa)
	n.call(fmt.Sprintf("getpeername(%d)", fd), peer, err)
	if err != nil {
		return os.NewSyscallError(fmt.Sprintf("getpeername %d", fd), err)
	}

	buf := make([]byte, 1024)
	got, err := unix.Read(fd, buf)
	n.call(fmt.Sprintf("read(%d, %q, %d)", fd, buf[:max(got, 0)], len(buf)), strconv.Itoa(got), err)
	if err != nil || got == 0 { // 0 is end of file: the client left without a word
		return os.NewSyscallError("read "+peer, err)
	}
	line := strings.TrimRight(string(buf[:got]), "\r\n")
	reply := []byte(fmt.Sprintf("hi %s, you said %q\n", peer, line))
	sent, err := unix.Write(fd, reply)
	n.call(fmt.Sprintf("write(%d, %q, %d)", fd, reply, len(reply)), strconv.Itoa(sent), err)
	return os.NewSyscallError("write "+peer, err)
}

// endregion serve
