//go:build !linux

// Command 02-socket needs Linux: it asks the kernel about its sockets with the
// socket options SO_DOMAIN and SO_PROTOCOL, which other systems such as macOS
// do not have, and lists the process's descriptors in /proc/self/fd. On other
// systems it says so and exits.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "02-socket needs Linux: it uses getsockopt SO_DOMAIN and SO_PROTOCOL, and /proc/self/fd")
	os.Exit(1)
}
