//go:build linux

// Chapter 14's server, as -design goroutine: a goroutine per connection,
// which the pools are compared with; and serve, which every design runs
// for each connection.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// region serveAll
// serveAll waits for a connection on any listening socket, as chapter 12
// did, but serves each one in a goroutine of its own and goes straight
// back to poll: a silent client now holds up only its own goroutine. On
// Ctrl-C it stops accepting and waits until every connection is closed.
func serveAll(ctx context.Context, n narrator, w, stderr io.Writer, fds []int, cfg config) error {
	// Ctrl-C shuts down the first listening socket, which wakes poll;
	// the others are closed on the way out.
	stop := wakeOnCancel(ctx, n, fds[0])
	defer stop()
	var conns sync.WaitGroup // the goroutines still serving a client
	defer conns.Wait()
	var open atomic.Int64 // shared by every goroutine: see "A data race"
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
			conns.Go(func() {
				// One client's failure is not the server's: report it.
				if err := serve(ctx, n, w, cfd, cfg, &open); err != nil {
					fmt.Fprintln(stderr, err)
				}
			})
		}
	}
}

// endregion serveAll

// region serve
// serve echoes one client's lines until the client closes its end, then
// closes the connection. open counts the connections being served; every
// goroutine changes it, so each change is one atomic operation.
func serve(ctx context.Context, n narrator, w io.Writer, fd int, cfg config, open *atomic.Int64) (err error) {
	c := conn{fd: fd}
	if cfg.netpoll {
		if c, err = handOver(n, fd); err != nil {
			return errors.Join(err, c.close(n))
		}
	}
	defer func() { err = errors.Join(err, c.close(n)) }()
	stop := wakeOnCancel(ctx, n, fd) // a silent client must not hold up Ctrl-C
	defer stop()

	peer, err := showConn(n, w, fd)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "open connections: %d\n", open.Add(1))
	defer open.Add(-1)
	if err := setIdle(n, &c, cfg.idle); err != nil {
		return err
	}
	if err := echo(n, c, cfg.bufsize); err != nil {
		return fmt.Errorf("%s: %w", peer, err)
	}
	return nil
}

// endregion serve
