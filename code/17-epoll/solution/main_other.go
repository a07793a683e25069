//go:build !linux

// Command 17-epoll needs Linux: epoll is Linux's own (BSD and macOS have
// kqueue instead), and it accepts with accept4 and creates its sockets
// with SOCK_CLOEXEC and SOCK_NONBLOCK, which macOS does not have either.
// On other systems it says so and exits.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "17-epoll needs Linux: it uses epoll, accept4, SOCK_CLOEXEC and SOCK_NONBLOCK")
	os.Exit(1)
}
