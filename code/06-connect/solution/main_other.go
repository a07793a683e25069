//go:build !linux

// Command 06-connect needs Linux: it accepts with accept4, which macOS does not
// have, and creates its sockets with SOCK_CLOEXEC and SOCK_NONBLOCK, which
// macOS does not have either. On other systems it says so and exits.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "06-connect needs Linux: it uses accept4, SOCK_CLOEXEC and SOCK_NONBLOCK")
	os.Exit(1)
}
