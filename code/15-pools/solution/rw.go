//go:build linux

// Chapter 7's echo and its reads and writes. A connection is a conn now:
// a blocking descriptor as before, or, with -netpoll, a non-blocking one
// that Go's runtime waits on (main.go); readFD and writeFD are the only
// places that differ.

package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// echo reads whatever has arrived, up to bufsize bytes at a time, and writes
// back each whole line it has, until the read that returns 0: end of file.
// A read may hold half a line, or several; echo never assumes one line.
func echo(n narrator, c conn, bufsize int) error {
	buf := make([]byte, bufsize)
	var line []byte // what has arrived of the next line
	for {
		got, err := readFD(n, c, buf)
		if err != nil {
			return err
		}
		if got == 0 { // the client closed its end: nothing more will come
			if len(line) > 0 {
				return fmt.Errorf("end of file after %d bytes of a line", len(line))
			}
			return nil
		}
		line = append(line, buf[:got]...)
		for {
			i := slices.Index(line, '\n')
			if i < 0 {
				break
			}
			if err := writeAll(n, c, line[:i+1]); err != nil {
				return err
			}
			line = line[i+1:]
		}
		// Without a limit, a client that never sends a newline could make
		// the server buffer for ever.
		if len(line) >= maxLine {
			return fmt.Errorf("no newline in %d bytes", len(line))
		}
	}
}

// maxLine is the longest line the server takes, newline included.
const maxLine = 1024

// region readFD
// readFD is one read(2), narrated as strace shows it: the bytes that came
// (at most 32 of them), the size of the buffer, and how many came. On a
// blocking descriptor the read waits in the kernel; on a conn with a
// RawConn, a read that would wait fails with EAGAIN instead, and rc.Read
// parks the goroutine until the runtime's epoll says the descriptor is
// readable, then calls the function again.
func readFD(n narrator, c conn, buf []byte) (got int, err error) {
	read := func(fd uintptr) bool {
		got, err = unix.Read(int(fd), buf)
		for err == unix.EINTR { // a signal came before any byte did: ask again
			got, err = unix.Read(int(fd), buf)
		}
		n.call(fmt.Sprintf("read(%d, %s, %d)", fd, quote(buf[:max(got, 0)]), len(buf)), strconv.Itoa(got), err)
		return err != unix.EAGAIN // false: wait until readable, and call again
	}
	if c.rc == nil {
		read(uintptr(c.fd))
		if err == unix.EAGAIN { // SO_RCVTIMEO passed: see setIdle
			err = os.ErrDeadlineExceeded
		}
	} else if c.idle > 0 && c.f.SetReadDeadline(time.Now().Add(c.idle)) != nil {
		err = os.ErrNoDeadline
	} else if rerr := c.rc.Read(read); rerr != nil {
		err = rerr
	}
	return max(got, 0), os.NewSyscallError("read "+strconv.Itoa(c.fd), err)
}

// endregion readFD

// setIdle makes every read of c fail once the client has been silent for
// idle: with SO_RCVTIMEO on a blocking descriptor, where the read fails
// with EAGAIN; with a deadline before each read on one the runtime owns.
func setIdle(n narrator, c *conn, idle time.Duration) error {
	if idle <= 0 {
		return nil
	}
	if c.rc != nil {
		c.idle = idle
		return nil
	}
	tv := unix.NsecToTimeval(idle.Nanoseconds())
	err := unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	n.call(fmt.Sprintf("setsockopt(%d, SOL_SOCKET, SO_RCVTIMEO, %v)", c.fd, idle), "0", err)
	return os.NewSyscallError("setsockopt SO_RCVTIMEO", err)
}

// writeFD is one write(2), narrated likewise: the bytes offered, their
// number, and how many of them the kernel took. A full send buffer is
// EAGAIN on a non-blocking descriptor: rc.Write waits until it is writable.
func writeFD(n narrator, c conn, buf []byte) (sent int, err error) {
	write := func(fd uintptr) bool {
		sent, err = unix.Write(int(fd), buf)
		for err == unix.EINTR {
			sent, err = unix.Write(int(fd), buf)
		}
		n.call(fmt.Sprintf("write(%d, %s, %d)", fd, quote(buf), len(buf)), strconv.Itoa(sent), err)
		return err != unix.EAGAIN
	}
	if c.rc == nil {
		write(uintptr(c.fd))
	} else if werr := c.rc.Write(write); werr != nil {
		err = werr
	}
	return max(sent, 0), os.NewSyscallError("write "+strconv.Itoa(c.fd), err)
}

// readFull reads exactly len(buf) bytes. A read returns what has arrived,
// which may be less than asked for, so it reads until buf is full. End of
// file before the first byte is io.EOF, after it io.ErrUnexpectedEOF.
func readFull(n narrator, c conn, buf []byte) error {
	for done := 0; done < len(buf); {
		got, err := readFD(n, c, buf[done:])
		if err != nil {
			return err
		}
		if got == 0 { // end of file
			if done == 0 {
				return io.EOF
			}
			return io.ErrUnexpectedEOF
		}
		done += got
	}
	return nil
}

// writeAll writes all of buf. A write may take fewer bytes than offered, so
// it writes the rest, and the rest again, until the kernel has taken it all.
func writeAll(n narrator, c conn, buf []byte) error {
	for len(buf) > 0 {
		sent, err := writeFD(n, c, buf)
		if err != nil {
			return err
		}
		buf = buf[sent:]
	}
	return nil
}
