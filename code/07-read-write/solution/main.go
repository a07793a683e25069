//go:build linux

//go:debug containermaxprocs=0

// Command 07-read-write, the reference solution to chapter 7's exercises:
// the chapter's echo server and client, changed as little as possible so
// that (1 needs no change)
//
//  2. echo prints how many reads brought each line it echoes;
//  3. with -framing len, both sides put a 4-byte big-endian length before
//     each message instead of a newline after it (framing.go);
//  4. the client's -sndbuf N sets SO_SNDBUF before connect (client.go).
//
// Try the exercises before you read it. Grade it with
// make exercise CH=07 PROGRAM=code/07-read-write/solution.
//
// It needs Linux: it uses accept4, and SOCK_CLOEXEC and SOCK_NONBLOCK.
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
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type config struct {
	addr      netip.AddrPort // the local address to bind
	quiet     bool           // do not narrate system calls
	reuseaddr bool           // set SO_REUSEADDR before bind
	backlog   int            // the backlog argument of listen
	bufsize   int            // how many bytes each of the server's reads asks for
	framed    bool           // -framing len: a 4-byte length before each message

	client  bool          // be the client: connect to addr
	timeout time.Duration // if not 0, how long the client waits for connect
	msgs    []string      // the lines the client sends
	batch   bool          // the client sends all its lines in one write
	hold    bool          // the client sends nothing and holds on until Ctrl-C
	sndbuf  int           // if not 0, the client's SO_SNDBUF, set before connect
}

func main() {
	var cfg config
	flag.TextVar(&cfg.addr, "addr", netip.MustParseAddrPort("127.0.0.1:8080"), "`address` to listen on (or, with -client, to connect to), IP:PORT or [IPv6]:PORT; port 0 lets the kernel choose")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	// On by default, as Go's net package sets it on every listening socket.
	flag.BoolVar(&cfg.reuseaddr, "reuseaddr", true, "set SO_REUSEADDR before bind")
	// Small on purpose, so that a handful of clients fills the queue.
	flag.IntVar(&cfg.backlog, "backlog", 2, "the `backlog` argument of listen")
	flag.BoolVar(&cfg.client, "client", false, "be the client: connect to -addr")
	flag.DurationVar(&cfg.timeout, "timeout", 0, "client: give up connecting after this long (0: when the kernel does)")
	flag.IntVar(&cfg.bufsize, "bufsize", 4096, "server: the most bytes one read asks for")
	flag.Func("msg", "client: a `line` to send; repeat for more (default hello)", func(s string) error {
		cfg.msgs = append(cfg.msgs, s)
		return nil
	})
	flag.BoolVar(&cfg.batch, "batch", false, "client: send all lines in one write, read all echoes in one read")
	flag.BoolVar(&cfg.hold, "hold", false, "client: connect, then send nothing until Ctrl-C")
	flag.Func("framing", "both sides: `line` (a newline after each message) or len (a 4-byte length before it)", cfg.setFraming)
	flag.IntVar(&cfg.sndbuf, "sndbuf", 0, "client: set SO_SNDBUF to `N` bytes before connect (0: leave it to the kernel)")
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
// the errors of a client that it survives.
func run(ctx context.Context, cfg config, w, stderr io.Writer) (err error) {
	n := newNarrator(w, cfg.quiet)
	if cfg.client {
		return runClient(ctx, cfg, n, w)
	}
	if cfg.bufsize < 1 { // a read into no room at all would return 0, like end of file
		return fmt.Errorf("-bufsize %d: a read needs room for at least 1 byte", cfg.bufsize)
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
	// it takes the next. Meanwhile the kernel completes the handshakes of
	// other clients and queues their connections.
	for {
		cfd, err := acceptConn(n, fd)
		if err != nil {
			if ctx.Err() != nil {
				return nil // shutdown woke accept4: we are stopping, not failing
			}
			return err
		}
		// One client's failure is not the server's: report it and go on.
		if err := serve(ctx, n, w, cfd, cfg.bufsize, cfg.framed); err != nil {
			fmt.Fprintln(stderr, err)
		}
	}
	// endregion loop
}

// region echo
// echo reads whatever has arrived, up to bufsize bytes at a time, and writes
// back each whole line it has, until the read that returns 0: end of file.
// A read may hold half a line, or several; echo never assumes one line.
func echo(n narrator, w io.Writer, fd, bufsize int) error {
	buf := make([]byte, bufsize)
	var line []byte // what has arrived of the next line
	// Exercise 2: the reads that brought bytes of the next line. One that
	// ends a line and starts the next counts for both lines.
	reads := 0
	for {
		got, err := readFD(n, fd, buf)
		if err != nil {
			return err
		}
		if got == 0 { // the client closed its end: nothing more will come
			if len(line) > 0 {
				return fmt.Errorf("end of file after %d bytes of a line", len(line))
			}
			return nil
		}
		line = append(line, buf[:got]...)
		reads++
		// A line ends within maxLine bytes, newline included, whatever the
		// reads brought; else a client could make the server buffer for ever.
		for {
			i := slices.Index(line[:min(len(line), maxLine)], '\n')
			if i < 0 {
				break
			}
			if err := writeAll(n, fd, line[:i+1]); err != nil {
				return err
			}
			fmt.Fprintf(w, "line of %d bytes: %s\n", i+1, plural(reads, "read", "reads"))
			line = line[i+1:]
			reads = min(len(line), 1) // the rest came in this same read
		}
		if len(line) >= maxLine {
			return fmt.Errorf("no newline in %d bytes", maxLine)
		}
	}
}

// endregion echo

// maxLine is the longest line the server takes: 1 MiB for exercise 4.
const maxLine = 1 << 20

// region rw
// readFD is one read(2), narrated as strace shows it: the bytes that came
// (at most 32 of them), the size of the buffer, and how many came.
func readFD(n narrator, fd int, buf []byte) (int, error) {
	got, err := unix.Read(fd, buf)
	for err == unix.EINTR { // a signal came before any byte did: ask again
		got, err = unix.Read(fd, buf)
	}
	n.call(fmt.Sprintf("read(%d, %s, %d)", fd, quote(buf[:max(got, 0)]), len(buf)), strconv.Itoa(got), err)
	return max(got, 0), os.NewSyscallError("read "+strconv.Itoa(fd), err)
}

// writeFD is one write(2), narrated likewise: the bytes offered, their
// number, and how many of them the kernel took.
func writeFD(n narrator, fd int, buf []byte) (int, error) {
	sent, err := unix.Write(fd, buf)
	for err == unix.EINTR {
		sent, err = unix.Write(fd, buf)
	}
	n.call(fmt.Sprintf("write(%d, %s, %d)", fd, quote(buf), len(buf)), strconv.Itoa(sent), err)
	return max(sent, 0), os.NewSyscallError("write "+strconv.Itoa(fd), err)
}

// endregion rw

// region readFull
// readFull reads exactly len(buf) bytes. A read returns what has arrived,
// which may be less than asked for, so it reads until buf is full. End of
// file before the first byte is io.EOF, after it io.ErrUnexpectedEOF.
func readFull(n narrator, fd int, buf []byte) error {
	for done := 0; done < len(buf); {
		got, err := readFD(n, fd, buf[done:])
		if errors.Is(err, unix.EAGAIN) {
			// A non-blocking socket with nothing to read yet: wait for some.
			if err := waitReady(n, fd, unix.POLLIN); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		if got == 0 { // end of file
			if done == 0 {
				return io.EOF
			}
			return io.ErrUnexpectedEOF
		}
		done += got
	}
	return nil
}

// endregion readFull

// region writeAll
// writeAll writes all of buf. A write may take fewer bytes than offered, so
// it writes the rest, and the rest again, until the kernel has taken it all.
func writeAll(n narrator, fd int, buf []byte) error {
	for len(buf) > 0 {
		sent, err := writeFD(n, fd, buf)
		if errors.Is(err, unix.EAGAIN) {
			// A non-blocking socket whose send buffer is full: wait for room.
			if err := waitReady(n, fd, unix.POLLOUT); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		buf = buf[sent:]
	}
	return nil
}

// endregion writeAll
