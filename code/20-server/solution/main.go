//go:build linux

//go:debug containermaxprocs=0

// Command 20-server is the book's last program: chapter 19's HTTP server
// serving the files under -root, this book's site among them, on one
// epoll loop per core. GET and HEAD, Content-Type by extension,
// index.html for a directory, 304 for a copy the client already has, 206
// for a range; no path leaves the root (files.go). Small files are sent
// from memory with one writev, head and body together; large ones with
// sendfile, straight from the page cache. Every connection has a deadline
// (idle, reading a request, writing an answer), from the loop's timers;
// out of descriptors, the loop stops accepting for a while instead of
// spinning; SIGTERM stops accepting, finishes what is under way, exits 0.
//
//	go run ./code/20-server -root site   # then open http://127.0.0.1:8080/
//
// Files: files.go; answers: response.go; deadlines: deadlines.go. It
// needs Linux: epoll, openat2 and sendfile are Linux's own.
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
	"runtime"
	"slices"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type config struct {
	addr    string        // HOST:SERVICE to listen on
	root    string        // the directory served
	quiet   bool          // do not narrate system calls
	log     bool          // print one line per answer: the access log
	backlog int           // the backlog argument of listen
	bufsize int           // how many bytes each of the server's reads asks for
	v6only  bool          // set IPV6_V6ONLY on IPv6 listening sockets
	loops   int           // how many event loops, each with its own listening sockets
	reads   int           // the most reads per client per turn: fairness
	idle    time.Duration // close a client that sends no request this long
	header  time.Duration // close a client whose request is not all here this long after it began
	write   time.Duration // close a client that takes none of its answer this long
	pause   time.Duration // out of descriptors: stop accepting this long
	lim     limits        // the most a request may hold: see parse.go
}

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "localhost:8080", "`host:service` to listen on")
	flag.StringVar(&cfg.root, "root", ".", "the `directory` to serve")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	flag.BoolVar(&cfg.log, "log", false, "print one line per answer, even with -q: client, request line, status, bytes")
	flag.IntVar(&cfg.backlog, "backlog", 4096, "the `backlog` argument of listen")
	flag.IntVar(&cfg.bufsize, "bufsize", 16384, "the most bytes one read asks for")
	flag.BoolVar(&cfg.v6only, "v6only", true, "set IPV6_V6ONLY on IPv6 sockets, so they take IPv6 clients only")
	flag.IntVar(&cfg.loops, "loops", runtime.NumCPU(), "how many event `loops` (default: one per CPU)")
	flag.IntVar(&cfg.reads, "reads", 16, "the most `reads` per client per turn, so that one client cannot starve the others")
	flag.DurationVar(&cfg.idle, "idle", 60*time.Second, "close a client that sends no request this long")
	flag.DurationVar(&cfg.header, "header", 10*time.Second, "close a client whose request is not all here this long after it began")
	flag.DurationVar(&cfg.write, "write", 30*time.Second, "close a client that takes none of its answer this long")
	flag.DurationVar(&cfg.pause, "pause", time.Second, "out of descriptors (EMFILE): stop accepting this long, or until a client leaves")
	flag.Parse()
	cfg.lim = limits{line: 8 << 10, header: 16 << 10, fields: 100, body: 0} // no bodies: it serves files
	// SIGINT and SIGTERM cancel ctx: run stops accepting, finishes, returns.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run is the server: the root, then cfg.loops loops, on the first's port.
func run(ctx context.Context, cfg config, w, stderr io.Writer) error {
	n := newNarrator(w, cfg.quiet)
	if cfg.bufsize < 1 || cfg.reads < 1 || cfg.loops < 1 {
		return fmt.Errorf("-bufsize, -reads and -loops must be at least 1")
	}
	root, err := openRoot(n, cfg.root)
	if err != nil {
		return err
	}
	defer closeFD(n, root)
	addrs, err := resolve(ctx, n, cfg.addr, true)
	if err != nil {
		return err
	}
	first, err := newLoop(n, w, stderr, addrs, cfg, root)
	if err != nil {
		return err
	}
	for i, a := range addrs {
		addrs[i] = netip.AddrPortFrom(a.Addr(), first.port)
	}
	loops := []*loop{first}
	for range cfg.loops - 1 {
		l, err := newLoop(n, w, stderr, addrs, cfg, root)
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
// serve is chapter 19's event loop, with an end: once ctx is cancelled
// (SIGTERM), it takes the connections already queued, closes its
// listening sockets, closes the clients that are between requests, and
// goes on until the others have had their answers (or their time is up).
func (l *loop) serve(ctx context.Context) error {
	stop := l.wakeOnCancel(ctx)
	defer stop()
	events := make([]unix.EpollEvent, 256)
	for len(l.lfds) > 0 || len(l.conns) > 0 {
		got, err := epollWait(l.n, l.epfd, events, l.timeout(time.Now()))
		if err != nil {
			return err
		}
		for _, ev := range events[:got] {
			fd := int(ev.Fd)
			switch {
			case fd == l.wake:
				l.drain()
			case slices.Contains(l.lfds, fd):
				if err := l.accept(fd); err != nil {
					return err
				}
			case l.conns[fd] != nil:
				l.step(l.conns[fd])
			}
		}
		l.expire(time.Now())
	}
	return nil
}

// endregion serve

// region step
// step does what a ready client allows: write what it is owed, then read
// and answer, as long as it is owed nothing. A read that brings a whole
// request is parsed where it lies, in the loop's buffer; only the start
// of a request not all here is copied into the client's own.
func (l *loop) step(c *conn) {
	if c.shut {
		l.lingerOn(c)
		return
	}
	err := l.flush(c)
	for i := 0; err == nil && !c.owed() && !c.closing && i < l.cfg.reads; i++ {
		var got int
		got, err = readFD(l.n, c.fd, l.buf)
		if errors.Is(err, unix.EAGAIN) {
			err = nil
			break
		}
		if err == nil && got == 0 {
			err = io.EOF
			if len(c.in) > 0 {
				err = fmt.Errorf("end of file after %d bytes of a request", len(c.in))
			}
		}
		if err == nil {
			c.progress = true
			l.answer(c, l.buf[:got])
			err = l.flush(c)
		}
		if got < len(l.buf) {
			break // the kernel had no more: no read just to hear EAGAIN
		}
	}
	for err == nil && !c.owed() && !c.closing && l.answer(c, nil) {
		err = l.flush(c) // requests that waited behind a file's answer
	}
	if err == nil && c.closing && !c.owed() {
		l.linger(c) // its last answer is with the kernel: see loop.go
		return
	}
	if err != nil {
		if err != io.EOF && !errors.Is(err, unix.ECONNRESET) && !errors.Is(err, unix.EPIPE) {
			fmt.Fprintf(l.stderr, "%s: %v\n", c.peer, err)
		}
		l.drop(c)
		return
	}
	l.watch(c)
}

// endregion step

// region answer
// answer is chapter 19's: it answers the whole requests in c.in and then
// in more, in order, and keeps the start of the next one. It stops after
// an answer whose body is a file or a cached file's bytes: that body is
// sent first, and the requests behind it wait in c.in. It reports
// whether it answered any.
func (l *loop) answer(c *conn, more []byte) (answered bool) {
	in := more
	l.peer = c.peer // for the access log
	if len(c.in) > 0 {
		c.in = append(c.in, more...)
		in = c.in
	}
	for !c.closing && len(c.body) == 0 && c.ffd < 0 {
		req := &l.req // one request, reused: parse allocates nothing
		used, err := parse(in, l.cfg.lim, req)
		if bad, ok := errors.AsType[*badRequest](err); ok {
			fmt.Fprintf(l.stderr, "%s: %v\n", c.peer, err)
			c.out = l.respond(c.out, nil, bad.status, []byte(bad.reason+"\n"), "text/plain; charset=utf-8")
			in, c.closing, answered = nil, true, true
			break
		}
		if used == 0 {
			break // not all here
		}
		c.fresh, c.progress, answered = false, true, true
		in, c.closing = in[used:], req.close || l.draining
		req.close = c.closing
		if string(req.method) != "GET" && string(req.method) != "HEAD" {
			c.out = l.respond(c.out, req, 405, []byte("GET or HEAD only\n"), "text/plain; charset=utf-8", "Allow", "GET, HEAD")
			continue
		}
		l.serveFile(c, req)
	}
	c.keep(in, l)
	return answered
}

// endregion answer
