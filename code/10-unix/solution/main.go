//go:build linux

//go:debug containermaxprocs=0

// Command 10-unix is chapter 7's echo server and client on a Unix domain
// socket: AF_UNIX, SOCK_STREAM, named by a path in the file system instead
// of an IP address and a port. The server creates the socket file when it
// binds and removes it when it stops; a file left behind by a server that
// crashed is removed at start, but only once a connect has shown that
// nobody listens on it. It tells who connected (SO_PEERCRED: pid, uid, gid),
// which a TCP server cannot. With -handoff, one process accepts TCP clients
// and passes each connection (SCM_RIGHTS) to a -worker, which serves it.
//
//	go run ./code/10-unix                              # serve on /tmp/10-unix.sock
//	go run ./code/10-unix -addr @echo                  # the abstract name "echo": no file
//	go run ./code/10-unix -client -msg hi -msg yo      # send two lines, check both echoes
//	go run ./code/10-unix -addr 127.0.0.1:8080         # the same server on TCP
//	go run ./code/10-unix -worker                      # serve connections passed to it
//	go run ./code/10-unix -handoff /tmp/10-unix.sock   # accept on 127.0.0.1:8080, pass each on
//	go run ./code/10-unix -q                           # without the narration
//
// This file holds what the chapter is about: Unix addresses, the socket
// file's life, and the peer's credentials. The rest of the server is in
// server.go, the hand-off in handoff.go, the client in client.go, chapter
// 7's reads and writes in rw.go, Ctrl-C in wake.go, the calls of earlier
// chapters in socket.go, and the narrator in narrate.go.
//
// It needs Linux: it uses accept4, SOCK_CLOEXEC, SO_PEERCRED and the
// abstract namespace.
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
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

type config struct {
	addr    string // where to listen or connect: a path, @name, or IP:PORT
	quiet   bool   // do not narrate system calls
	backlog int    // the backlog argument of listen
	bufsize int    // how many bytes each of the server's reads asks for
	mode    uint32 // if not 0, the socket file's permissions (exercise 2)
	uid     int    // if not -1, the only uid the server serves (exercise 3)

	client bool     // be the client: connect to addr
	msgs   []string // the lines the client sends

	worker  bool   // serve the connections passed over the socket at addr
	handoff string // accept TCP clients on addr and pass each to the worker at this path
}

// The default addresses: a socket file for the server, the client and the
// worker; the TCP port of every earlier chapter for -handoff.
const (
	defaultPath = "/tmp/10-unix.sock"
	defaultTCP  = "127.0.0.1:8080"
)

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "", "`address` to listen on (or, with -client, to connect to): a path (anything with a /), @name for the abstract namespace, or IP:PORT (default "+defaultPath+", with -handoff "+defaultTCP+")")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	flag.IntVar(&cfg.backlog, "backlog", 2, "the `backlog` argument of listen")
	flag.IntVar(&cfg.bufsize, "bufsize", 4096, "server: the most bytes one read asks for")
	flag.Func("mode", "server: the socket file's permissions, in octal (0660)", func(v string) error {
		m, err := strconv.ParseUint(v, 8, 32) // base 8: 0660 is rw-rw----, not 660 decimal
		cfg.mode = uint32(m) & 0o777
		return err
	})
	flag.IntVar(&cfg.uid, "uid", -1, "server: serve only clients running as this `uid` (SO_PEERCRED)")
	flag.BoolVar(&cfg.client, "client", false, "be the client: connect to -addr")
	flag.Func("msg", "client: a `line` to send; repeat for more (default hello)", func(s string) error {
		cfg.msgs = append(cfg.msgs, s)
		return nil
	})
	flag.BoolVar(&cfg.worker, "worker", false, "serve the TCP connections another process passes over -addr")
	flag.StringVar(&cfg.handoff, "handoff", "", "accept TCP clients on -addr and pass each to the -worker at this `path`")
	flag.Parse()
	if len(cfg.msgs) == 0 {
		cfg.msgs = []string{"hello"}
	}
	if cfg.addr == "" {
		cfg.addr = defaultPath
		if cfg.handoff != "" {
			cfg.addr = defaultTCP
		}
	}
	// Ctrl-C (SIGINT) and kill (SIGTERM) cancel ctx instead of ending the
	// program at once, so that run can close its socket and remove its
	// socket file on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run is the client with -client, the acceptor with -handoff, else the
// server (or, with -worker, the worker), which reports to stderr the errors
// of a client that it survives.
func run(ctx context.Context, cfg config, w, stderr io.Writer) (err error) {
	n := newNarrator(w, cfg.quiet)
	sa, err := parseAddr(cfg.addr)
	if err != nil {
		return err
	}
	switch {
	case cfg.client:
		return runClient(ctx, cfg, n, w, sa)
	case cfg.handoff != "":
		return runHandoff(ctx, cfg, n, w, sa)
	case cfg.bufsize < 1: // a read into no room at all would return 0, like end of file
		return fmt.Errorf("-bufsize %d: a read needs room for at least 1 byte", cfg.bufsize)
	}
	fd, err := listenOn(n, w, sa, cfg.backlog, cfg.mode)
	if err != nil {
		return err
	}
	// Remove the socket file before closing the socket, so that no client
	// ever finds a file that nobody listens on.
	defer func() { err = errors.Join(err, unlinkSocket(n, sa), closeFD(n, fd)) }()

	// Ctrl-C must not wait for a client that may never come: see wakeOnCancel.
	stop := wakeOnCancel(ctx, n, fd)
	defer stop()
	for {
		cfd, err := acceptConn(n, fd)
		if err != nil {
			if ctx.Err() != nil {
				return nil // shutdown woke accept4: we are stopping, not failing
			}
			return err
		}
		// One client's failure is not the server's: report it and go on.
		if cfg.worker {
			err = serveWorker(ctx, n, w, stderr, cfd, cfg.bufsize)
		} else {
			err = serve(ctx, n, w, cfd, cfg.bufsize, cfg.uid)
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
		}
	}
}

// region parseAddr
// parseAddr turns -addr into the address bind and connect take. A path
// goes into a sockaddr_un, which x/sys calls SockaddrUnix; a name that
// starts with @ is in Linux's abstract namespace (x/sys puts a NUL byte
// where the @ is, which is how the kernel tells the two apart).
func parseAddr(s string) (unix.Sockaddr, error) {
	if strings.Contains(s, "/") || strings.HasPrefix(s, "@") {
		// sun_path is 108 bytes, and a path needs a NUL after it: 107 at
		// most. x/sys refuses a longer one with EINVAL, before any call.
		if max := len(unix.RawSockaddrUnix{}.Path) - 1; len(s) > max {
			return nil, fmt.Errorf("-addr %s: %d bytes, but sun_path holds at most %d and a NUL", s, len(s), max)
		}
		return &unix.SockaddrUnix{Name: s}, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return nil, fmt.Errorf("-addr %s: want a path (with a /), @name, or IP:PORT", s)
	}
	return sockaddr(ap)
}

// endregion parseAddr

// region bindUnix
// bindUnix binds fd to a path. A crashed server leaves its socket file
// behind, and bind fails with EADDRINUSE while the file exists. Removing
// it blindly would also remove a live server's file (that server would
// go on running, unreachable) or any file a typo named. So it removes the
// file only if it is a socket and a connect to it is refused: nobody
// listens there.
func bindUnix(n narrator, fd int, sa *unix.SockaddrUnix) error {
	err := unix.Bind(fd, sa)
	n.call(fmt.Sprintf("bind(%d, %s)", fd, sa.Name), "0", err)
	if err != unix.EADDRINUSE || strings.HasPrefix(sa.Name, "@") {
		return os.NewSyscallError("bind "+sa.Name, err)
	}
	if err := checkStale(n, sa); err != nil { // in server.go
		return fmt.Errorf("bind %s: %w", sa.Name, err)
	}
	err = unix.Unlink(sa.Name)
	n.call(fmt.Sprintf("unlink(%q)", sa.Name), "0", err)
	if err != nil {
		return os.NewSyscallError("unlink "+sa.Name, err)
	}
	err = unix.Bind(fd, sa)
	n.call(fmt.Sprintf("bind(%d, %s)", fd, sa.Name), "0", err)
	return os.NewSyscallError("bind "+sa.Name, err)
}

// endregion bindUnix

// region unlinkSocket
// unlinkSocket removes the socket file bind created. Closing the socket
// does not: the file stays until someone unlinks it. An abstract name has
// no file; it goes away with the last descriptor of its socket.
func unlinkSocket(n narrator, sa unix.Sockaddr) error {
	u, ok := sa.(*unix.SockaddrUnix)
	if !ok || strings.HasPrefix(u.Name, "@") {
		return nil
	}
	err := unix.Unlink(u.Name)
	n.call(fmt.Sprintf("unlink(%q)", u.Name), "0", err)
	return os.NewSyscallError("unlink "+u.Name, err)
}

// endregion unlinkSocket

// region peerCred
// peerCred asks who is at the other end of a Unix connection. The kernel
// recorded the pid, uid and gid of the process that called connect (or,
// for the client asking about the server, listen); the peer cannot lie
// about them. A TCP socket has nothing like it: only an address and a port.
func peerCred(n narrator, w io.Writer, fd int) error {
	cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
	if err != nil {
		cred = &unix.Ucred{}
	}
	n.call(fmt.Sprintf("getsockopt(%d, SOL_SOCKET, SO_PEERCRED, {pid=%d, uid=%d, gid=%d})", fd, cred.Pid, cred.Uid, cred.Gid), "0", err)
	if err != nil {
		return os.NewSyscallError("getsockopt SO_PEERCRED", err)
	}
	fmt.Fprintf(w, "peer: pid %d, uid %d, gid %d\n", cred.Pid, cred.Uid, cred.Gid)
	return nil
}

// endregion peerCred
