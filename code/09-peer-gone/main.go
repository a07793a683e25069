//go:build linux

//go:debug containermaxprocs=0

// Command 09-peer-gone is chapter 8's echo server and client, for when the
// peer is gone. Every write is sendmsg with MSG_NOSIGNAL, so that writing to
// a reset connection returns EPIPE without raising SIGPIPE. With -close
// write-after-eof the client waits for the server to close, then writes to
// it anyway: the first write succeeds, the server's kernel answers with RST,
// and the second fails with EPIPE. With -keepalive the kernel probes an idle
// connection and, if the peer has vanished, ends it: a read fails with
// ETIMEDOUT, and the server goes on to the next client.
//
//	go run ./code/09-peer-gone                                  # serve clients one at a time
//	go run ./code/09-peer-gone -keepalive 1s                    # probe after 1 s of silence, give up after 3 more
//	go run ./code/09-peer-gone -client -close write-after-eof   # write to a server that has closed
//	go run ./code/09-peer-gone -client -hold                    # connect, say nothing until Ctrl-C
//	go run ./code/09-peer-gone -client -close linger0           # close with SO_LINGER {1, 0}: RST
//	go run ./code/09-peer-gone -q                               # without the narration
//
// This file holds the server and what the chapter is about: the client
// that writes after end of file, the wait for the peer's reset, and
// keepalive. sendmsg with MSG_NOSIGNAL is writeFD, in rw.go with chapter
// 7's other reads and writes; the client's conversation is in client.go,
// the server's setup and echo in server.go, the calls of earlier chapters
// (and the Ctrl-C path's SHUT_RD) in socket.go, the narrator in narrate.go.
//
// It needs Linux: it uses accept4, SOCK_CLOEXEC, MSG_NOSIGNAL and
// TCP_KEEPIDLE.
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

	client bool     // be the client: connect to addr
	msgs   []string // the lines the client sends
	hold   bool     // the client sends nothing and holds on until Ctrl-C
	close  string   // how the client ends: close, linger0 or write-after-eof

	keepalive time.Duration // if not 0, the keepalive idle time and interval, whole seconds
}

// keepaliveProbes is how many keepalive probes in a row may go unanswered
// before the kernel gives up on the peer.
const keepaliveProbes = 3

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
		if err := serve(ctx, n, w, cfd, cfg.keepalive); err != nil {
			fmt.Fprintln(stderr, err)
		}
	}
	// endregion loop
}

// region serve
// serve echoes one client's lines until the client closes its end, and
// closes the connection.
func serve(ctx context.Context, n narrator, w io.Writer, fd int, keepalive time.Duration) (err error) {
	defer func() { err = errors.Join(err, closeFD(n, fd)) }()
	stop := wakeOnCancel(ctx, n, fd) // a silent client must not hold up Ctrl-C
	defer stop()
	if keepalive > 0 { // nor may a client that has vanished hold up the next one
		if err := setKeepalive(n, fd, keepalive); err != nil {
			return err
		}
	}
	peer, err := showConn(n, w, fd)
	if err != nil {
		return err
	}
	if err := echo(n, fd); err != nil {
		return fmt.Errorf("%s: %w", peer, err)
	}
	return nil
}

// endregion serve

// region writeAfterEOF
// writeAfterEOF waits for the server to close its end, then writes to it
// anyway, twice. The first write only has to fit in the send buffer, so it
// succeeds; no one will ever read it, and the server's kernel answers with
// RST; after the RST, the second write fails with EPIPE.
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
	return writeAll(n, fd, msg)
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

// region keepalive
// setKeepalive turns on TCP keepalive for a connected socket. After idle of
// silence the kernel sends a probe, which the peer's kernel must answer,
// then another every idle; when keepaliveProbes in a row go unanswered it
// drops the connection, and a read fails with ETIMEDOUT.
func setKeepalive(n narrator, fd int, idle time.Duration) error {
	secs := int(idle / time.Second)
	for _, o := range []struct {
		level, opt int
		name       string
		value      int
	}{
		{unix.SOL_SOCKET, unix.SO_KEEPALIVE, "SOL_SOCKET, SO_KEEPALIVE", 1},
		{unix.SOL_TCP, unix.TCP_KEEPIDLE, "SOL_TCP, TCP_KEEPIDLE", secs},
		{unix.SOL_TCP, unix.TCP_KEEPINTVL, "SOL_TCP, TCP_KEEPINTVL", secs},
		{unix.SOL_TCP, unix.TCP_KEEPCNT, "SOL_TCP, TCP_KEEPCNT", keepaliveProbes},
	} {
		err := unix.SetsockoptInt(fd, o.level, o.opt, o.value)
		n.call(fmt.Sprintf("setsockopt(%d, %s, %d)", fd, o.name, o.value), "0", err)
		if err != nil {
			_, name, _ := strings.Cut(o.name, ", ")
			return os.NewSyscallError("setsockopt "+name, err)
		}
	}
	return nil
}

// endregion keepalive
