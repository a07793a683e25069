//go:build linux

// TCP_INFO, which both the server and the client of chapter 4's program
// read: the server for its accept queue, the client for each connection's
// state.

package main

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// tcpInfo reads TCP_INFO and narrates the state and what more shows of it.
func tcpInfo(n narrator, fd int, more func(*unix.TCPInfo) string) (*unix.TCPInfo, error) {
	info, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO)
	result := ""
	if err == nil {
		result = "{tcpi_state=" + stateName(info.State) + more(info) + "}"
	}
	n.call(fmt.Sprintf("getsockopt(%d, SOL_TCP, TCP_INFO)", fd), result, err)
	return info, os.NewSyscallError("getsockopt TCP_INFO", err)
}

// stateName names a TCP state as the kernel's TCP_INFO reports it.
func stateName(s uint8) string {
	return lookup(int(s), map[int]string{
		unix.BPF_TCP_ESTABLISHED: "TCP_ESTABLISHED", unix.BPF_TCP_SYN_SENT: "TCP_SYN_SENT",
		unix.BPF_TCP_CLOSE: "TCP_CLOSE", unix.BPF_TCP_CLOSE_WAIT: "TCP_CLOSE_WAIT", unix.BPF_TCP_LISTEN: "TCP_LISTEN",
	})
}
