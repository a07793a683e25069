//go:build linux

package main

import (
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// This file holds chapter 7's reading and writing: one narrated read or
// write, and the loops that read exactly n bytes and write all of them.
// What this chapter changes is writeFD: sendmsg with MSG_NOSIGNAL.

// maxLine is the longest line the server takes, newline included.
const maxLine = 1024

// bufSize is how many bytes each of the server's reads asks for.
const bufSize = 4096

// region rw
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

// writeFD is one sendmsg(2), narrated likewise: the bytes offered, their
// number, and how many of them the kernel took. With MSG_NOSIGNAL, a write
// to a connection that has been reset fails with EPIPE and nothing more:
// without it the kernel would also raise SIGPIPE, which kills a C program.
// SendmsgN with no address and no control data is send(2).
func writeFD(n narrator, fd int, buf []byte) (int, error) {
	if plainWrite {
		return writePlain(n, fd, buf)
	}
	sent, err := unix.SendmsgN(fd, buf, nil, nil, unix.MSG_NOSIGNAL)
	for err == unix.EINTR {
		sent, err = unix.SendmsgN(fd, buf, nil, nil, unix.MSG_NOSIGNAL)
	}
	n.call(fmt.Sprintf("sendmsg(%d, %s, %d, MSG_NOSIGNAL)", fd, quote(buf), len(buf)), strconv.Itoa(sent), err)
	return max(sent, 0), os.NewSyscallError("sendmsg "+strconv.Itoa(fd), err)
}

// plainWrite is exercise 3: set it to true, in a copy of the program, to
// write with write(2) instead of sendmsg with MSG_NOSIGNAL.
const plainWrite = false

// writePlain is exercise 3: write(2), which has no flags, so a write to a
// reset connection raises SIGPIPE as well as failing with EPIPE. The Go
// runtime catches the signal and, as the descriptor is not 1 or 2, ignores
// it: strace -e signal=SIGPIPE shows it arrive, and the program carries on
// to its error message.
func writePlain(n narrator, fd int, buf []byte) (int, error) {
	sent, err := unix.Write(fd, buf)
	for err == unix.EINTR {
		sent, err = unix.Write(fd, buf)
	}
	n.call(fmt.Sprintf("write(%d, %s, %d)", fd, quote(buf), len(buf)), strconv.Itoa(sent), err)
	return max(sent, 0), os.NewSyscallError("write "+strconv.Itoa(fd), err)
}

// endregion rw

// region readFull
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

// endregion readFull

// region writeAll
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

// endregion writeAll

// quote shows bytes as strace does: quoted, escaped, at most 32 of them.
func quote(b []byte) string {
	if len(b) > 32 {
		return strconv.Quote(string(b[:32])) + "..."
	}
	return strconv.Quote(string(b))
}
