//go:build linux

// The event loop's state: its epoll instance, its listening sockets, its
// clients, and their deadlines; how it accepts (and stops accepting when
// out of descriptors), writes, and closes.

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
// conn is one client. What it is owed is, in order: out (a response's
// head, or a small answer), body (a cached file's bytes, shared, never
// written to), and the bytes [off, end) of the open file ffd, for
// sendfile. Between requests in, out and body are nil: an idle client
// holds no buffer.
type conn struct {
	fd       int
	peer     string
	in       []byte // the start of the next request
	out      []byte
	body     []byte
	ffd      int // -1: no file to send
	off, end int64
	closing  bool          // its last answer is queued: close once it is written
	shut     bool          // shut down for writing: waiting for the client to close
	fresh    bool          // connected, and not answered yet
	progress bool          // it sent or took bytes, or had an answer, this turn
	events   uint32        // what epoll_ctl last asked for
	timer    int           // which of the loop's deadlines it is under
	since    time.Time     // when that deadline's clock started
	elem     *list.Element // its place in loop.timers[timer]
}

// owed reports whether c has bytes of an answer not yet written.
func (c *conn) owed() bool { return len(c.out) > 0 || len(c.body) > 0 || c.ffd >= 0 }

// endregion conn

// loop is one event loop: what it needs between two turns.
type loop struct {
	n         narrator
	w, stderr io.Writer
	cfg       config
	root      int // the served directory, opened O_PATH: see files.go
	epfd      int
	wake      int // an eventfd: SIGTERM's way into epoll_wait
	lfds      []int
	port      uint16
	conns     map[int]*conn
	timers    [3]*list.List
	buf       []byte   // every read's buffer
	spare     [][]byte // buffers clients gave back, for the next that needs one
	draining  bool     // SIGTERM came: answer what has come, then stop
	paused    bool     // out of descriptors: the listening sockets are off the interest list
	resume    time.Time
	cache     map[string]*entry // files by path: see files.go
	req       request           // the request being answered: parse reuses it
	peer      string            // the client being answered, for the access log
	cached    int               // bytes in cache
	date      []byte            // the Date field's value, made once a second
	dateSec   int64
}

// newLoop makes a loop's listening sockets, its eventfd and its epoll
// instance, and puts the sockets on its interest list.
func newLoop(n narrator, w, stderr io.Writer, addrs []netip.AddrPort, cfg config, root int) (l *loop, err error) {
	l = &loop{n: n, w: w, stderr: stderr, cfg: cfg, root: root, epfd: -1, wake: -1,
		conns: map[int]*conn{}, buf: make([]byte, cfg.bufsize), cache: map[string]*entry{}}
	for i := range l.timers {
		l.timers[i] = list.New()
	}
	defer func() {
		if err != nil {
			err, l = errors.Join(err, l.close()), nil
		}
	}()
	if l.lfds, err = listenAll(n, w, addrs, cfg); err != nil {
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
	if l.wake, err = newEventfd(n); err != nil {
		return l, err
	}
	for _, fd := range append([]int{l.wake}, l.lfds...) {
		if err := epollCtl(n, l.epfd, unix.EPOLL_CTL_ADD, fd, unix.EPOLLIN); err != nil {
			return l, err
		}
	}
	return l, nil
}

// close closes the clients still connected, the epoll instance, the
// eventfd and the listening sockets.
func (l *loop) close() (err error) {
	for _, c := range l.conns {
		l.drop(c)
	}
	for _, fd := range append([]int{l.epfd, l.wake}, l.lfds...) {
		if fd >= 0 {
			err = errors.Join(err, closeFD(l.n, fd))
		}
	}
	l.lfds = nil
	return err
}

// region accept
// accept takes the connections a listening socket has queued, a few at a
// time. Out of descriptors (EMFILE, ENFILE), accept4 fails and leaves the
// connection queued, and the socket stays readable: level-triggered epoll
// would wake the loop again at once, for ever. So the loop takes its
// listening sockets off the interest list until a client leaves (a
// descriptor is free) or cfg.pause has passed; the queued clients wait in
// the kernel, and the clients already connected are served meanwhile.
func (l *loop) accept(lfd int) error {
	for range 64 {
		c, err := accept(l.n, l.w, lfd)
		if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) {
			fmt.Fprintf(l.stderr, "%v: not accepting for %v, or until a client leaves\n", err, l.cfg.pause)
			return l.listen(false)
		}
		if err != nil || c == nil {
			return err
		}
		if err := l.add(c); err != nil {
			return err
		}
	}
	return nil
}

// add starts watching a new client, under the idle deadline.
func (l *loop) add(c *conn) error {
	c.ffd, c.fresh, c.since = -1, true, time.Now()
	c.elem = l.timers[idling].PushBack(c)
	l.conns[c.fd] = c
	c.events = unix.EPOLLIN | unix.EPOLLRDHUP
	return epollCtl(l.n, l.epfd, unix.EPOLL_CTL_ADD, c.fd, c.events)
}

// listen puts the listening sockets back on the interest list (on) or
// takes them off it.
func (l *loop) listen(on bool) error {
	op := unix.EPOLL_CTL_DEL
	if on {
		op = unix.EPOLL_CTL_ADD
	}
	for _, fd := range l.lfds {
		if err := epollCtl(l.n, l.epfd, op, fd, unix.EPOLLIN); err != nil {
			return err
		}
	}
	l.paused, l.resume = !on, time.Now().Add(l.cfg.pause)
	return nil
}

// endregion accept

// region drain
// drain is SIGTERM's turn: take what the listening sockets have queued
// (those clients connected before the end, and are served), close the
// sockets, and close every client that is between requests. The others
// get their answers, with "Connection: close"; a client that connected
// and has sent nothing yet gets the header deadline to send its request.
func (l *loop) drain() {
	var v [8]byte
	got, err := unix.Read(l.wake, v[:])
	l.n.call(fmt.Sprintf("read(%d, [eventfd], 8)", l.wake), fmt.Sprint(got), err)
	l.draining = true
	for _, fd := range l.lfds {
		for { // paused for EMFILE too: a client may have left since
			c, err := accept(l.n, l.w, fd)
			if err != nil || c == nil || l.add(c) != nil {
				break // out of descriptors still: the rest are reset
			}
		}
		closeFD(l.n, fd)
	}
	l.lfds = nil
	for _, c := range l.conns {
		l.watch(c)
	}
}

// endregion drain

// region flush
// flush writes what c is owed until it is all written or the socket's
// send buffer is full (EAGAIN; the rest waits for EPOLLOUT): the head
// and a cached body in one writev, then the file with sendfile, which
// copies from the page cache to the socket without passing through this
// process, and moves c.off on by what it sent.
func (l *loop) flush(c *conn) error {
	for len(c.out) > 0 || len(c.body) > 0 {
		sent, err := writevFD(l.n, c.fd, c.out, c.body)
		if errors.Is(err, unix.EAGAIN) {
			return nil
		}
		if err != nil {
			return err
		}
		c.progress = true
		if sent < len(c.out) {
			c.out = c.out[:copy(c.out, c.out[sent:])]
			continue
		}
		c.body = c.body[sent-len(c.out):]
		c.out = c.out[:0]
	}
	for c.ffd >= 0 && c.off < c.end {
		_, err := sendfileFD(l.n, c.fd, c.ffd, &c.off, int(min(c.end-c.off, 1<<20)))
		if errors.Is(err, unix.EAGAIN) {
			return nil
		}
		if err != nil {
			return err
		}
		c.progress = true
	}
	if c.ffd >= 0 {
		closeFD(l.n, c.ffd)
		c.ffd = -1
	}
	c.body, c.out = nil, l.give(c.out)
	return nil
}

// endregion flush

// take gives a buffer for a client to hold bytes in; give takes it back.
// Clients between requests hold none, and a busy loop allocates none.
func (l *loop) take() []byte {
	if k := len(l.spare); k > 0 {
		b := l.spare[k-1]
		l.spare = l.spare[:k-1]
		return b
	}
	return make([]byte, 0, 4096)
}

func (l *loop) give(b []byte) []byte {
	if cap(b) > 0 && cap(b) <= 64<<10 && len(l.spare) < 1024 {
		l.spare = append(l.spare, b[:0])
	}
	return nil
}

// keep makes in, the start of c's next request, c's own: it may lie in
// the loop's buffer, which the next read overwrites.
func (c *conn) keep(in []byte, l *loop) {
	if len(in) == 0 {
		c.in = l.give(c.in)
		return
	}
	if c.in == nil {
		c.in = l.take()
	}
	c.in = append(c.in[:0], in...) // in may be the end of c.in: append copies as memmove does
}

// drop closes c, which takes it off the interest list too. A descriptor
// is free now: if the loop stopped accepting for want of one, it starts
// again.
func (l *loop) drop(c *conn) {
	delete(l.conns, c.fd)
	l.timers[c.timer].Remove(c.elem)
	if c.ffd >= 0 {
		closeFD(l.n, c.ffd)
	}
	c.in, c.out, c.body = l.give(c.in), l.give(c.out), nil
	if err := closeFD(l.n, c.fd); err != nil {
		fmt.Fprintln(l.stderr, err)
	}
	if l.paused && len(l.lfds) > 0 {
		l.resume = time.Time{}
	}
}
