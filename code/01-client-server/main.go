//go:debug containermaxprocs=0

// Command 01-client-server is the whole book in miniature: a TCP server and
// a client that talk over loopback, written with Go's net package. Each net
// call is printed as it is made, with the system calls it stands for in a
// comment; later chapters drop net and make those calls themselves.
//
// Run the server in one terminal and the client in another:
//
//	go run ./code/01-client-server
//	go run ./code/01-client-server -client -msg hello
//
// The server serves one client at a time: accept, read one line, write one
// line, close. Ctrl-C stops it. -q silences the narration.
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
	"syscall"
	"time"
)

// maxLine is the longest line either side accepts, newline included.
const maxLine = 1024

type config struct {
	addr   string // where the server listens, or where the client connects
	client bool
	msg    string // the line the client sends
	quiet  bool
}

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "127.0.0.1:8080", "address to listen on (with -client: to connect to)")
	flag.BoolVar(&cfg.client, "client", false, "be the client instead of the server")
	flag.StringVar(&cfg.msg, "msg", "hello", "the line the client sends")
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
		return client(cfg.addr, cfg.msg, n)
	}
	return server(ctx, cfg.addr, n, stderr)
}

// server listens on addr and serves clients one after another until ctx
// is cancelled.
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
		// One client's failure is not the server's: report it, go on.
		if err := serve(ctx, c, n); err != nil {
			fmt.Fprintln(stderr, err)
		}
	}
	// endregion accept
}

// serve answers one client: read a line, write a line, close.
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

	line, err := readLine(c, n)
	if err != nil {
		return fail("read", peer, err)
	}
	reply := fmt.Sprintf("hi %s, you said %q\n", peer, strings.TrimRight(line, "\r\n"))
	n.call(fmt.Sprintf("c.Write(%q)", reply), "write")
	if _, err := io.WriteString(c, reply); err != nil {
		return fail("write", peer, err)
	}
	return nil
	// endregion serve
}

// region readline
// readLine reads up to and including the first newline. TCP carries bytes,
// not messages: one Read may return half a line, or a line and a half, so
// it reads until it has the newline (or maxLine bytes, an error).
func readLine(c net.Conn, n narrator) (string, error) {
	n.call(`r.ReadSlice('\n')`, "read, until a newline")
	line, err := bufio.NewReaderSize(c, maxLine).ReadSlice('\n')
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
