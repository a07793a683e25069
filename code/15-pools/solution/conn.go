//go:build linux

// Chapter 14's hand-over of a connection to Go's runtime (-netpoll), kept
// so that any design can wait for its clients either way.

package main

import (
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A conn is a connected socket: a blocking descriptor, or one handed to
// Go's runtime, which then owns it (f) and waits for it (rc).
type conn struct {
	fd int
	f  *os.File        // nil for a blocking descriptor
	rc syscall.RawConn // f's descriptor, for reads and writes the runtime waits for

	idle time.Duration // with rc: the deadline each read sets, from now
}

// handOver makes fd non-blocking and gives it to Go's runtime; on failure
// the conn it returns is still the one to close. os.NewFile
// sees O_NONBLOCK and registers the descriptor with the runtime's epoll,
// once; from then on a read that would block fails with EAGAIN, and the
// runtime parks the goroutine, not the thread, until epoll says the
// descriptor is ready. This is what the net package does for every socket.
func handOver(n narrator, fd int) (conn, error) {
	err := unix.SetNonblock(fd, true)
	n.call(fmt.Sprintf("fcntl(%d, F_SETFL, O_RDWR|O_NONBLOCK)", fd), "0", err)
	if err != nil {
		return conn{fd: fd}, os.NewSyscallError("fcntl O_NONBLOCK", err)
	}
	f := os.NewFile(uintptr(fd), "connection "+strconv.Itoa(fd))
	rc, err := f.SyscallConn()
	if err != nil {
		return conn{fd: fd, f: f}, err
	}
	return conn{fd: fd, f: f, rc: rc}, nil
}

// close closes the connection: with unix.Close, or, once the runtime owns
// it, with f.Close, which takes it out of the runtime's epoll first.
func (c conn) close(n narrator) error {
	if c.f == nil {
		return closeFD(n, c.fd)
	}
	err := c.f.Close()
	n.call(fmt.Sprintf("close(%d)", c.fd), "0", err)
	return err
}
