//go:build linux

//go:debug containermaxprocs=0

// Command 19-http is chapter 17's event loop speaking HTTP/1.1 instead of
// echoing lines. Each client's bytes go to a parser (parse.go) that finds
// whole requests in them, however the reads cut them, and the server
// answers each in order: GET / and HEAD / with a short page, POST /echo
// with the body it was sent, 404 and 405 otherwise. A request the parser
// refuses (a bare LF, two Content-Lengths, a header section too large...)
// is answered with its status and the connection is closed. Keep-alive,
// pipelining and the chunked coding work as RFC 9112 says.
//
//	go run ./code/19-http                  # then: curl -v http://127.0.0.1:8080/
//	go run ./code/19-http -maxbody 65536   # refuse bodies over 64 KiB (413)
//
// The loop is chapter 17's (loop.go, epoll.go, names.go, server.go, rw.go,
// wake.go, socket.go, narrate.go); the body's framing is in body.go, the
// responses in response.go.
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
	lim       limits        // the most a request may hold: see parse.go
}

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "localhost:8080", "`host:service` to listen on")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	flag.IntVar(&cfg.backlog, "backlog", 128, "the `backlog` argument of listen")
	flag.IntVar(&cfg.bufsize, "bufsize", 4096, "server: the most bytes one read asks for")
	flag.BoolVar(&cfg.v6only, "v6only", true, "server: set IPV6_V6ONLY on IPv6 sockets, so they take IPv6 clients only")
	flag.IntVar(&cfg.loops, "loops", 1, "server: how many event `loops` (one per core: as many as CPUs)")
	flag.IntVar(&cfg.reads, "reads", 16, "server: the most `reads` per client per turn, so that one client cannot starve the others")
	flag.DurationVar(&cfg.idle, "idle", 0, "server: close a client silent this long (0: never)")
	flag.BoolVar(&cfg.edge, "et", false, "server: edge-triggered epoll (EPOLLET)")
	flag.BoolVar(&cfg.alwaysOut, "alwaysout", false, "server: ask for EPOLLOUT always (a mistake, to see the loop spin)")
	flag.IntVar(&cfg.lim.body, "maxbody", 1<<20, "server: the largest request body, in `bytes` (413 above it)")
	flag.Parse()
	// RFC 9112 sets no limits; these are nginx's and Go's order of size.
	cfg.lim.line, cfg.lim.header, cfg.lim.fields = 8<<10, 16<<10, 100
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

// run is the server: cfg.loops event loops, the first started here so that
// the others can take the port it got.
func run(ctx context.Context, cfg config, w, stderr io.Writer) error {
	n := newNarrator(w, cfg.quiet)
	addrs, err := resolve(ctx, n, cfg.addr, true)
	switch {
	case err != nil:
		return err
	case cfg.bufsize < 1 || cfg.reads < 1 || cfg.loops < 1 || cfg.lim.body < 0:
		return fmt.Errorf("-bufsize, -reads and -loops must be at least 1, -maxbody at least 0")
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
		got, err := epollWait(l.n, l.epfd, events, l.timeout(time.Now()))
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
		l.expire(time.Now())
	}
}

// endregion serve

// region step
// step does what a ready client allows, as chapter 17's did: write what
// it is owed, then read, handing each read's bytes to the protocol. Once
// the protocol has given a client its last answer (closing), step reads
// no more from it, and closes it when that answer is all written.
func (l *loop) step(c *conn) {
	c.last = time.Now() // for -idle: it did something
	err := l.flush(c)
	for i := 0; err == nil && len(c.out) == 0 && !c.closing && i < l.cfg.reads; i++ {
		var got int
		got, err = readFD(l.n, c.fd, l.buf)
		if errors.Is(err, unix.EAGAIN) {
			err = nil
			break // nothing more for now: back to epoll_wait
		}
		if err == nil && got == 0 { // the client closed its end
			err = io.EOF
			if len(c.in) > 0 {
				err = fmt.Errorf("end of file after %d bytes of a request", len(c.in))
			}
		}
		if err == nil {
			c.in = append(c.in, l.buf[:got]...)
			l.answer(c)
			err = l.flush(c)
		}
	}
	if err == nil && c.closing && len(c.out) == 0 {
		err = io.EOF // its last answer is written
	}
	if err != nil {
		if err != io.EOF { // one client's failure is not the server's
			fmt.Fprintf(l.stderr, "%s: %v\n", c.peer, err)
		}
		l.drop(c)
		return
	}
	l.watch(c)
}

// endregion step

// region answer
// answer is the protocol: it answers every whole request at the start of
// c.in, in order (a client may send several before reading any answer:
// pipelining), and leaves the start of the next one in c.in until more of
// it comes. A request the parser refuses is answered with its status, and
// is the connection's last: where one request's bytes end is no longer
// known, so nothing after them can be trusted to be a request.
func (l *loop) answer(c *conn) {
	for !c.closing {
		req, used, err := parse(c.in, l.cfg.lim)
		var bad *badRequest
		if errors.As(err, &bad) {
			fmt.Fprintf(l.stderr, "%s: %v\n", c.peer, err)
			c.out = l.respond(c.out, nil, bad.status, []byte(bad.reason+"\n"), "text/plain; charset=utf-8")
			c.in, c.closing = nil, true
			return
		}
		if req == nil {
			return // the rest of the request has not come yet
		}
		c.in, c.closing = c.in[used:], req.close
		c.out = l.route(c.out, req)
	}
	c.in = nil // nothing after the last request is read
}

// endregion answer

// region route
// route answers a request the parser took: what this server serves.
func (l *loop) route(out []byte, r *request) []byte {
	const text = "text/plain; charset=utf-8"
	switch {
	case r.path == "/" && (r.method == "GET" || r.method == "HEAD"):
		return l.respond(out, r, 200, []byte(page), text)
	case r.path == "/echo" && r.method == "POST":
		return l.respond(out, r, 200, r.body, "application/octet-stream")
	case r.path == "/":
		return l.respond(out, r, 405, []byte("GET or HEAD only\n"), text, "Allow", "GET, HEAD")
	case r.path == "/echo":
		return l.respond(out, r, 405, []byte("POST only\n"), text, "Allow", "POST")
	}
	return l.respond(out, r, 404, []byte("not found\n"), text)
}

// endregion route
