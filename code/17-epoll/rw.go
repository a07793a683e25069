//go:build linux

// Chapter 7's reads and writes, narrated. The client's sockets block, so
// readFull and writeAll have no EAGAIN branch; the server's loop, in
// main.go, meets EAGAIN and handles it itself.

package main

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// maxLine is the longest line the server takes, newline included.
const maxLine = 1024

// readFD is one read(2), narrated as strace shows it: the bytes that came
// (at most 32 of them), the size of the buffer, and how many came.
func readFD(n narrator, fd int, buf []byte) (int, error) {
	got, err := unix.Read(fd, buf)
	for err == unix.EINTR { // a signal came before any byte did: ask again
		got, err = unix.Read(fd, buf)
	}
	n.call(fmt.Sprintf("read(%d, %s, %d)", fd, quote(buf[:max(got, 0)]), len(buf)), strconv.Itoa(got), err)
	return max(got, 0), os.NewSyscallError("read "+strconv.Itoa(fd), err)
}

// writeFD is one write(2), narrated likewise: the bytes offered, their
// number, and how many of them the kernel took.
func writeFD(n narrator, fd int, buf []byte) (int, error) {
	sent, err := unix.Write(fd, buf)
	for err == unix.EINTR {
		sent, err = unix.Write(fd, buf)
	}
	n.call(fmt.Sprintf("write(%d, %s, %d)", fd, quote(buf), len(buf)), strconv.Itoa(sent), err)
	return max(sent, 0), os.NewSyscallError("write "+strconv.Itoa(fd), err)
}

// readFull reads exactly len(buf) bytes. A read returns what has arrived,
// which may be less than asked for, so it reads until buf is full. End of
// file before the first byte is io.EOF, after it io.ErrUnexpectedEOF.
func readFull(n narrator, fd int, buf []byte) error {
	for done := 0; done < len(buf); {
		got, err := readFD(n, fd, buf[done:])
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
func writeAll(n narrator, fd int, buf []byte) error {
	for len(buf) > 0 {
		sent, err := writeFD(n, fd, buf)
		if err != nil {
			return err
		}
		buf = buf[sent:]
	}
	return nil
}
