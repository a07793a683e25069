//go:build linux

// The server's reads and writes, narrated: read, writev, sendfile. The
// sockets do not block: the loop meets EAGAIN and handles it itself. With
// -q nothing is formatted at all: narration must cost nothing when it is
// off, since these calls run once or more per request.

package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// readFD is one read(2), narrated as strace shows it.
func readFD(n narrator, fd int, buf []byte) (int, error) {
	got, err := unix.Read(fd, buf)
	for err == unix.EINTR { // a signal came before any byte did: ask again
		got, err = unix.Read(fd, buf)
	}
	if !n.quiet {
		n.call(fmt.Sprintf("read(%d, %s, %d)", fd, quote(buf[:max(got, 0)]), len(buf)), strconv.Itoa(got), err)
	}
	if err != nil {
		return 0, os.NewSyscallError("read", err)
	}
	return got, nil
}

// region writev
// writevFD writes head and then body with one system call, writev(2),
// which gathers them from where they lie: the head in the client's
// buffer, the body in the cache, no copy to join them. One call means one
// TCP segment where they fit in one, not a small one for the head and
// another for the body.
func writevFD(n narrator, fd int, head, body []byte) (int, error) {
	var sent int
	var err error
	if len(body) == 0 {
		sent, err = unix.Write(fd, head)
	} else {
		sent, err = unix.Writev(fd, [][]byte{head, body})
	}
	switch {
	case n.quiet:
	case len(body) == 0:
		n.call(fmt.Sprintf("write(%d, %s, %d)", fd, quote(head), len(head)), strconv.Itoa(sent), err)
	default:
		n.call(fmt.Sprintf("writev(%d, [%s, %s], 2)", fd, quote(head), quote(body)), strconv.Itoa(sent), err)
	}
	if err != nil {
		return 0, os.NewSyscallError("writev", err)
	}
	return sent, nil
}

// endregion writev

// region sendfile
// sendfileFD sends count bytes of the file in, from *off, to the socket
// out: the kernel copies from the page cache to the socket, and moves
// *off on by what it sent. On a non-blocking socket it sends what fits
// in the send buffer and returns that count, or EAGAIN if nothing fits.
func sendfileFD(n narrator, out, in int, off *int64, count int) (int, error) {
	from := *off
	sent, err := unix.Sendfile(out, in, off, count)
	if !n.quiet {
		n.call(fmt.Sprintf("sendfile(%d, %d, [%d], %d)", out, in, from, count), strconv.Itoa(sent), err)
	}
	if err != nil {
		return 0, os.NewSyscallError("sendfile", err)
	}
	return sent, nil
}

// endregion sendfile
