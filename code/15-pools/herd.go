//go:build linux

// -design epoll and -design exclusive: workers that wait for the listening
// socket in an epoll instance each, as event-loop servers (nginx's workers)
// did before SO_REUSEPORT, to show who the kernel wakes.

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// region herd
// serveEpoll gives each worker an epoll instance of its own watching the
// one listening socket, made non-blocking: a worker that wakes and finds
// the connection gone to another gets EAGAIN from accept4, and counts a
// wake-up for nothing ("worker 3: accept4 EAGAIN"). Without EPOLLEXCLUSIVE
// every worker waiting in epoll_wait is woken for each connection: the
// thundering herd. With it (exclusive), the kernel wakes one, and it
// wakes the worker whose epoll was added to the socket's wait queue last:
// LIFO, so while that worker keeps up it gets every connection.
func serveEpoll(ctx context.Context, n narrator, w, stderr io.Writer, lfd int, cfg config, open *atomic.Int64) error {
	if err := unix.SetNonblock(lfd, true); err != nil {
		return os.NewSyscallError("fcntl O_NONBLOCK", err)
	}
	stop := wakeOnCancel(ctx, n, lfd) // epoll reports the shutdown to every worker
	defer stop()
	events := uint32(unix.EPOLLIN)
	if cfg.design == "exclusive" {
		events |= unix.EPOLLEXCLUSIVE
	}
	var workers sync.WaitGroup
	errs := make([]error, cfg.workers)
	for i := range cfg.workers {
		epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
		if err != nil {
			return errors.Join(os.NewSyscallError("epoll_create1", err), errors.Join(errs...))
		}
		defer unix.Close(epfd)
		ev := unix.EpollEvent{Events: events, Fd: int32(lfd)}
		if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, lfd, &ev); err != nil {
			return os.NewSyscallError("epoll_ctl", err)
		}
		workers.Go(func() { errs[i] = epollWorker(ctx, n, w, stderr, i+1, epfd, lfd, cfg, open) })
	}
	workers.Wait()
	return errors.Join(errs...)
}

// endregion herd

// epollWorker waits in epoll_wait, then tries accept4 once.
func epollWorker(ctx context.Context, n narrator, w, stderr io.Writer, worker, epfd, lfd int, cfg config, open *atomic.Int64) error {
	evs := make([]unix.EpollEvent, 1)
	for {
		_, err := unix.EpollWait(epfd, evs, -1)
		if err == unix.EINTR { // Go's runtime preempts with SIGURG
			continue
		}
		if err != nil {
			return os.NewSyscallError("epoll_wait", err)
		}
		if ctx.Err() != nil {
			return nil
		}
		cfd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err == unix.EAGAIN {
			n.mu.Lock()
			fmt.Fprintf(w, "worker %d: accept4 EAGAIN, woken for nothing\n", worker)
			n.mu.Unlock()
			continue
		}
		if err != nil {
			return os.NewSyscallError("accept4", err)
		}
		work(ctx, n, w, stderr, worker, cfd, cfg, open)
	}
}
