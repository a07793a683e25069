//go:build !linux

// Command 10-unix needs Linux: it accepts with accept4, creates its sockets
// with SOCK_CLOEXEC, asks who connected with SO_PEERCRED and takes abstract
// names, none of which macOS has in this form. On other systems it says so
// and exits.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "10-unix needs Linux: it uses accept4, SOCK_CLOEXEC, SO_PEERCRED and the abstract namespace")
	os.Exit(1)
}
