//go:build linux

//go:debug containermaxprocs=0

// Command 17-epoll is chapter 16's event loop on epoll. The kernel keeps
// the list of descriptors to watch (epoll_ctl changes it), and epoll_wait
// returns only the ready ones, so a turn costs in what is ready, not in
// what is watched. The loop also closes idle clients (-idle), asks for
// EPOLLOUT only while a client is owed bytes, reads at most -reads times
// per client per turn, and runs once per core with -loops, each loop with
// listening sockets of its own (SO_REUSEPORT). The protocol is one
// function, echo: the loop knows nothing of lines.
//
//	go run ./code/17-epoll                   # one loop, level-triggered
//	go run ./code/17-epoll -loops 2          # one loop per core
//	go run ./code/17-epoll -idle 30s         # close a client idle for 30 s
//	go run ./code/17-epoll -et -reads 1      # edge-triggered without draining: it hangs
//	go run ./code/17-epoll -alwaysout        # EPOLLOUT always asked for: it spins
//	go run ./code/17-epoll -client -msg hi   # chapter 12's client
//
// The loop's state is in loop.go, the epoll calls in epoll.go, chapter
// 12's names in names.go, listening and accepting in server.go, the client
// in client.go, reads and writes in rw.go, Ctrl-C in wake.go, earlier
// chapters' calls in socket.go, the narrator in narrate.go.
//
// It needs Linux: epoll is Linux's own.
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
	"sync"
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
	loops     int           // how many event loops, each on sockets of its own
	reads     int           // the most reads per client per turn: fairness
	idle      time.Duration // close a client silent this long; 0: never
	edge      bool          // edge-triggered (EPOLLET) instead of level-triggered
	alwaysOut bool          // ask for EPOLLOUT always (a mistake, to see it spin)

	client bool     // be the client: connect to addr
	msgs   []string // the lines the client sends
}

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "localhost:8080", "`host:service` to listen on (or, with -client, to connect to)")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	flag.IntVar(&cfg.backlog, "backlog", 128, "the `backlog` argument of listen")
	flag.IntVar(&cfg.bufsize, "bufsize", 4096, "server: the most bytes one read asks for")
	flag.BoolVar(&cfg.v6only, "v6only", true, "server: set IPV6_V6ONLY on IPv6 sockets, so they take IPv6 clients only")
	flag.IntVar(&cfg.loops, "loops", 1, "server: how many event `loops` (one per core: as many as CPUs)")
	flag.IntVar(&cfg.reads, "reads", 16, "server: the most `reads` per client per turn, so that one client cannot starve the others")
	flag.DurationVar(&cfg.idle, "idle", 0, "server: close a client silent this long (0: never)")
	flag.BoolVar(&cfg.edge, "et", false, "server: edge-triggered epoll (EPOLLET)")
	flag.BoolVar(&cfg.alwaysOut, "alwaysout", false, "server: ask for EPOLLOUT always (a mistake, to see the loop spin)")
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

// run is the client with -client, else the server: cfg.loops event loops,
// the first started here so that the others can take the port it got.
func run(ctx context.Context, cfg config, w, stderr io.Writer) error {
	n := newNarrator(w, cfg.quiet)
	addrs, err := resolve(ctx, n, cfg.addr, !cfg.client)
	switch {
	case err != nil:
		return err
	case cfg.client:
		return runClient(ctx, cfg, n, w, addrs)
	case cfg.bufsize < 1 || cfg.reads < 1 || cfg.loops < 1:
		return fmt.Errorf("-bufsize, -reads and -loops must be at least 1")
	}
	first, err := newLoop(n, w, stderr, addrs, cfg)
	if err != nil {
		return err
	}
	// The others listen on the port the first got (with port 0, the one the
	// kernel picked).
	for i, a := range addrs {
		addrs[i] = netip.AddrPortFrom(a.Addr(), first.port)
	}
	loops := []*loop{first}
	for range cfg.loops - 1 {
		l, err := newLoop(n, w, stderr, addrs, cfg)
		if err != nil {
			for _, l := range loops {
				err = errors.Join(err, l.close())
			}
			return err
		}
		loops = append(loops, l)
	}
	errs := make([]error, len(loops))
	var wg sync.WaitGroup
	for i, l := range loops {
		wg.Go(func() { errs[i] = errors.Join(l.serve(ctx), l.close()) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// region serve
// serve is the event loop. Each turn waits in epoll_wait for what is
// ready, at most until the next idle client's time is up, and serves only
// that: a listening socket's connection, a client's bytes or room to
// write. Then it closes the clients whose time is up.
func (l *loop) serve(ctx context.Context) error {
	// Ctrl-C shuts down the first listening socket, which wakes epoll_wait.
	stop := wakeOnCancel(ctx, l.n, l.lfds[0])
	defer stop()
	events := make([]unix.EpollEvent, 128)
	for {
		timeout := l.timeout(time.Now())
		if len(l.pending) > 0 {
			timeout = 0 // clients with bytes unread: do not wait for new events
		}
		pending := l.pending
		l.pending = nil
		got, err := epollWait(l.n, l.epfd, events, timeout)
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return nil // shutdown woke epoll_wait: we are stopping, not failing
		}
		for _, ev := range events[:got] {
			fd := int(ev.Fd)
			if slices.Contains(l.lfds, fd) {
				if err := l.accept(fd); err != nil {
					return err
				}
				continue
			}
			if c := l.conns[fd]; c != nil {
				l.step(c)
			}
		}
		for _, c := range pending { // edge-triggered: epoll will not report them again
			if l.conns[c.fd] == c {
				l.step(c)
			}
		}
		l.expire(time.Now())
	}
}

// endregion serve

// region step
// step does what a ready client allows, as chapter 16's did: write what
// it is owed, then read, at most cfg.reads times, handing each read's
// bytes to the protocol. Level-triggered, a client left with bytes unread
// is reported again at the next turn; edge-triggered, it is not, until
// more bytes come: an edge-triggered loop must read until EAGAIN.
func (l *loop) step(c *conn) {
	c.last = time.Now() // for -idle: it did something
	err := l.flush(c)
	i := 0
	for ; err == nil && len(c.out) == 0 && i < l.cfg.reads; i++ {
		var got int
		got, err = readFD(l.n, c.fd, l.buf)
		if errors.Is(err, unix.EAGAIN) {
			err = nil
			break // nothing more for now: back to epoll_wait
		}
		if err == nil && got == 0 { // the client closed its end
			err = io.EOF
			if len(c.in) > 0 {
				err = fmt.Errorf("end of file after %d bytes of a line", len(c.in))
			}
		}
		if err == nil {
			c.in, c.out, err = echo(append(c.in, l.buf[:got]...), c.out)
		}
		if err == nil {
			err = l.flush(c)
		}
	}
	if err != nil {
		if err != io.EOF { // one client's failure is not the server's
			fmt.Fprintf(l.stderr, "%s: %v\n", c.peer, err)
		}
		l.drop(c)
		return
	}
	if l.cfg.edge && i == l.cfg.reads && len(c.out) == 0 && !slices.Contains(l.pending, c) {
		l.pending = append(l.pending, c) // stopped before EAGAIN: read it next turn
	}
	l.watch(c)
}

// endregion step

// region echo
// echo is the protocol: it takes what has come and what is owed, and
// returns what is left of the next line and what is owed now. Another
// protocol is another function of this shape; the loop stays.
func echo(in, out []byte) (rest, owed []byte, err error) {
	for i := slices.Index(in, '\n'); i >= 0; i = slices.Index(in, '\n') {
		out, in = append(out, in[:i+1]...), in[i+1:]
	}
	if len(in) >= maxLine {
		return in, out, fmt.Errorf("no newline in %d bytes", len(in))
	}
	return in, out, nil
}

// endregion echo
