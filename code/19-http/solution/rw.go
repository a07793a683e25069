//go:build linux

// Chapter 7's reads and writes, narrated. The server's sockets do not
// block: the loop, in main.go, meets EAGAIN and handles it itself.

package main

import (
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

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
