//go:build linux

package main

import (
	"encoding/binary"
	"fmt"
	"io"
)

// Exercise 3: -framing len. Each message is a 4-byte big-endian length,
// then that many bytes.

// maxMsg is the longest message -framing len takes, header not included.
const maxMsg = 1024

// setFraming is the -framing flag. Both sides must use the same framing:
// each reads what the other writes.
func (cfg *config) setFraming(s string) error {
	switch s {
	case "line", "len":
		cfg.framed = s == "len"
		return nil
	}
	return fmt.Errorf("%q: want line or len", s)
}

// echoFrames is echo for -framing len. The length says how much to read,
// so readFull reads the header, then exactly the body, however many reads
// each takes; nothing is read ahead, so bufsize does not matter here.
func echoFrames(n narrator, w io.Writer, fd, _ int) error {
	for {
		header := make([]byte, 4)
		if err := readFull(n, fd, header); err == io.EOF {
			return nil // the client closed between messages: the normal end
		} else if err != nil {
			return fmt.Errorf("reading a header: %w", err)
		}
		size := binary.BigEndian.Uint32(header)
		// Check before allocating: the length is whatever the client sent.
		if size > maxMsg {
			return fmt.Errorf("message of %d bytes, over the limit of %d (header %q)", size, maxMsg, header)
		}
		msg := make([]byte, 4+size)
		copy(msg, header)
		if err := readFull(n, fd, msg[4:]); err == io.EOF {
			return io.ErrUnexpectedEOF // the header promised a body
		} else if err != nil {
			return err
		}
		// Header and body in one write, as the pitfall about Nagle says.
		if err := writeAll(n, fd, msg); err != nil {
			return err
		}
	}
}

// readFrames reads framed echoes, each a header and then the body it
// announces, until it has want bytes: one message's echo, or with -batch
// all of them.
func readFrames(n narrator, fd, want int) ([]byte, error) {
	var echo []byte
	for len(echo) < want {
		header := make([]byte, 4)
		if err := readFull(n, fd, header); err != nil {
			return nil, err
		}
		size := binary.BigEndian.Uint32(header)
		if size > maxMsg {
			return nil, fmt.Errorf("echo of %d bytes, over the limit of %d (header %q)", size, maxMsg, header)
		}
		body := make([]byte, size)
		if err := readFull(n, fd, body); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // the header promised a body
			}
			return nil, err
		}
		echo = append(append(echo, header...), body...)
	}
	return echo, nil
}

// plural says "1 read", "3 reads" (exercise 2).
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
