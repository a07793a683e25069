//go:build linux

// The clients' deadlines, from the loop's timers: what each client is
// under (idle, reading a request, taking its answer), what epoll is asked
// about it, closing those whose time is up, and closing the others
// gently (linger).

package main

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// The deadlines a client can be under: one list for each, in the order
// their clocks started, so the first of a list is the next to expire.
const (
	idling  = iota // between requests: -idle
	reading        // part of a request has come: -header
	writing        // owed bytes: -write
)

// wanted is what to ask epoll about c: EPOLLOUT while it is owed bytes,
// EPOLLIN otherwise.
func wanted(c *conn) uint32 {
	if c.owed() {
		return unix.EPOLLOUT
	}
	return unix.EPOLLIN | unix.EPOLLRDHUP
}

// region watch
// watch changes what epoll is asked about c, if that changed, and moves
// c to the deadline it is now under. The header deadline's clock starts
// at a request's first byte and is not restarted by more bytes: a client
// that sends a byte now and then (slowloris) is still closed in time.
func (l *loop) watch(c *conn) {
	if c.shut {
		return // lingering: under the write deadline, reading, until it ends
	}
	timer := idling
	switch {
	case c.owed():
		timer = writing
	case len(c.in) > 0 || l.draining && c.fresh:
		timer = reading
	}
	switch {
	case timer != c.timer:
		l.timers[c.timer].Remove(c.elem)
		c.timer, c.since = timer, time.Now()
		c.elem = l.timers[timer].PushBack(c)
	case c.progress && timer != reading:
		c.since = time.Now() // the same list, to its back: no new element
		l.timers[timer].MoveToBack(c.elem)
	}
	c.progress = false
	if l.draining && timer == idling && !c.shut {
		l.linger(c)
		return
	}
	if ev := wanted(c); ev != c.events {
		c.events = ev
		if err := epollCtl(l.n, l.epfd, unix.EPOLL_CTL_MOD, c.fd, ev); err != nil {
			fmt.Fprintf(l.stderr, "%s: %v\n", c.peer, err)
			l.drop(c)
		}
	}
}

// endregion watch

// region timers
// timeout is how long epoll_wait may wait: until the first deadline of
// the three lists, or the end of a pause in accepting, or for ever.
func (l *loop) timeout(now time.Time) int {
	next := time.Duration(-1)
	for timer, q := range l.timers {
		if q.Len() > 0 {
			left := q.Front().Value.(*conn).since.Add(l.limit(timer)).Sub(now)
			if next < 0 || left < next {
				next = max(0, left)
			}
		}
	}
	if l.paused && (next < 0 || l.resume.Sub(now) < next) {
		next = max(0, l.resume.Sub(now))
	}
	if next < 0 {
		return -1
	}
	return int((next + time.Millisecond - 1) / time.Millisecond) // round up: never wake early
}

func (l *loop) limit(timer int) time.Duration {
	return [...]time.Duration{l.cfg.idle, l.cfg.header, l.cfg.write}[timer]
}

// expire closes the clients whose deadline has passed, and ends a pause
// in accepting that is over.
func (l *loop) expire(now time.Time) {
	for timer, q := range l.timers {
		for q.Len() > 0 {
			c := q.Front().Value.(*conn)
			if now.Sub(c.since) < l.limit(timer) {
				break
			}
			fmt.Fprintf(l.stderr, "%s: %s for %v: closed\n", c.peer, [...]string{"idle", "reading a request", "not taking its answer"}[timer], l.limit(timer))
			l.drop(c)
		}
	}
	if l.paused && len(l.lfds) > 0 && !now.Before(l.resume) {
		if err := l.listen(true); err != nil {
			fmt.Fprintln(l.stderr, err)
		}
	}
}

// endregion timers

// region linger
// linger ends a connection the server closes, once its last answer is
// written: written to the kernel, that is, which may still hold most of
// it in the socket's send buffer. Closing now would orphan the socket,
// and the kernel gives up on an orphan whose client reads slowly (its
// zero-window probes are limited by tcp_orphan_retries), and resets one
// that receives more bytes. So: shutdown(SHUT_WR), which sends FIN after
// the last byte, then read and drop whatever comes until the client
// closes its end too (read returns 0), within the -write deadline.
func (l *loop) linger(c *conn) {
	err := unix.Shutdown(c.fd, unix.SHUT_WR)
	l.n.call(fmt.Sprintf("shutdown(%d, SHUT_WR)", c.fd), "0", err)
	if err != nil {
		l.drop(c)
		return
	}
	c.shut, c.closing = true, true
	l.timers[c.timer].Remove(c.elem)
	c.timer, c.since = writing, time.Now()
	c.elem = l.timers[writing].PushBack(c)
	c.in = l.give(c.in)
	if ev := uint32(unix.EPOLLIN | unix.EPOLLRDHUP); ev != c.events {
		c.events = ev
		if err := epollCtl(l.n, l.epfd, unix.EPOLL_CTL_MOD, c.fd, ev); err != nil {
			l.drop(c)
		}
	}
}

// lingerOn reads what a lingering client sends, and closes it at its end
// of file.
func (l *loop) lingerOn(c *conn) {
	for range l.cfg.reads {
		got, err := readFD(l.n, c.fd, l.buf)
		if errors.Is(err, unix.EAGAIN) {
			return
		}
		if err != nil || got == 0 {
			l.drop(c)
			return
		}
	}
}

// endregion linger
