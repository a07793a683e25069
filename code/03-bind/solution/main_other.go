//go:build !linux

// Command 03-bind needs Linux: it creates its socket with the SOCK_CLOEXEC
// flag, which macOS does not have, and its chapter shows Linux's rules for
// bind, SO_REUSEADDR and privileged ports. On other systems it says so and
// exits.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "03-bind needs Linux: it uses socket with SOCK_CLOEXEC, and shows Linux's rules for bind")
	os.Exit(1)
}
