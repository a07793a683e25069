//go:build !linux

package booktest

import "syscall"

// procAttr puts a program in a process group of its own, which killGroup
// ends with everything in it.
func procAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// limit sets no limits: the tests that need them run on Linux.
func limit(pid int) error { return nil }
