//go:build !linux

// Command 18-measure needs Linux: it reads the kernel's accounting from
// /proc, pins itself and the servers to CPUs with sched_setaffinity and
// taskset, and the servers it measures are Linux programs. On other
// systems it says so and exits.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "18-measure needs Linux: it reads /proc/PID/stat and /proc/PID/status, and uses sched_setaffinity and setrlimit")
	os.Exit(1)
}
