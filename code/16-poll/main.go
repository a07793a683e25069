//go:build linux

//go:debug containermaxprocs=0

// Command 16-poll is chapter 12's echo server made to serve many clients at
// once with one thread: an event loop. It asks poll which descriptors are
// ready (the listening sockets, every client's connection) and does for
// each only what will not wait. Every descriptor is non-blocking, so a call
// that would wait fails with EAGAIN instead, and each client's half line
// and unsent echoes wait in its conn: the server is a state machine.
//
//	go run ./code/16-poll                   # serve every client of localhost:8080 at once
//	go run ./code/16-poll -client -msg hi   # a client, chapter 12's
//	go run ./code/16-poll -blocking         # the same loop on blocking sockets: it hangs
//	go run ./code/16-poll -q                # without the narration
//
// This file holds the loop and each connection's state. Chapter 12's names
// are in names.go, its listening and accepting in server.go, the client in
// client.go, reads and writes in rw.go, Ctrl-C in wake.go, earlier
// chapters' calls in socket.go, the narrator in narrate.go.
//
// It needs Linux: it uses accept4, SOCK_CLOEXEC and SOCK_NONBLOCK.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"golang.org/x/sys/unix"
)

type config struct {
	addr     string // HOST:SERVICE to listen on or connect to
	quiet    bool   // do not narrate system calls
	backlog  int    // the backlog argument of listen
	bufsize  int    // how many bytes each of the server's reads asks for
	v6only   bool   // set IPV6_V6ONLY on IPv6 listening sockets
	blocking bool   // leave the server's sockets blocking, to see the loop hang

	client bool     // be the client: connect to addr
	msgs   []string // the lines the client sends
}

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "localhost:8080", "`host:service` to listen on (or, with -client, to connect to); the host is a name or an address ([::1] for IPv6), empty for every address; the service is a port number or a name from /etc/services")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	flag.IntVar(&cfg.backlog, "backlog", 128, "the `backlog` argument of listen")
	flag.IntVar(&cfg.bufsize, "bufsize", 4096, "server: the most bytes one read asks for")
	flag.BoolVar(&cfg.v6only, "v6only", true, "server: set IPV6_V6ONLY on IPv6 sockets, so they take IPv6 clients only")
	flag.BoolVar(&cfg.blocking, "blocking", false, "server: leave the sockets blocking (a mistake, to see what it does)")
	flag.BoolVar(&cfg.client, "client", false, "be the client: connect to -addr")
	flag.Func("msg", "client: a `line` to send; repeat for more (default hello)", func(s string) error {
		cfg.msgs = append(cfg.msgs, s)
		return nil
	})
	flag.Parse()
	if len(cfg.msgs) == 0 {
		cfg.msgs = []string{"hello"}
	}
	// Ctrl-C (SIGINT) and kill (SIGTERM) cancel ctx instead of ending the
	// program at once, so that run can close its sockets on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run is the client with -client, else the server, which reports to
// stderr the errors of a client that it survives.
func run(ctx context.Context, cfg config, w, stderr io.Writer) (err error) {
	n := newNarrator(w, cfg.quiet)
	addrs, err := resolve(ctx, n, cfg.addr, !cfg.client)
	switch {
	case err != nil:
		return err
	case cfg.client:
		return runClient(ctx, cfg, n, w, addrs)
	case cfg.bufsize < 1: // a read into no room at all would return 0, like end of file
		return fmt.Errorf("-bufsize %d: a read needs room for at least 1 byte", cfg.bufsize)
	}
	fds, err := listenAll(n, w, addrs, cfg)
	// Close every listening socket on the way out, the ones made before a
	// failure too.
	defer func() {
		for _, fd := range fds {
			err = errors.Join(err, closeFD(n, fd))
		}
	}()
	if err != nil {
		return err
	}
	return serveAll(ctx, n, w, stderr, fds, cfg)
}

// region conn
// conn is what the loop remembers of one client between two wake-ups: a
// blocking server kept it in local variables of a function that waited;
// an event loop cannot wait, so it keeps it here.
type conn struct {
	fd   int
	peer string
	in   []byte // what has come of the client's next line
	out  []byte // echoes the client has not taken yet
}

// endregion conn

// region loop
// serveAll is the event loop. Each turn it asks poll about every
// descriptor at once, listening sockets first, then each connection: for
// input while the connection owes nothing, for room to write while it
// does. Then it serves the ready ones, and accepts new clients last, so
// that they join the next turn's poll.
func serveAll(ctx context.Context, n narrator, w, stderr io.Writer, lfds []int, cfg config) (err error) {
	// Ctrl-C shuts down the first listening socket, which wakes poll.
	stop := wakeOnCancel(ctx, n, lfds[0])
	defer stop()
	var conns []*conn
	defer func() { // the clients still connected when the server stops
		for _, c := range conns {
			err = errors.Join(err, closeFD(n, c.fd))
		}
	}()
	buf := make([]byte, cfg.bufsize) // one buffer serves every read: a read's bytes are copied out at once
	var pfds []unix.PollFd
	for {
		pfds = pfds[:0]
		for _, fd := range lfds {
			pfds = append(pfds, unix.PollFd{Fd: int32(fd), Events: unix.POLLIN})
		}
		for _, c := range conns {
			ev := int16(unix.POLLIN)
			if len(c.out) > 0 {
				ev = unix.POLLOUT // do not read more from a client that does not read
			}
			pfds = append(pfds, unix.PollFd{Fd: int32(c.fd), Events: ev})
		}
		if err := pollAll(n, pfds); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil // shutdown woke poll: we are stopping, not failing
		}
		kept := conns[:0]
		for i, c := range conns {
			if pfds[len(lfds)+i].Revents == 0 {
				kept = append(kept, c)
				continue
			}
			done, err := c.step(n, buf)
			if err != nil { // one client's failure is not the server's
				fmt.Fprintf(stderr, "%s: %v\n", c.peer, err)
			}
			if !done {
				kept = append(kept, c)
			} else if err := closeFD(n, c.fd); err != nil {
				return err
			}
		}
		conns = kept
		for i, lfd := range lfds {
			if pfds[i].Revents&unix.POLLIN == 0 {
				continue
			}
			c, err := accept(n, w, lfd, cfg.blocking)
			if err != nil {
				return err
			}
			if c != nil {
				conns = append(conns, c)
			}
		}
	}
}

// endregion loop

// region step
// step does what a ready connection allows and reports whether it is
// finished. First it writes what the client is owed; only when that is all
// gone does it read, until the kernel has nothing more (EAGAIN), turning
// each whole line into an echo to write. A client that does not read its
// echoes stops being read: its unsent bytes stay bounded.
func (c *conn) step(n narrator, buf []byte) (done bool, err error) {
	if err := c.flush(n); err != nil || len(c.out) > 0 {
		return err != nil, err
	}
	for {
		got, err := readFD(n, c.fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			return false, nil // nothing more for now: back to poll
		}
		if err != nil {
			return true, err
		}
		if got == 0 { // the client closed its end
			if len(c.in) > 0 {
				return true, fmt.Errorf("end of file after %d bytes of a line", len(c.in))
			}
			return true, nil
		}
		c.in = append(c.in, buf[:got]...)
		for i := slices.Index(c.in, '\n'); i >= 0; i = slices.Index(c.in, '\n') {
			c.out = append(c.out, c.in[:i+1]...)
			c.in = c.in[i+1:]
		}
		if len(c.in) >= maxLine {
			return true, fmt.Errorf("no newline in %d bytes", len(c.in))
		}
		if err := c.flush(n); err != nil || len(c.out) > 0 {
			return err != nil, err
		}
	}
}

// flush writes what the client is owed until it is all written or the
// socket's send buffer is full (EAGAIN); the rest waits for POLLOUT.
func (c *conn) flush(n narrator) error {
	for len(c.out) > 0 {
		sent, err := writeFD(n, c.fd, c.out)
		if errors.Is(err, unix.EAGAIN) {
			return nil
		}
		if err != nil {
			return err
		}
		c.out = c.out[sent:]
	}
	return nil
}

// endregion step
