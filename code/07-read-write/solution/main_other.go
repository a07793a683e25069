//go:build !linux

// Command 07-read-write needs Linux: it accepts with accept4, which macOS does not
// have, and creates its sockets with SOCK_CLOEXEC and SOCK_NONBLOCK, which
// macOS does not have either. On other systems it says so and exits.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "07-read-write needs Linux: it uses accept4, SOCK_CLOEXEC and SOCK_NONBLOCK")
	os.Exit(1)
}
