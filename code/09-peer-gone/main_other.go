//go:build !linux

// Command 09-peer-gone needs Linux: it accepts with accept4, which macOS does
// not have, and creates its sockets with SOCK_CLOEXEC,
// which macOS does not have either; its keepalive idle time is TCP_KEEPIDLE,
// which macOS calls TCP_KEEPALIVE. On other systems it says so and exits.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "09-peer-gone needs Linux: it uses accept4, SOCK_CLOEXEC, MSG_NOSIGNAL and TCP_KEEPIDLE")
	os.Exit(1)
}
