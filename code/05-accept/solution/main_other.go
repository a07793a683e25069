//go:build !linux

// Command 05-accept needs Linux: it accepts with accept4, which macOS does not
// have, creates its sockets with SOCK_CLOEXEC and SOCK_NONBLOCK, which macOS
// does not have either, and reads TCP_INFO in Linux's form. On other systems
// it says so and exits.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "05-accept needs Linux: it uses accept4, SOCK_CLOEXEC, SOCK_NONBLOCK and Linux's TCP_INFO")
	os.Exit(1)
}
