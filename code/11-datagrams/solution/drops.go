//go:build linux

// Exercise 2: the server counts the datagrams the kernel dropped on its
// socket, with SO_RXQ_OVFL.

package main

import (
	"encoding/binary"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// watchDrops sets SO_RXQ_OVFL on fd: from now on, each datagram recvmsg
// returns comes with the number of datagrams dropped on fd so far.
func watchDrops(n narrator, fd int) error {
	err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1)
	n.call(fmt.Sprintf("setsockopt(%d, SOL_SOCKET, SO_RXQ_OVFL, 1)", fd), "0", err)
	return os.NewSyscallError("setsockopt SO_RXQ_OVFL", err)
}

// recvMsg is recvFrom done with recvmsg(2), which also returns control
// messages: the SO_RXQ_OVFL count, if the datagram carries one. The kernel
// adds it only once something has been dropped; without it the count is 0.
func recvMsg(n narrator, fd int, buf []byte, flags int) (int, unix.Sockaddr, uint32, error) {
	oob := make([]byte, unix.CmsgSpace(4))
	got, oobn, _, from, err := unix.Recvmsg(fd, buf, oob, flags)
	for err == unix.EINTR {
		got, oobn, _, from, err = unix.Recvmsg(fd, buf, oob, flags)
	}
	var drops uint32
	if err == nil {
		msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
		if perr != nil {
			return 0, nil, 0, fmt.Errorf("recvmsg %d: control messages: %w", fd, perr)
		}
		for _, m := range msgs {
			if m.Header.Level == unix.SOL_SOCKET && m.Header.Type == unix.SO_RXQ_OVFL && len(m.Data) >= 4 {
				drops = binary.NativeEndian.Uint32(m.Data)
			}
		}
	}
	n.call(fmt.Sprintf("recvmsg(%d, %s, %d, %s, %s, dropped %d)", fd, quote(buf[:min(max(got, 0), len(buf))]), len(buf), flagNames(flags), addrString(from), drops),
		strconv.Itoa(got), err)
	return max(got, 0), from, drops, os.NewSyscallError("recvmsg "+strconv.Itoa(fd), err)
}
