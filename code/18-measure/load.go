//go:build linux

package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The load generator is written on Go's net package, not on the raw calls
// of the servers: its connections wait in Go's netpoller (chapter 14), so
// 1,000 clients cost it a few threads, not 1,000, and it leaves the
// servers' CPU alone.

// Phases of a load: clients warm up, then the window is measured, then
// everything stops.
const (
	warming int32 = iota
	measuring
	stopping
)

// clients are a load's connections and what they saw.
type clients struct {
	phase    atomic.Int32
	answered atomic.Int64 // connections that have had one echo
	mu       sync.Mutex
	conns    []net.Conn
	lat      []time.Duration // each request of the window, send to echo
	served   int             // clients with a request in the window
	errors   []error         // wrong echoes
	wg       sync.WaitGroup
}

// dial opens n connections to addr, four dialers at a time, and keeps
// those that connect.
func (c *clients) dial(addr string, n int) error {
	var dialErr error
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, 4) {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
				c.mu.Lock()
				if err != nil {
					dialErr = err
				} else {
					c.conns = append(c.conns, conn)
				}
				c.mu.Unlock()
			}
		})
	}
	wg.Wait()
	return dialErr
}

// line is client i's request r: a fixed 17 bytes, unique,
// so that an echo that belongs to another request is seen.
func line(i, r int) []byte { return fmt.Appendf(nil, "c%05d r%08d\n", i, r%100000000) }

// loop is one client: write a line, read its echo, check it, again,
// until the load stops. Each request of the window is timed.
func (c *clients) loop(i int, conn net.Conn, once bool) {
	defer c.wg.Done()
	var lat []time.Duration
	buf := make([]byte, 17)
	served := false
	for r := 0; ; r++ {
		want := line(i, r)
		start := time.Now()
		_, err := conn.Write(want)
		if err == nil {
			_, err = io.ReadFull(conn, buf)
		}
		if err != nil {
			break // the load is over (a deadline), or the server closed
		}
		if !bytes.Equal(buf, want) {
			c.mu.Lock()
			c.errors = append(c.errors, fmt.Errorf("client %d sent %q, got back %q", i, want, buf))
			c.mu.Unlock()
			break
		}
		if r == 0 {
			c.answered.Add(1)
		}
		if c.phase.Load() == measuring {
			lat = append(lat, time.Since(start))
			served = true
		}
		if once || c.phase.Load() == stopping {
			break
		}
	}
	c.mu.Lock()
	c.lat = append(c.lat, lat...)
	if served {
		c.served++
	}
	c.mu.Unlock()
}

// start runs a client on every connection: a loop of requests, or with
// once, one echo and then silence (an idle connection the server has
// been seen to hold).
func (c *clients) start(once bool) {
	for i, conn := range c.conns {
		c.wg.Add(1)
		go c.loop(i, conn, once)
	}
}

// settle waits until every connection has had its first echo, or at least
// want have and no other has for 300 ms, or limit has passed. A design
// that serves a few clients at a time never answers the others.
func (c *clients) settle(want int, limit time.Duration) {
	deadline := time.Now().Add(limit)
	last, since := int64(-1), time.Now()
	for time.Now().Before(deadline) {
		got := c.answered.Load()
		if got == int64(len(c.conns)) {
			return
		}
		if got != last {
			last, since = got, time.Now()
		} else if got >= int64(want) && time.Since(since) > 300*time.Millisecond {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop ends every client: a deadline in the past wakes a client blocked
// in a read that will never be answered. The connections stay open.
func (c *clients) stop() {
	c.phase.Store(stopping)
	for _, conn := range c.conns {
		conn.SetDeadline(time.Now())
	}
	c.wg.Wait()
}

func (c *clients) close() {
	for _, conn := range c.conns {
		conn.Close()
	}
	c.conns = nil
}

// percentile is the latency below which p of the requests finished.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)) * p)
	return sorted[min(i, len(sorted)-1)]
}

func (c *clients) sortedLatencies() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	slices.Sort(c.lat)
	return c.lat
}

// probe is one request made with the raw calls the book teaches, narrated:
// the server answers before it is measured.
func probe(n narrator, addr string) error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	n.call(fmt.Sprintf("socket(%s, %s|SOCK_CLOEXEC, %s)", domainName(unix.AF_INET), typeName(unix.SOCK_STREAM), protoName(unix.IPPROTO_TCP)), fmt.Sprint(fd), err)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	err = talk(n, fd, addr)
	cerr := unix.Close(fd)
	n.call(fmt.Sprintf("close(%d)", fd), "0", cerr)
	return errors.Join(err, cerr)
}

// talk connects fd to addr, sends one line and reads its echo.
func talk(n narrator, fd int, addr string) error {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return err
	}
	// The probe must not hang on a server that does not answer.
	tv := unix.Timeval{Sec: 10}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return fmt.Errorf("setsockopt SO_RCVTIMEO: %w", err)
	}
	sa := &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
	err = unix.Connect(fd, sa)
	n.call(fmt.Sprintf("connect(%d, %s)", fd, addrString(sa)), "0", err)
	if err != nil {
		return fmt.Errorf("connect %s: %w", addr, err)
	}
	msg := []byte("probe\n")
	got, err := unix.Write(fd, msg)
	n.call(fmt.Sprintf("write(%d, %q)", fd, msg), fmt.Sprint(got), err)
	if err != nil {
		return fmt.Errorf("write %s: %w", addr, err)
	}
	buf := make([]byte, 64)
	got, err = unix.Read(fd, buf)
	got = max(got, 0)
	n.call(fmt.Sprintf("read(%d)", fd), fmt.Sprintf("%d %q", got, buf[:got]), err)
	if err != nil || !bytes.Equal(buf[:got], msg) {
		return fmt.Errorf("probe %s: got %q (%v), want %q", addr, buf[:got], err, msg)
	}
	return nil
}
