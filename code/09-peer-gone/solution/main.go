//go:build linux

//go:debug containermaxprocs=0

// Command 09-peer-gone is chapter 8's echo server and client, for when the
// peer is gone. This is the reference solution to the chapter's exercises: the chapter's
// program, changed as little as possible so that
//
//  1. -close write-after-eof writes five times, waiting for the reset after
//     the first: one write succeeds, four fail with EPIPE;
//  2. -user-timeout sets TCP_USER_TIMEOUT on every connected socket, and the
//     client's -later sends one more line five seconds after its echo
//     (timeouts.go);
//  3. plainWrite, in rw.go, set to true writes with write(2), without
//     MSG_NOSIGNAL, to feel SIGPIPE;
//  4. the server's -probes polls for POLLIN a second at a time instead of
//     blocking in read, and prints tcpi_probes after each timeout (probes.go).
//
// Try the exercises before you read it. Run it as the chapter's program:
//
//	go run ./code/09-peer-gone/solution                                  # serve clients one at a time
//	go run ./code/09-peer-gone/solution -keepalive 1s -probes            # watch keepalive's probes
//	go run ./code/09-peer-gone/solution -user-timeout 2s                 # give up on data unacknowledged for 2 s
//	go run ./code/09-peer-gone/solution -client -close write-after-eof   # write to a server that has closed
//	go run ./code/09-peer-gone/solution -client -later -user-timeout 2s  # one more line, 5 s after the echo
//	go run ./code/09-peer-gone/solution -client -hold                    # connect, say nothing until Ctrl-C
//
// and grade it with make exercise CH=09 PROGRAM=code/09-peer-gone/solution.
//
// Its files are the chapter's; keepalive moved to timeouts.go.
//
// It needs Linux: it uses accept4, SOCK_CLOEXEC, MSG_NOSIGNAL, TCP_KEEPIDLE
// and TCP_USER_TIMEOUT.
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
	"slices"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type config struct {
	addr      netip.AddrPort // the local address to bind
	quiet     bool           // do not narrate system calls
	reuseaddr bool           // set SO_REUSEADDR before bind
	backlog   int            // the backlog argument of listen

	client bool     // be the client: connect to addr
	msgs   []string // the lines the client sends
	hold   bool     // the client sends nothing and holds on until Ctrl-C
	close  string   // how the client ends: close, linger0 or write-after-eof

	keepalive time.Duration // if not 0, the keepalive idle time and interval, whole seconds

	userTimeout time.Duration // if not 0, TCP_USER_TIMEOUT, whole milliseconds (exercise 2)
	later       bool          // the client sends one more line laterDelay after its echoes (exercise 2)
	probes      bool          // the server polls instead of blocking in read, and prints tcpi_probes (exercise 4)
}

// writesAfterEOF is how many times -close write-after-eof writes to the
// server that has closed: the first write succeeds, the others fail with
// EPIPE (exercise 1).
const writesAfterEOF = 5

func main() {
	var cfg config
	flag.TextVar(&cfg.addr, "addr", netip.MustParseAddrPort("127.0.0.1:8080"), "`address` to listen on (or, with -client, to connect to), IP:PORT or [IPv6]:PORT; port 0 lets the kernel choose")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	// On by default, as Go's net package sets it on every listening socket.
	flag.BoolVar(&cfg.reuseaddr, "reuseaddr", true, "set SO_REUSEADDR before bind")
	// Small on purpose, so that a handful of clients fills the queue.
	flag.IntVar(&cfg.backlog, "backlog", 2, "the `backlog` argument of listen")
	flag.BoolVar(&cfg.client, "client", false, "be the client: connect to -addr")
	flag.Func("msg", "client: a `line` to send; repeat for more (default hello)", func(s string) error {
		cfg.msgs = append(cfg.msgs, s)
		return nil
	})
	flag.BoolVar(&cfg.hold, "hold", false, "client: connect, then send nothing until Ctrl-C")
	flag.StringVar(&cfg.close, "close", "close", "client: how to end: close, linger0 (RST), or write-after-eof (wait for the server to close, then write)")
	flag.DurationVar(&cfg.keepalive, "keepalive", 0, "turn on TCP keepalive: probe after this `long` idle, then as often; give up after 3 unanswered (whole seconds; 0: off)")
	flag.DurationVar(&cfg.userTimeout, "user-timeout", 0, "set TCP_USER_TIMEOUT: drop the connection when sent data stays unacknowledged this `long` (whole milliseconds; 0: the kernel's default)")
	flag.BoolVar(&cfg.later, "later", false, "client: after the echoes, wait 5 s and send one more line")
	flag.BoolVar(&cfg.probes, "probes", false, "server: poll for POLLIN a second at a time instead of blocking in read, and print tcpi_probes after each timeout")
	flag.Parse()
	if len(cfg.msgs) == 0 {
		cfg.msgs = []string{"hello"}
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
// what went wrong with one client and goes on serving the next.
func run(ctx context.Context, cfg config, w, stderr io.Writer) (err error) {
	n := newNarrator(w, cfg.quiet)
	if cfg.keepalive < 0 || cfg.keepalive%time.Second != 0 {
		return fmt.Errorf("-keepalive %v: the kernel counts whole seconds (1s, 2s, ...)", cfg.keepalive)
	}
	if cfg.userTimeout < 0 || cfg.userTimeout%time.Millisecond != 0 {
		return fmt.Errorf("-user-timeout %v: the kernel counts whole milliseconds", cfg.userTimeout)
	}
	if cfg.client {
		if !slices.Contains([]string{"close", "linger0", "write-after-eof"}, cfg.close) {
			return fmt.Errorf("-close %s: want close, linger0 or write-after-eof", cfg.close)
		}
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
	// An iterative server: one client at a time. A client that resets, or
	// vanishes, fails its own connection; the server reports it and goes on.
	for {
		cfd, err := acceptConn(n, fd)
		if err != nil {
			if ctx.Err() != nil {
				return nil // shutdown woke accept4: we are stopping, not failing
			}
			return err
		}
		if err := serve(ctx, n, w, cfd, cfg); err != nil {
			fmt.Fprintln(stderr, err)
		}
	}
	// endregion loop
}

// region serve
// serve echoes one client's lines until the client closes its end, and
// closes the connection.
func serve(ctx context.Context, n narrator, w io.Writer, fd int, cfg config) (err error) {
	defer func() { err = errors.Join(err, closeFD(n, fd)) }()
	stop := wakeOnCancel(ctx, n, fd) // a silent client must not hold up Ctrl-C
	defer stop()
	if cfg.keepalive > 0 { // nor may a client that has vanished hold up the next one
		if err := setKeepalive(n, fd, cfg.keepalive); err != nil {
			return err
		}
	}
	if cfg.userTimeout > 0 { // nor one that vanished while we were sending to it
		if err := setUserTimeout(n, fd, cfg.userTimeout); err != nil {
			return err
		}
	}
	peer, err := showConn(n, w, fd)
	if err != nil {
		return err
	}
	if err := echo(n, fd, cfg.probes); err != nil {
		return fmt.Errorf("%s: %w", peer, err)
	}
	return nil
}

// endregion serve

// region writeAfterEOF
// writeAfterEOF waits for the server to close its end, then writes to it
// anyway, writesAfterEOF times. The first write only has to fit in the send
// buffer, so it succeeds; no one will ever read it, and the server's kernel
// answers with RST; after the RST, every other write fails with EPIPE.
func writeAfterEOF(ctx context.Context, n narrator, fd int) error {
	buf := make([]byte, bufSize)
	for {
		got, err := readFD(n, fd, buf)
		if err != nil {
			return err
		}
		if got == 0 {
			break
		}
	}
	if ctx.Err() != nil {
		return nil // Ctrl-C woke the read, not the server
	}
	msg := []byte("still there?\n")
	if err := writeAll(n, fd, msg); err != nil {
		return err
	}
	if err := waitReset(n, fd); err != nil {
		return err
	}
	// Exercise 1. The reset is recorded once, as EPIPE, and the socket
	// stays broken: each write after it fails the same way, at once. The
	// first failure is the one to report; the others only repeat it.
	var first error
	for range writesAfterEOF - 1 {
		if err := writeAll(n, fd, msg); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// endregion writeAfterEOF
// region waitReset
// waitReset waits, at most 5 seconds, until the peer's RST has arrived, so
// that what the next write meets does not depend on timing. poll always
// reports POLLERR and POLLHUP, asked for or not, and a reset socket has
// both; with no events asked for, nothing else ends the wait.
func waitReset(n narrator, fd int) error {
	const ms = 5000
	pfd := []unix.PollFd{{Fd: int32(fd)}}
	ready, err := unix.Poll(pfd, ms)
	for err == unix.EINTR { // poll is never restarted after a signal
		ready, err = unix.Poll(pfd, ms)
	}
	result := fmt.Sprintf("%d ([{fd=%d, revents=%s}])", ready, fd, pollEvents(pfd[0].Revents))
	if ready == 0 {
		result = "0 (Timeout)"
	}
	n.call(fmt.Sprintf("poll([{fd=%d, events=0}], 1, %d)", fd, ms), result, err)
	if err != nil {
		return os.NewSyscallError("poll", err)
	}
	if ready == 0 {
		return fmt.Errorf("no reset within %d ms: the peer's socket is still open", ms)
	}
	return nil
}

// endregion waitReset
