//go:build !linux

// Command 20-server needs Linux: it runs on chapter 17's loop, on epoll,
// which is Linux's own (BSD and macOS have kqueue instead); it opens files
// with openat2 and sends them with sendfile as Linux has them, and it
// accepts with accept4 and creates its sockets with SOCK_CLOEXEC and
// SOCK_NONBLOCK, which macOS does not have either.
// On other systems it says so and exits.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "20-server needs Linux: it uses epoll, eventfd, openat2, sendfile, accept4, SOCK_CLOEXEC and SOCK_NONBLOCK")
	os.Exit(1)
}
