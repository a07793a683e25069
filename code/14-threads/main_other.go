//go:build !linux

// Command 14-threads needs Linux: it accepts with accept4, which macOS does
// not have, and creates its sockets with SOCK_CLOEXEC, which macOS does not
// have either. On other systems it says so and exits.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "14-threads needs Linux: it uses accept4 and SOCK_CLOEXEC")
	os.Exit(1)
}
