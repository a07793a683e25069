//go:debug containermaxprocs=0

// Command solution is the reference solution to the exercises of chapter 1,
// the client–server model: the chapter's program (code/01-client-server),
// changed as little as possible so that
//
//  1. the client takes -n and talks -n times, on a new connection each time;
//  2. the server answers every line of a connection until the client closes
//     its end, with one bufio.Reader per connection;
//  3. a client that sends nothing for 5 seconds is dropped;
//  4. each client is served in its own goroutine, and Ctrl-C waits for them
//     before it closes the listener.
//
// Try the exercises before you read it. Run it as the chapter's program:
//
//	go run ./code/01-client-server/solution
//	go run ./code/01-client-server/solution -client -n 3
//
// and grade it with go run ./tools/grade -program code/01-client-server/solution 01.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"
)

// maxLine is the longest line either side accepts, newline included.
const maxLine = 1024

// idle is how long the server waits for each line of a client (exercise 3).
const idle = 5 * time.Second

type config struct {
	addr   string // where the server listens, or where the client connects
	client bool
	msg    string // the line the client sends
	count  int    // how many times the client connects and talks (exercise 1)
	quiet  bool
}

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "address to listen on (with -client: to connect to)")
	flag.BoolVar(&cfg.client, "client", false, "be the client instead of the server")
	flag.StringVar(&cfg.msg, "msg", "hello", "the line the client sends")
	flag.IntVar(&cfg.count, "n", 1, "with -client: connect, send and read this many times, on a new connection each time")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate each call")
	flag.Parse()

	ctx := context.Background()
	if !cfg.client {
		// Ctrl-C (SIGINT) and kill (SIGTERM) cancel ctx instead of ending
		// the server at once, so it can close its socket on the way out.
		var stop context.CancelFunc
		ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
		defer stop()
	}
	if err := run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1) // skips the deferred stop: the process is ending anyway
	}
}

func run(ctx context.Context, cfg config, stdout, stderr io.Writer) error {
	n := narrator{w: stdout, quiet: cfg.quiet}
	if cfg.client {
		if cfg.count < 1 {
			return fmt.Errorf("-n %d: want at least 1", cfg.count)
		}
		// Exercise 1: each round is a whole client, from net.Dial to
		// Close, so each gets a connection (and a port) of its own.
		for range cfg.count {
			if err := client(cfg.addr, cfg.msg, n); err != nil {
				return err
			}
		}
		return nil
	}
	return server(ctx, cfg.addr, n, stderr)
}

// server listens on addr and serves each client in a goroutine of its own
// until ctx is cancelled, then waits for those goroutines.
func server(ctx context.Context, addr string, n narrator, stderr io.Writer) error {
	// region listen
	n.call(fmt.Sprintf("net.Listen(%q, %q)", "tcp", addr), "socket, bind, listen")
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fail("listen", addr, err)
	}
	defer func() {
		n.call("ln.Close()", "close")
		ln.Close()
	}()
	// With port 0 the kernel picked the port: print the one it picked.
	n.say("listening on %s", ln.Addr())
	// endregion listen

	// region shutdown
	// A signal cancels ctx. A deadline in the past wakes the blocked
	// Accept with an error; we return, and the deferred Close runs.
	stop := context.AfterFunc(ctx, func() {
		ln.(*net.TCPListener).SetDeadline(time.Now())
	})
	defer stop()
	// endregion shutdown

	// Exercise 4: defers run last first, so this Wait runs before the
	// listener's Close above: Ctrl-C closes the listener only once every
	// client still being served is done. (ctx wakes their reads too.)
	var clients sync.WaitGroup
	defer clients.Wait()

	// region accept
	for {
		n.call("ln.Accept()", "accept4: wait for a client")
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				n.result("%v", context.Cause(ctx))
				return nil
			}
			return fail("accept", ln.Addr().String(), err)
		}
		// Exercise 4: a goroutine per client, so a slow or silent one
		// no longer holds up the others; the loop is straight back in
		// Accept. One client's failure is not the server's: report it.
		clients.Go(func() {
			if err := serve(ctx, c, n); err != nil {
				fmt.Fprintln(stderr, err)
			}
		})
	}
	// endregion accept
}

// serve answers one client: read a line, write a line, until the client
// closes its end; then close.
func serve(ctx context.Context, c net.Conn, n narrator) error {
	// region serve
	defer func() {
		n.call("c.Close()", "close")
		c.Close()
	}()
	peer := c.RemoteAddr().String()
	n.result("accepted %s", peer)
	n.result("connection: TCP, local %s, remote %s", c.LocalAddr(), peer)

	// A Ctrl-C must not wait for a client that says nothing.
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()

	// Exercise 2: one reader for the whole connection. A Read may bring
	// in a line and a half; the half stays in r's buffer for the next
	// readLine, where a new reader would have lost it.
	r := bufio.NewReaderSize(c, maxLine)
	for {
		// Exercise 3: each line must arrive within idle, or the read
		// fails with "i/o timeout" and this client is dropped.
		c.SetReadDeadline(time.Now().Add(idle))
		// A Ctrl-C that came before the line above had its deadline
		// (now) overwritten by it: look again, so it is not missed.
		if ctx.Err() != nil {
			return nil
		}
		line, err := readLine(r, n)
		if errors.Is(err, io.EOF) {
			return nil // the client closed its end: the conversation is over
		}
		if err != nil {
			return fail("read", peer, err)
		}
		reply := fmt.Sprintf("hi %s, you said %q\n", peer, strings.TrimRight(line, "\r\n"))
		n.call(fmt.Sprintf("c.Write(%q)", reply), "write")
		if _, err := io.WriteString(c, reply); err != nil {
			return fail("write", peer, err)
		}
	}
	// endregion serve
}

// region readline
// readLine reads up to and including the first newline. TCP carries bytes,
// not messages: one Read may return half a line, or a line and a half, so
// it reads until it has the newline (or maxLine bytes, an error). It takes
// the connection's one reader, which keeps what it read past the newline.
// It returns io.EOF only when the peer closed between lines.
func readLine(r *bufio.Reader, n narrator) (string, error) {
	n.call(`r.ReadSlice('\n')`, "read, until a newline")
	line, err := r.ReadSlice('\n')
	if err == io.EOF && len(line) > 0 {
		// Closed in the middle of a line: that is still an error.
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		return "", err
	}
	n.result("%q", line)
	return string(line), nil
}

// endregion readline

// region fail
// fail names the call that failed and the address it was for, and keeps
// only the kernel's reason: net's "dial tcp 127.0.0.1:8080: connect:
// connection refused" becomes "dial 127.0.0.1:8080: connection refused".
func fail(call, addr string, err error) error {
	var se *os.SyscallError
	var oe *net.OpError
	if errors.As(err, &se) {
		err = se.Err
	} else if errors.As(err, &oe) {
		err = oe.Err
	}
	return fmt.Errorf("%s %s: %w", call, addr, err)
}

// endregion fail
