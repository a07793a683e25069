//go:build !linux

// Command 15-pools needs Linux: it accepts with accept4, which macOS does
// not have, and creates its sockets with SOCK_CLOEXEC, which macOS does not
// have either. On other systems it says so and exits.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "15-pools needs Linux: it uses accept4, SOCK_CLOEXEC, epoll and EPOLLEXCLUSIVE")
	os.Exit(1)
}
