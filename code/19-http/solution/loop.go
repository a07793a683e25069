//go:build linux

// The event loop's state: its epoll instance, its listening sockets, and
// its clients, each with what it is owed and when it last spoke.

package main

import (
	"container/list"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// region conn
// conn is one client, as in chapter 16, and what epoll is asked about it
// now, and when it last did something.
type conn struct {
	fd        int
	peer      string
	in        []byte        // what has come of the next request
	out       []byte        // what the client is owed and the kernel has not taken
	closing   bool          // its last answer is in out: close once out is written
	served    int           // how many requests it has been answered
	continued bool          // told 100 Continue for the request now coming
	events    uint32        // what epoll_ctl last asked for
	last      time.Time     // when it last sent or took bytes
	byAge     *list.Element // its place in loop.byAge
}

// endregion conn

// loop is one event loop: what it needs between two turns.
type loop struct {
	n         narrator
	w, stderr io.Writer
	cfg       config
	epfd      int
	lfds      []int
	port      uint16
	conns     map[int]*conn // by descriptor: the event's datum finds its client in O(1)
	byAge     *list.List    // the clients, the least recently active first
	buf       []byte        // one buffer for every read: its bytes are copied out at once
}

// newLoop makes a loop's listening sockets and its epoll instance, and puts
// the sockets on its interest list.
func newLoop(n narrator, w, stderr io.Writer, addrs []netip.AddrPort, cfg config) (l *loop, err error) {
	l = &loop{n: n, w: w, stderr: stderr, cfg: cfg, epfd: -1, conns: map[int]*conn{}, byAge: list.New(),
		buf: make([]byte, cfg.bufsize)}
	defer func() {
		if err != nil {
			err, l = errors.Join(err, l.close()), nil
		}
	}()
	l.lfds, err = listenAll(n, w, addrs, cfg)
	if err != nil {
		return l, err
	}
	sa, err := unix.Getsockname(l.lfds[0])
	if err != nil {
		return l, err
	}
	l.port = netip.MustParseAddrPort(addrString(sa)).Port()
	if l.epfd, err = epollCreate(n); err != nil {
		return l, err
	}
	for _, fd := range l.lfds {
		if err := epollCtl(n, l.epfd, unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN); err != nil {
			return l, err
		}
	}
	return l, nil
}

// close closes the clients still connected, the epoll instance, and the
// listening sockets. Closing a descriptor takes it off every interest list
// (unless a duplicate of it lives on: see the chapter).
func (l *loop) close() (err error) {
	for _, c := range l.conns {
		err = errors.Join(err, closeFD(l.n, c.fd))
	}
	if l.epfd >= 0 {
		err = errors.Join(err, closeFD(l.n, l.epfd))
	}
	for _, fd := range l.lfds {
		err = errors.Join(err, closeFD(l.n, fd))
	}
	return err
}

// accept takes a connection a listening socket has, and watches it.
func (l *loop) accept(lfd int) error {
	c, err := accept(l.n, l.w, lfd)
	if err != nil || c == nil {
		return err
	}
	c.last, c.byAge = time.Now(), l.byAge.PushBack(c)
	l.conns[c.fd] = c
	c.events = l.wanted(c)
	return epollCtl(l.n, l.epfd, unix.EPOLL_CTL_ADD, c.fd, c.events)
}

// region watch
// wanted is what to ask epoll about c: EPOLLOUT only while c is owed
// bytes (a connected socket is nearly always writable, so asking always
// wakes the loop at once, every turn), EPOLLIN otherwise. EPOLLRDHUP
// reports the client's FIN apart from its bytes.
func (l *loop) wanted(c *conn) uint32 {
	ev := uint32(unix.EPOLLIN | unix.EPOLLRDHUP)
	if len(c.out) > 0 {
		ev = unix.EPOLLOUT
	}
	if l.cfg.alwaysOut {
		ev |= unix.EPOLLIN | unix.EPOLLOUT
	}
	if l.cfg.edge {
		ev |= unix.EPOLLET
	}
	return ev
}

// watch changes what epoll is asked about c, when that has changed: one
// epoll_ctl for each change of state, none per turn.
func (l *loop) watch(c *conn) {
	l.byAge.MoveToBack(c.byAge)
	ev := l.wanted(c)
	if ev == c.events {
		return
	}
	c.events = ev
	if err := epollCtl(l.n, l.epfd, unix.EPOLL_CTL_MOD, c.fd, ev); err != nil {
		fmt.Fprintf(l.stderr, "%s: %v\n", c.peer, err)
		l.drop(c)
	}
}

// endregion watch

// flush writes what c is owed until it is all written or the send buffer
// is full (EAGAIN); the rest waits for EPOLLOUT.
func (l *loop) flush(c *conn) error {
	for len(c.out) > 0 {
		sent, err := writeFD(l.n, c.fd, c.out)
		if errors.Is(err, unix.EAGAIN) {
			return nil
		}
		if err != nil {
			return err
		}
		c.out = c.out[sent:]
	}
	return nil
}

// drop closes c, which takes it off the interest list too.
func (l *loop) drop(c *conn) {
	delete(l.conns, c.fd)
	l.byAge.Remove(c.byAge)
	if err := closeFD(l.n, c.fd); err != nil {
		fmt.Fprintln(l.stderr, err)
	}
}

// region timers
// timeout is how long epoll_wait may wait: until the least recently
// active client's time is up, or for ever. The clients are kept in the
// order they last did something, so the first is the next to expire: one
// look, not one per client.
func (l *loop) timeout(now time.Time) int {
	if l.cfg.idle <= 0 || l.byAge.Len() == 0 {
		return -1
	}
	left := l.byAge.Front().Value.(*conn).last.Add(l.cfg.idle).Sub(now)
	return max(0, int((left+time.Millisecond-1)/time.Millisecond)) // round up: never wake early
}

// expire closes the clients idle for cfg.idle or longer.
func (l *loop) expire(now time.Time) {
	for l.cfg.idle > 0 && l.byAge.Len() > 0 {
		c := l.byAge.Front().Value.(*conn)
		if now.Sub(c.last) < l.cfg.idle {
			return
		}
		fmt.Fprintf(l.stderr, "%s: idle for %v: closed\n", c.peer, l.cfg.idle)
		l.drop(c)
	}
}

// endregion timers
