//go:build linux

//go:debug containermaxprocs=0

// Command 13-process is chapter 12's echo server, serving many clients at
// once with a process per connection. The parent accepts each connection,
// starts a child (this same program, with -child) that has the connection
// as its descriptor 3, closes its own copy, and goes back to accept. The
// child echoes its client's lines and exits; the parent waits for it, which
// frees what is left of it in the kernel.
//
//	go run ./code/13-process                       # serve many clients at once, on localhost:8080
//	go run ./code/13-process -client -msg hi       # the client of chapter 12
//	go run ./code/13-process -keep                 # a bug, to see it: the parent keeps its copies
//	go run ./code/13-process -nowait               # a bug, to see it: nobody waits for the children
//	go run ./code/13-process -q                    # without the narration
//
// A client that sends the line "crash" makes its child panic: the others,
// and the parent, go on.
//
// This file holds the chapter's step: a child per connection, the parent's
// copy closed, the children waited for, and the child. The parent's other
// chores are in children.go; chapter 12's server in server.go, its client
// in client.go, and the rest as before (rw.go, wake.go, socket.go, narrate.go).
//
// It needs Linux: it uses accept4 and SOCK_CLOEXEC.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type config struct {
	addr    string // HOST:SERVICE to listen on or connect to
	quiet   bool   // do not narrate system calls
	backlog int    // the backlog argument of listen
	bufsize int    // how many bytes each of the server's reads asks for
	v6only  bool   // set IPV6_V6ONLY on IPv6 listening sockets

	child  bool          // be a child: serve the connection on descriptor 3
	keep   bool          // the bug of a parent that does not close its copy
	nowait bool          // the bug of a parent that does not wait for its children
	max    int           // exercise 1: the most children at once (0: no limit)
	limit  time.Duration // exercise 2: the longest a child may live (0: no limit)

	client bool     // be the client: connect to addr
	msgs   []string // the lines the client sends
}

func main() {
	var cfg config
	flag.StringVar(&cfg.addr, "addr", "localhost:8080", "`host:service` to listen on (or, with -client, to connect to)")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	flag.IntVar(&cfg.backlog, "backlog", 2, "the `backlog` argument of listen")
	flag.IntVar(&cfg.bufsize, "bufsize", 4096, "server: the most bytes one read asks for")
	flag.BoolVar(&cfg.v6only, "v6only", true, "server: set IPV6_V6ONLY on IPv6 sockets")
	flag.BoolVar(&cfg.child, "child", false, "be a child the server started: serve the connection on descriptor 3")
	flag.BoolVar(&cfg.keep, "keep", false, "server: a bug, to see it: do not close the parent's copy of each connection")
	flag.BoolVar(&cfg.nowait, "nowait", false, "server: a bug, to see it: do not wait for the children, which stay zombies")
	flag.IntVar(&cfg.max, "max", 0, "server: the most children at once; past it a client gets \"busy\" (0: no limit)")
	flag.DurationVar(&cfg.limit, "limit", 0, "server: kill a child that has served this long (0: no limit)")
	flag.BoolVar(&cfg.client, "client", false, "be the client: connect to -addr")
	flag.Func("msg", "client: a `line` to send; repeat for more (default hello)", func(s string) error {
		cfg.msgs = append(cfg.msgs, s)
		return nil
	})
	flag.Parse()
	if len(cfg.msgs) == 0 {
		cfg.msgs = []string{"hello"}
	}
	// Ctrl-C and SIGTERM cancel ctx, so that run can close what it opened.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run is the client with -client, a child with -child, else the server,
// which reports to stderr the errors of a client that it survives.
func run(ctx context.Context, cfg config, w, stderr io.Writer) (err error) {
	n := newNarrator(w, cfg.quiet)
	switch {
	case cfg.child:
		// region child
		// The parent put the connection at 3, the first after stdin, stdout
		// and stderr. The child serves it as chapter 12's server did.
		return serve(ctx, n, w, 3, cfg.bufsize)
		// endregion child
	case cfg.bufsize < 1: // a read into no room at all would return 0, like end of file
		return fmt.Errorf("-bufsize %d: a read needs room for at least 1 byte", cfg.bufsize)
	}
	addrs, err := resolve(ctx, n, cfg.addr, !cfg.client)
	if err != nil {
		return err
	}
	if cfg.client {
		return runClient(ctx, cfg, n, w, addrs)
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
	kids := &children{live: map[int]*exec.Cmd{}}
	defer kids.stop(n)
	return serveAll(ctx, n, w, stderr, fds, cfg, kids)
}

// serveAll waits for connections on every listening socket, as in chapter
// 12, and hands each to a child of its own: the parent is back in poll at
// once, while the child serves, so that many clients are served at once.
func serveAll(ctx context.Context, n narrator, w, stderr io.Writer, fds []int, cfg config, kids *children) error {
	stop := wakeOnCancel(ctx, n, fds[0]) // Ctrl-C shuts the first socket down, which wakes poll
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
			return nil // shutdown woke poll: we are stopping, not failing
		}
		for _, p := range pfds {
			if p.Revents&unix.POLLIN == 0 {
				continue
			}
			cfd, err := acceptConn(n, int(p.Fd))
			if err != nil {
				return err
			}
			if cfg.max > 0 && kids.count() >= cfg.max { // exercise 1
				refuse(n, stderr, cfd)
				continue
			}
			// A child that cannot start (too many processes) costs one
			// client its connection, not the server its life.
			if err := kids.start(n, w, stderr, cfd, cfg); err != nil {
				fmt.Fprintln(stderr, err)
			}
		}
	}
}

// region start
// start runs this program again as a child that serves the connection cfd.
// Go cannot fork without exec (a fork copies one thread of a process that
// has several, and Go's runtime needs them all), so the child is a new
// program from its first instruction: what it must know comes in its
// arguments and its descriptors. exec.Cmd puts ExtraFiles[0] at 3.
func (k *children) start(n narrator, w, stderr io.Writer, cfd int, cfg config) error {
	conn := os.NewFile(uintptr(cfd), "connection")
	self, err := os.Executable()
	if err != nil {
		return errors.Join(err, conn.Close())
	}
	args := []string{"-child", "-bufsize", strconv.Itoa(cfg.bufsize)}
	if cfg.quiet {
		args = append(args, "-q")
	}
	cmd := exec.Command(self, args...)
	cmd.ExtraFiles = []*os.File{conn}
	// The child's output comes through pipes that exec makes, a line at a
	// time, each marked with the child's process ID.
	out, errs := &prefixed{n: n, w: w}, &prefixed{n: n, w: stderr}
	cmd.Stdout, cmd.Stderr = out, errs
	// A process group of its own: Ctrl-C goes to the parent alone, which
	// ends each child with SIGTERM (see stop).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	// Hold the narrator until the parent's copy is closed, so that the
	// child's first line comes after the parent's last word on it.
	n.mu.Lock()
	err = cmd.Start()
	pid := 0
	if err == nil {
		pid = cmd.Process.Pid
		out.pid, errs.pid = pid, pid
	}
	n.print(fmt.Sprintf("start(%s, ExtraFiles: %d as 3)", strings.Join(args, " "), cfd), strconv.Itoa(pid), err)
	// region close
	if cfg.keep && err == nil {
		k.kept = append(k.kept, conn) // the bug: the client's connection lives on in the parent
	} else {
		// The child has a copy of the connection now; the parent's must
		// go, or the connection outlives the child.
		cerr := conn.Close()
		n.print(fmt.Sprintf("close(%d)", cfd), "0", cerr)
		err = errors.Join(err, cerr)
	}
	// endregion close
	n.mu.Unlock()
	if err != nil {
		return fmt.Errorf("start a child for connection %d: %w", cfd, err)
	}
	k.mu.Lock()
	k.live[pid] = cmd
	k.mu.Unlock()
	if cfg.limit > 0 { // exercise 2
		k.limitLife(cmd, cfg.limit)
	}
	if !cfg.nowait {
		k.done.Add(1)
		go k.reap(n, cmd)
	}
	return nil
}

// endregion start

// region reap
// reap waits for a child to end. Until some process waits for it, a child
// that has exited stays in the process table as a zombie, holding its PID
// and its exit status for whoever asks. Cmd.Wait asks: it calls waitid,
// which returns the status and frees the entry, then waits until all the
// child's output has been copied.
func (k *children) reap(n narrator, cmd *exec.Cmd) {
	defer k.done.Done()
	_ = cmd.Wait() // the status is in cmd.ProcessState: "exit status 2" after a panic
	n.call(fmt.Sprintf("wait(%d)", cmd.Process.Pid), cmd.ProcessState.String(), nil)
	k.mu.Lock()
	delete(k.live, cmd.Process.Pid)
	k.mu.Unlock()
}

// endregion reap
