//go:build !linux

// Command 11-datagrams needs Linux: it creates its sockets with
// SOCK_CLOEXEC, asks recvfrom for a datagram's real size with MSG_TRUNC, and
// wakes a blocked recvfrom with shutdown, which macOS does not do in this
// form. On other systems it says so and exits.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "11-datagrams needs Linux: it uses SOCK_CLOEXEC, recvfrom with MSG_TRUNC, and shutdown to wake a blocked recvfrom")
	os.Exit(1)
}
