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
//	go run ./code/08-close                               # serve clients one at a time
//	go run ./code/08-close -sort                         # reply after end of file, lines sorted
//	go run ./code/08-close -client -msg hi -msg yo       # send two lines, check both echoes, close
//	go run ./code/08-close -client -close shutdown -msg b -msg a  # half-close, then read the reply
//	go run ./code/08-close -client -close linger0        # close with SO_LINGER {1, 0}: RST
//	go run ./code/08-close -client -close unread         # close with the echo unread: RST
//	go run ./code/08-close -client -hold                 # connect, say nothing until Ctrl-C
//	go run ./code/08-close -q                            # without the narration
//
// This file holds the server and what the chapter is about on its side:
// closing each connection, and the -sort reply that waits for end of file.
// The client's ways of ending a connection are in client.go, the server's
// setup and echo in server.go, chapter 7's reads and writes in rw.go, the
// calls of earlier chapters in socket.go, and the narrator in narrate.go.
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

	client bool     // be the client: connect to addr
	msgs   []string // the lines the client sends
	hold   bool     // the client sends nothing and holds on until Ctrl-C
	close  string   // how the client ends: close, shutdown, linger0 or unread
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
		if err := serve(ctx, n, w, cfd, cfg.sort); err != nil {
			fmt.Fprintln(stderr, err)
		}
	}
	// endregion loop
}

// region serve
// serve echoes one client's lines until the client closes its end (or, with
// sortLines, replies only then), and closes the connection.
func serve(ctx context.Context, n narrator, w io.Writer, fd int, sortLines bool) (err error) {
	defer func() { err = errors.Join(err, closeFD(n, fd)) }()
	stop := wakeOnCancel(ctx, n, fd) // a silent client must not hold up Ctrl-C
	defer stop()

	peer, err := showConn(n, w, fd)
	if err != nil {
		return err
	}
	if sortLines {
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
