//go:build linux

// Chapter 7's echo and its reads and writes, as chapter 10 left them, and a
// line that makes the echo crash. Every socket here blocks, so the loops
// have no EAGAIN branch.

package main

import (
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"
)

// echo reads whatever has arrived, up to bufsize bytes at a time, and writes
// back each whole line it has, until the read that returns 0: end of file.
// A read may hold half a line, or several; echo never assumes one line.
func echo(n narrator, fd, bufsize int) error {
	buf := make([]byte, bufsize)
	var line []byte // what has arrived of the next line
	for {
		got, err := readFD(n, fd, buf)
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
			// region crash
			// A bug, on purpose: the line "crash" makes the server panic.
			// In chapter 12 that ended the server; here it ends one child.
			if string(line[:i+1]) == "crash\n" {
				panic("a client sent \"crash\"")
			}
			// endregion crash
			if err := writeAll(n, fd, line[:i+1]); err != nil {
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
