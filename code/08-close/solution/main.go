//go:build linux

//go:debug containermaxprocs=0

// Command 08-close is chapter 7's echo server and client, with the ways a
// connection can end. By default the client closes first, with a FIN, and
// keeps the connection in TIME_WAIT. With -close shutdown it half-closes:
// it sends its lines, shuts down its sending side, and still reads the whole
// reply, which a -sort server writes only after end of file. -close linger0
// and -close unread end the connection with an RST instead, and the
// server's read fails with ECONNRESET; the server goes on accepting.
//
// This is the reference solution to the chapter's exercises, the chapter's
// program changed as little as possible so that
//
//  1. the client takes -n and does the whole exchange -n times, each on a
//     new connection, leaving one TIME_WAIT per connection (client.go);
//  2. the server takes -linger0 and ends every connection with an RST;
//  3. the server takes -leak and, at end of file, keeps the connection open
//     until it exits: CLOSE_WAIT, one descriptor per client;
//  4. the -close shutdown client is written with the net package (halfclose.go).
//
// Try the exercises before you read it. Run it as the chapter's program:
//
//	go run ./code/08-close/solution                               # serve clients one at a time
//	go run ./code/08-close/solution -client -n 50                 # 50 connections, 50 TIME_WAITs
//	go run ./code/08-close/solution -sort -linger0                # reply after end of file, then RST
//	go run ./code/08-close/solution -leak                         # never close at end of file: CLOSE_WAIT
//	go run ./code/08-close/solution -client -close shutdown -msg b -msg a  # half-close, net package
//	go run ./code/08-close/solution -client -close linger0        # close with SO_LINGER {1, 0}: RST
//	go run ./code/08-close/solution -client -close unread         # close with the echo unread: RST
//	go run ./code/08-close/solution -client -hold                 # connect, say nothing until Ctrl-C
//	go run ./code/08-close/solution -q                            # without the narration
//
// and grade it with make exercise CH=08 PROGRAM=code/08-close/solution.
//
// It needs Linux: it uses accept4 and SOCK_CLOEXEC.
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

	"golang.org/x/sys/unix"
)

type config struct {
	addr      netip.AddrPort // the local address to bind
	quiet     bool           // do not narrate system calls
	reuseaddr bool           // set SO_REUSEADDR before bind
	backlog   int            // the backlog argument of listen
	sort      bool           // the server replies after end of file, lines sorted
	linger0   bool           // the server ends every connection with RST (exercise 2)
	leak      bool           // the server never closes a connection at end of file (exercise 3)

	client bool     // be the client: connect to addr
	msgs   []string // the lines the client sends
	hold   bool     // the client sends nothing and holds on until Ctrl-C
	close  string   // how the client ends: close, shutdown, linger0 or unread
	count  int      // how many times the client does the whole exchange (exercise 1)
}

func main() {
	var cfg config
	flag.TextVar(&cfg.addr, "addr", netip.MustParseAddrPort("127.0.0.1:8080"), "`address` to listen on (or, with -client, to connect to), IP:PORT or [IPv6]:PORT; port 0 lets the kernel choose")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	// On by default, as Go's net package sets it on every listening socket.
	flag.BoolVar(&cfg.reuseaddr, "reuseaddr", true, "set SO_REUSEADDR before bind")
	// Small on purpose, so that a handful of clients fills the queue.
	flag.IntVar(&cfg.backlog, "backlog", 2, "the `backlog` argument of listen")
	flag.BoolVar(&cfg.sort, "sort", false, "server: read to end of file, then reply with the lines sorted")
	flag.BoolVar(&cfg.client, "client", false, "be the client: connect to -addr")
	flag.Func("msg", "client: a `line` to send; repeat for more (default hello)", func(s string) error {
		cfg.msgs = append(cfg.msgs, s)
		return nil
	})
	flag.BoolVar(&cfg.hold, "hold", false, "client: connect, then send nothing until Ctrl-C")
	flag.StringVar(&cfg.close, "close", "close", "client: how to end: close, shutdown (half-close), linger0 or unread (both RST)")
	flag.IntVar(&cfg.count, "n", 1, "client: do the whole exchange `N` times, each on a new connection")
	flag.BoolVar(&cfg.linger0, "linger0", false, "server: set SO_LINGER {1, 0} on each connection before closing it, so that it ends with RST")
	flag.BoolVar(&cfg.leak, "leak", false, "server: at end of file, keep the connection open until exit (a CLOSE_WAIT leak)")
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
	if cfg.client {
		if !slices.Contains([]string{"close", "shutdown", "linger0", "unread"}, cfg.close) {
			return fmt.Errorf("-close %s: want close, shutdown, linger0 or unread", cfg.close)
		}
		if cfg.count < 1 {
			return fmt.Errorf("-n %d: want at least 1 exchange", cfg.count)
		}
		return runClient(ctx, cfg, n, w)
	}
	fd, err := listenOn(n, w, cfg)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeFD(n, fd)) }()
	// Exercise 3. With -leak, serve keeps each connection that reached end
	// of file open, here, and only the program's exit closes them: until
	// then each one sits in CLOSE_WAIT and holds a descriptor.
	var leaked *[]int
	if cfg.leak {
		leaked = new([]int)
		defer func() {
			for _, cfd := range *leaked {
				err = errors.Join(err, closeFD(n, cfd))
			}
		}()
	}

	// region loop
	// Ctrl-C must not wait for a client that may never come: see wakeOnCancel.
	stop := wakeOnCancel(ctx, n, fd)
	defer stop()
	// An iterative server: it serves one client from accept4 to close before
	// it takes the next. Its listening socket never closes until it exits.
	for {
		cfd, err := acceptConn(n, fd)
		if err != nil {
			if ctx.Err() != nil {
				return nil // shutdown woke accept4: we are stopping, not failing
			}
			return err
		}
		// One client's failure, a reset among them, is not the server's:
		// report it and go on.
		if err := serve(ctx, n, w, cfd, cfg, leaked); err != nil {
			fmt.Fprintln(stderr, err)
		}
	}
	// endregion loop
}

// region serve
// serve echoes one client's lines until the client closes its end (or, with
// cfg.sort, replies only then), and closes the connection: abortively with
// cfg.linger0, and not at all at end of file if leaked is not nil, which
// then keeps the descriptor instead.
func serve(ctx context.Context, n narrator, w io.Writer, fd int, cfg config, leaked *[]int) (err error) {
	defer func() {
		if leaked != nil && err == nil {
			// Exercise 3: "forget" to close at end of file. The client's FIN
			// has put this end in CLOSE_WAIT, and it stays there.
			*leaked = append(*leaked, fd)
			return
		}
		if cfg.linger0 {
			// Exercise 2: the reply has been written; the close below now
			// sends RST instead of FIN, and no TIME_WAIT is left anywhere.
			err = errors.Join(err, setLinger0(n, fd))
		}
		err = errors.Join(err, closeFD(n, fd))
	}()
	stop := wakeOnCancel(ctx, n, fd) // a silent client must not hold up Ctrl-C
	defer stop()

	peer, err := showConn(n, w, fd)
	if err != nil {
		return err
	}
	if cfg.sort {
		err = sortReply(n, fd)
	} else {
		err = echo(n, fd)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", peer, err)
	}
	return nil
}

// endregion serve

// region sortReply
// sortReply reads everything the client sends, up to end of file, then
// writes it back with the lines sorted. It cannot reply any sooner: the last
// line may sort first. Meanwhile the client's FIN has put this end of the
// connection in CLOSE_WAIT, which only means the client sends no more.
func sortReply(n narrator, fd int) error {
	buf := make([]byte, bufSize)
	var all []byte
	for {
		got, err := readFD(n, fd, buf)
		if err != nil {
			return err
		}
		if got == 0 {
			break
		}
		if all = append(all, buf[:got]...); len(all) > 64*maxLine {
			return fmt.Errorf("more than %d bytes to sort", 64*maxLine)
		}
	}
	info, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO)
	if err != nil {
		n.call(fmt.Sprintf("getsockopt(%d, SOL_TCP, TCP_INFO)", fd), "", err)
		return os.NewSyscallError("getsockopt TCP_INFO", err)
	}
	state := lookup(int(info.State), map[int]string{unix.BPF_TCP_CLOSE_WAIT: "TCP_CLOSE_WAIT"})
	n.call(fmt.Sprintf("getsockopt(%d, SOL_TCP, TCP_INFO)", fd), "{tcpi_state="+state+"}", nil)
	lines := strings.SplitAfter(string(all), "\n")
	if !strings.HasSuffix(string(all), "\n") {
		return fmt.Errorf("end of file after %d bytes of a line", len(lines[len(lines)-1]))
	}
	lines = lines[:len(lines)-1] // SplitAfter leaves "" after the last newline
	slices.Sort(lines)
	return writeAll(n, fd, []byte(strings.Join(lines, "")))
}

// endregion sortReply
