//go:build linux

//go:debug containermaxprocs=0

// Command 15-pools is chapter 14's server with a fixed number of workers
// instead of a goroutine per connection, in the three classic shapes:
//
//	go run ./code/15-pools                           # one acceptor, a bounded pool of 4 over a channel
//	go run ./code/15-pools -design accept -workers 4 # 4 workers blocked in accept on one socket
//	go run ./code/15-pools -design reuseport         # a listening socket per worker, SO_REUSEPORT
//	go run ./code/15-pools -design goroutine         # chapter 14: a goroutine per connection
//	go run ./code/15-pools -client -msg hi           # chapter 12's client
//
// Each worker serves one connection at a time, and says which one it
// took ("worker 2 serves ..."), so that a run shows how connections
// spread. This file holds the designs; resolving and listening are in
// server.go, the hand-over to the runtime in conn.go, the client in
// client.go, reads and writes in rw.go, Ctrl-C in wake.go, earlier calls
// in socket.go, and the narrator in narrate.go.
//
// It needs Linux: it uses accept4, SOCK_CLOEXEC and SO_REUSEPORT.
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
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type config struct {
	addr      string        // HOST:SERVICE to listen on or connect to
	quiet     bool          // do not narrate system calls
	backlog   int           // the backlog argument of listen
	bufsize   int           // how many bytes each of the server's reads asks for
	v6only    bool          // set IPV6_V6ONLY on IPv6 listening sockets
	netpoll   bool          // hand each connection to Go's runtime instead of blocking in read
	reuseport bool          // set SO_REUSEPORT on listening sockets (-design reuseport)
	design    string        // goroutine, accept, reuseport or pool
	workers   int           // how many workers the accept, reuseport and pool designs start
	idle      time.Duration // close a connection silent this long; 0: never

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
	flag.StringVar(&cfg.design, "design", "pool", "server: `goroutine` per connection, workers in accept, reuseport, or an acceptor and a pool")
	flag.IntVar(&cfg.workers, "workers", 4, "server: how many `workers` serve connections (not with -design goroutine)")
	flag.DurationVar(&cfg.idle, "idle", 0, "server: close a connection silent for this `long` (0: never)")
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
	if cfg.workers < 1 {
		return fmt.Errorf("-workers %d: want at least 1", cfg.workers)
	}
	if cfg.design == "reuseport" {
		// One listening socket per worker on the first address, each
		// with SO_REUSEPORT: the kernel spreads connections among them.
		cfg.reuseport = true
		addrs = slices.Repeat(addrs[:1], cfg.workers)
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
	var open atomic.Int64
	switch cfg.design {
	case "goroutine":
		return serveAll(ctx, n, w, stderr, fds, cfg)
	case "pool":
		return servePool(ctx, n, w, stderr, fds, cfg, &open)
	case "epoll", "exclusive":
		return serveEpoll(ctx, n, w, stderr, fds[0], cfg, &open)
	case "accept", "reuseport":
		return serveWorkers(ctx, n, w, stderr, fds, cfg, &open)
	}
	return fmt.Errorf("-design %s: want goroutine, accept, reuseport, epoll, exclusive or pool", cfg.design)
}

// region serveWorkers
// serveWorkers starts cfg.workers workers that each block in accept4, then
// serve the connection they got, one at a time: the prefork and
// prethreaded servers' shape. With -design accept they share one listening
// socket, and the kernel wakes one of the workers waiting in accept4 for
// each connection; with reuseport each has a socket of its own, and the
// kernel picks the socket by a hash of the connection's addresses.
func serveWorkers(ctx context.Context, n narrator, w, stderr io.Writer, fds []int, cfg config, open *atomic.Int64) error {
	for _, fd := range fds {
		stop := wakeOnCancel(ctx, n, fd) // accept4 fails with EINVAL: the workers stop
		defer stop()
	}
	var workers sync.WaitGroup
	errs := make([]error, cfg.workers)
	for i := range cfg.workers {
		lfd := fds[i%len(fds)]
		workers.Go(func() {
			var served int
			defer reportServed(n, w, i+1, &served)
			for {
				cfd, err := acceptConn(n, lfd)
				if err != nil {
					if ctx.Err() == nil {
						errs[i] = err
					}
					return
				}
				work(ctx, n, w, stderr, i+1, cfd, cfg, open, &served)
			}
		})
	}
	workers.Wait()
	return errors.Join(errs...)
}

// endregion serveWorkers

// region servePool
// servePool accepts as chapter 14 does, but hands each descriptor over a
// channel to a fixed pool of workers instead of starting a goroutine: the
// channel's buffer is CS:APP's sbuf, the bounded queue between one
// producer and many consumers. A connection waits in it while every
// worker is busy, however long that is.
func servePool(ctx context.Context, n narrator, w, stderr io.Writer, fds []int, cfg config, open *atomic.Int64) error {
	conns := make(chan int, cfg.workers)
	var workers sync.WaitGroup
	for i := range cfg.workers {
		workers.Go(func() {
			var served int
			defer reportServed(n, w, i+1, &served)
			for cfd := range conns {
				work(ctx, n, w, stderr, i+1, cfd, cfg, open, &served)
			}
		})
	}
	defer workers.Wait()
	defer close(conns) // the workers serve what is queued, then stop
	stop := wakeOnCancel(ctx, n, fds[0])
	defer stop()
	pfds := make([]unix.PollFd, len(fds))
	for {
		for i, fd := range fds {
			pfds[i] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
		}
		if err := pollAll(n, pfds); err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil
		}
		for _, p := range pfds {
			if p.Revents&unix.POLLIN == 0 {
				continue
			}
			cfd, err := acceptConn(n, int(p.Fd))
			if err != nil {
				return err
			}
			conns <- cfd // waits while the queue is full
		}
	}
}

// endregion servePool

// work is one worker's turn with one connection: it says which worker
// took which client, then serves it to the end.
func work(ctx context.Context, n narrator, w, stderr io.Writer, worker, fd int, cfg config, open *atomic.Int64, served *int) {
	*served++ // this worker's own count: no other goroutine touches it
	n.mu.Lock()
	fmt.Fprintf(w, "worker %d serves descriptor %d\n", worker, fd)
	n.mu.Unlock()
	if err := serve(ctx, n, w, fd, cfg, open); err != nil {
		fmt.Fprintln(stderr, err)
	}
}

// reportServed prints how many connections a worker served, as it stops.
func reportServed(n narrator, w io.Writer, worker int, served *int) {
	n.mu.Lock()
	defer n.mu.Unlock()
	fmt.Fprintf(w, "worker %d served %d connections\n", worker, *served)
}
