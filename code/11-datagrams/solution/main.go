//go:build linux

//go:debug containermaxprocs=0

// Command 11-datagrams is a UDP echo server and its client. The server
// binds one socket and never listens or accepts: every client's datagrams
// arrive on that one socket, each with the address it came from, and the
// server sends each one back to that address. A datagram is a message: it
// arrives whole or not at all, and one receive takes exactly one, cut to
// the buffer if it is bigger (the server says so). The client sends each
// line as one datagram and waits, for a while, for its echo; with -connect
// it connects its socket first, which gives it a default peer and lets the
// kernel tell it when nobody is there.
//
//	go run ./code/11-datagrams                           # serve on 127.0.0.1:8080
//	go run ./code/11-datagrams -bufsize 8                # keep at most 8 bytes of each datagram
//	go run ./code/11-datagrams -client -msg hi -msg yo   # two datagrams, check both echoes
//	go run ./code/11-datagrams -client -connect          # connect first, then write and read
//	go run ./code/11-datagrams -client -timeout 1s       # wait a second for each echo
//	go run ./code/11-datagrams -client -flood 1000       # send 1000 datagrams, read no echo
//	go run ./code/11-datagrams -q                        # without the narration
//
// This file holds what the chapter is about: the server's socket, and
// recvfrom and sendto. The client is in client.go, the calls of earlier
// chapters and how Ctrl-C wakes a blocked call in socket.go, and the
// narrator in narrate.go.
//
// It needs Linux: it uses SOCK_CLOEXEC, recvfrom's MSG_TRUNC (the real size
// of a datagram cut short), and shutdown to wake a blocked recvfrom.
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
	addr    netip.AddrPort // the address to bind (or, with -client, to send to)
	quiet   bool           // do not narrate system calls
	bufsize int            // how many bytes of a datagram the server's receive keeps

	client  bool          // be the client: send to addr
	connect bool          // the client connects its socket to addr first
	msgs    []string      // the lines the client sends, one datagram each
	timeout time.Duration // how long the client waits for each echo
	flood   int           // if not 0, the client sends this many datagrams and reads nothing
}

func main() {
	var cfg config
	flag.TextVar(&cfg.addr, "addr", netip.MustParseAddrPort("127.0.0.1:8080"), "`address` to bind (or, with -client, to send to), IP:PORT or [IPv6]:PORT; port 0 lets the kernel choose")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	flag.IntVar(&cfg.bufsize, "bufsize", 2048, "server: the most bytes of a datagram one receive keeps")
	flag.BoolVar(&cfg.client, "client", false, "be the client: send datagrams to -addr")
	flag.BoolVar(&cfg.connect, "connect", false, "client: connect the socket to -addr, then write and read")
	flag.Func("msg", "client: a `line` to send as one datagram; repeat for more (default hello)", func(s string) error {
		cfg.msgs = append(cfg.msgs, s)
		return nil
	})
	flag.DurationVar(&cfg.timeout, "timeout", 10*time.Second, "client: how long to wait for each echo (0: for ever)")
	flag.IntVar(&cfg.flood, "flood", 0, "client: send this many datagrams of the first line, as fast as it can, and read no echo")
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

// run is the client with -client, else the server, which reports to
// stderr the trouble it survives: a datagram cut short, a send that failed.
func run(ctx context.Context, cfg config, w, stderr io.Writer) (err error) {
	n := newNarrator(w, cfg.quiet)
	sa, err := sockaddr(cfg.addr)
	if err != nil {
		return err
	}
	if cfg.client {
		return runClient(ctx, cfg, n, w, sa)
	}
	if cfg.bufsize < 1 {
		return fmt.Errorf("-bufsize %d: a receive needs room for at least 1 byte", cfg.bufsize)
	}
	fd, err := bindUDP(n, w, sa)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeFD(n, fd)) }()
	// Ctrl-C must not wait for a datagram that may never come: see wakeOnCancel.
	stop := wakeOnCancel(ctx, n, fd)
	defer stop()
	return serve(ctx, n, stderr, fd, cfg.bufsize)
}

// region bindUDP
// bindUDP makes the server's socket: socket and bind, and getsockname to
// learn the port the kernel chose for port 0. That is all. A datagram
// socket has no connections, so there is nothing to listen for and
// nothing to accept: once bound, every datagram sent to this address lands
// in this one socket's receive queue, whoever sent it.
func bindUDP(n narrator, w io.Writer, sa unix.Sockaddr) (fd int, err error) {
	fd, err = newSocket(n, family(sa), unix.SOCK_DGRAM, 0)
	if err != nil {
		return -1, err
	}
	defer func() {
		if err != nil {
			err, fd = errors.Join(err, closeFD(n, fd)), -1
		}
	}()
	err = unix.Bind(fd, sa)
	n.call(fmt.Sprintf("bind(%d, %s)", fd, addrString(sa)), "0", err)
	if err != nil {
		return fd, os.NewSyscallError("bind "+addrString(sa), err)
	}
	bound, err := unix.Getsockname(fd)
	n.call(fmt.Sprintf("getsockname(%d)", fd), addrString(bound), err)
	if err != nil {
		return fd, os.NewSyscallError(fmt.Sprintf("getsockname %d", fd), err)
	}
	fmt.Fprintf(w, "bound to %s\n", addrString(bound))
	return fd, nil
}

// endregion bindUDP

// region serve
// serve echoes datagrams until Ctrl-C: each receive takes one datagram,
// from whichever client sent it, and the echo goes back to the address
// that came with it. There is no end of file: a receive that returns 0 is
// an empty datagram, and gets an empty echo.
func serve(ctx context.Context, n narrator, stderr io.Writer, fd, bufsize int) error {
	buf := make([]byte, bufsize)
	if err := watchDrops(n, fd); err != nil { // in drops.go
		return err
	}
	var reported uint32 // the drops reported so far
	for {
		// Exercise 1: peek at the next datagram's real size, and make
		// room for all of it. MSG_PEEK leaves it in the queue; MSG_TRUNC
		// returns its size, not the 0 bytes copied into no buffer.
		size, _, err := recvFrom(n, fd, nil, unix.MSG_PEEK|unix.MSG_TRUNC)
		if ctx.Err() != nil {
			return nil // shutdown woke recvfrom: we are stopping, not failing
		}
		if err != nil {
			return err
		}
		if size > len(buf) {
			buf = make([]byte, size)
		}
		// MSG_TRUNC: return the datagram's real size, even when buf
		// holds only its first bufsize bytes and the rest is gone.
		size, from, drops, err := recvMsg(n, fd, buf, unix.MSG_TRUNC)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		// Exercise 2: the count is the socket's total; report what is new.
		if drops > reported {
			fmt.Fprintf(stderr, "dropped %d datagrams\n", drops-reported)
			reported = drops
		}
		got := min(size, len(buf))
		if size > got {
			fmt.Fprintf(stderr, "%s: a datagram of %d bytes, cut to %d\n", addrString(from), size, got)
		}
		// A send that fails concerns one datagram, not the server.
		if _, err := sendTo(n, fd, buf[:got], from); err != nil {
			fmt.Fprintln(stderr, err)
		}
	}
}

// endregion serve

// region recvFrom
// recvFrom is one recvfrom(2): the oldest datagram in fd's receive queue,
// or as much of it as fits in buf, and the address it came from. It waits
// for one if the queue is empty. It returns what recvfrom returned: with
// MSG_TRUNC in flags that is the datagram's whole size, which may be more
// than len(buf); without it, the bytes copied.
func recvFrom(n narrator, fd int, buf []byte, flags int) (int, unix.Sockaddr, error) {
	got, from, err := unix.Recvfrom(fd, buf, flags)
	for err == unix.EINTR { // a signal came before any datagram did: ask again
		got, from, err = unix.Recvfrom(fd, buf, flags)
	}
	n.call(fmt.Sprintf("recvfrom(%d, %s, %d, %s, %s)", fd, quote(buf[:min(max(got, 0), len(buf))]), len(buf), flagNames(flags), addrString(from)),
		strconv.Itoa(got), err)
	return max(got, 0), from, os.NewSyscallError("recvfrom "+strconv.Itoa(fd), err)
}

// endregion recvFrom

// region sendTo
// sendTo is one sendto(2): buf as one datagram to the address to. It is
// sent whole or not at all: there is no short count to loop over, as
// write on a stream has. A datagram too big for the protocol fails with
// EMSGSIZE.
func sendTo(n narrator, fd int, buf []byte, to unix.Sockaddr) (int, error) {
	err := unix.Sendto(fd, buf, 0, to)
	for err == unix.EINTR {
		err = unix.Sendto(fd, buf, 0, to)
	}
	sent := len(buf)
	if err != nil {
		sent = -1
	}
	n.call(fmt.Sprintf("sendto(%d, %s, %d, 0, %s)", fd, quote(buf), len(buf), addrString(to)), strconv.Itoa(sent), err)
	return max(sent, 0), os.NewSyscallError("sendto "+addrString(to), err)
}

// endregion sendTo
