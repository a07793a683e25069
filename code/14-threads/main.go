//go:build linux

//go:debug containermaxprocs=0

// Command 14-threads is chapter 12's echo server, serving many clients at
// once: one goroutine per connection. By default each goroutine reads with
// a plain, blocking read(2), and each one blocked there holds an OS thread
// of its own. With -netpoll the connection is made non-blocking and handed
// to Go's runtime, which parks the goroutine instead and waits for every
// connection with one epoll: a handful of threads for any number of
// clients. The server counts the connections open, a count every
// goroutine shares.
//
//	go run ./code/14-threads                      # a goroutine per connection, blocking reads
//	go run ./code/14-threads -netpoll             # the same, on Go's network poller
//	go run ./code/14-threads -client -msg hi      # chapter 12's client
//	go run ./code/14-threads -q                   # without the narration
//
// This file holds what the chapter is about: a goroutine for each
// connection, the hand-over to the runtime, and the count. Resolving and
// listening (chapter 12) are in server.go, the client in client.go,
// chapter 7's reads and writes in rw.go, Ctrl-C in wake.go, the calls of
// earlier chapters in socket.go, and the narrator in narrate.go.
//
// It needs Linux: it uses accept4 and SOCK_CLOEXEC.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

type config struct {
	addr    string // HOST:SERVICE to listen on or connect to
	quiet   bool   // do not narrate system calls
	backlog int    // the backlog argument of listen
	bufsize int    // how many bytes each of the server's reads asks for
	v6only  bool   // set IPV6_V6ONLY on IPv6 listening sockets
	netpoll bool   // hand each connection to Go's runtime instead of blocking in read

	client bool     // be the client: connect to addr
	msgs   []string // the lines the client sends
	lookup bool     // only resolve addr and print its addresses
}

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "localhost:8080", "`host:service` to listen on (or, with -client, to connect to); the host is a name or an address ([::1] for IPv6), empty for every address; the service is a port number or a name from /etc/services")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	flag.IntVar(&cfg.backlog, "backlog", 128, "the `backlog` argument of listen")
	flag.IntVar(&cfg.bufsize, "bufsize", 4096, "server: the most bytes one read asks for")
	flag.BoolVar(&cfg.v6only, "v6only", true, "server: set IPV6_V6ONLY on IPv6 sockets, so they take IPv6 clients only")
	flag.BoolVar(&cfg.netpoll, "netpoll", false, "server: make each connection non-blocking and let Go's runtime wait for it")
	flag.BoolVar(&cfg.client, "client", false, "be the client: connect to -addr")
	flag.Func("msg", "client: a `line` to send; repeat for more (default hello)", func(s string) error {
		cfg.msgs = append(cfg.msgs, s)
		return nil
	})
	flag.BoolVar(&cfg.lookup, "lookup", false, "resolve -addr, print its addresses, and exit")
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

// run is the client with -client, the resolver alone with -lookup, else the
// server, which reports to stderr the errors of a client that it survives.
func run(ctx context.Context, cfg config, w, stderr io.Writer) (err error) {
	n := newNarrator(w, cfg.quiet)
	addrs, err := resolve(ctx, n, cfg.addr, !cfg.client)
	switch {
	case err != nil:
		return err
	case cfg.lookup:
		for _, a := range addrs {
			fmt.Fprintf(w, "%s %s\n", domainName(family(a)), a)
		}
		return nil
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

// region serveAll
// serveAll waits for a connection on any listening socket, as chapter 12
// did, but serves each one in a goroutine of its own and goes straight
// back to poll: a silent client now holds up only its own goroutine. On
// Ctrl-C it stops accepting and waits until every connection is closed.
func serveAll(ctx context.Context, n narrator, w, stderr io.Writer, fds []int, cfg config) error {
	// Ctrl-C shuts down the first listening socket, which wakes poll;
	// the others are closed on the way out.
	stop := wakeOnCancel(ctx, n, fds[0])
	defer stop()
	var conns sync.WaitGroup // the goroutines still serving a client
	defer conns.Wait()
	var open atomic.Int64 // shared by every goroutine: see "A data race"
	pfds := make([]unix.PollFd, len(fds))
	for {
		for i, fd := range fds {
			pfds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
		}
		if err := pollAll(n, pfds); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil // shutdown woke poll: we are stopping, not failing
		}
		for _, p := range pfds {
			if p.Revents&unix.POLLIN == 0 {
				continue
			}
			cfd, err := acceptConn(n, int(p.Fd))
			if err != nil {
				return err
			}
			conns.Go(func() {
				// One client's failure is not the server's: report it.
				if err := serve(ctx, n, w, cfd, cfg, &open); err != nil {
					fmt.Fprintln(stderr, err)
				}
			})
		}
	}
}

// endregion serveAll

// region serve
// serve echoes one client's lines until the client closes its end, then
// closes the connection. open counts the connections being served; every
// goroutine changes it, so each change is one atomic operation.
func serve(ctx context.Context, n narrator, w io.Writer, fd int, cfg config, open *atomic.Int64) (err error) {
	c := conn{fd: fd}
	if cfg.netpoll {
		if c, err = handOver(n, fd); err != nil {
			return errors.Join(err, c.close(n))
		}
	}
	defer func() { err = errors.Join(err, c.close(n)) }()
	stop := wakeOnCancel(ctx, n, fd) // a silent client must not hold up Ctrl-C
	defer stop()

	peer, err := showConn(n, w, fd)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "open connections: %d\n", open.Add(1))
	defer open.Add(-1)
	if err := echo(n, c, cfg.bufsize); err != nil {
		return fmt.Errorf("%s: %w", peer, err)
	}
	return nil
}

// endregion serve

// A conn is a connected socket: a blocking descriptor, or one handed to
// Go's runtime, which then owns it (f) and waits for it (rc).
type conn struct {
	fd int
	f  *os.File        // nil for a blocking descriptor
	rc syscall.RawConn // f's descriptor, for reads and writes the runtime waits for
}

// region handOver
// handOver makes fd non-blocking and gives it to Go's runtime; on failure
// the conn it returns is still the one to close. os.NewFile
// sees O_NONBLOCK and registers the descriptor with the runtime's epoll,
// once; from then on a read that would block fails with EAGAIN, and the
// runtime parks the goroutine, not the thread, until epoll says the
// descriptor is ready. This is what the net package does for every socket.
func handOver(n narrator, fd int) (conn, error) {
	err := unix.SetNonblock(fd, true)
	n.call(fmt.Sprintf("fcntl(%d, F_SETFL, O_RDWR|O_NONBLOCK)", fd), "0", err)
	if err != nil {
		return conn{fd: fd}, os.NewSyscallError("fcntl O_NONBLOCK", err)
	}
	f := os.NewFile(uintptr(fd), "connection "+strconv.Itoa(fd))
	rc, err := f.SyscallConn()
	if err != nil {
		return conn{fd: fd, f: f}, err
	}
	return conn{fd: fd, f: f, rc: rc}, nil
}

// endregion handOver

// close closes the connection: with unix.Close, or, once the runtime owns
// it, with f.Close, which takes it out of the runtime's epoll first.
func (c conn) close(n narrator) error {
	if c.f == nil {
		return closeFD(n, c.fd)
	}
	err := c.f.Close()
	n.call(fmt.Sprintf("close(%d)", c.fd), "0", err)
	return err
}
