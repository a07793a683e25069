//go:build !linux

package main

import "syscall"

// procAttr: elsewhere there is no Pdeathsig; the servers need Linux anyway
// (taskset, /proc), so this only keeps the harness building everywhere.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
