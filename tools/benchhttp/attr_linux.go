package main

import "syscall"

// procAttr puts a server in a process group of its own, which stop ends
// whole, and has the kernel kill it if the harness dies first (Ctrl-C
// during a run), so no server outlives a benchmark.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
