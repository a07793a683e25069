//go:build !linux

// Command 04-listen needs Linux: it creates its sockets with SOCK_CLOEXEC and
// SOCK_NONBLOCK, which macOS does not have, and reads the accept queue with
// the TCP_INFO socket option in Linux's form (macOS has TCP_CONNECTION_INFO,
// a different structure). On other systems it says so and exits.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "04-listen needs Linux: it uses SOCK_CLOEXEC, SOCK_NONBLOCK and Linux's TCP_INFO")
	os.Exit(1)
}
