//go:build !linux

package main

import "syscall"

// runAttr puts a grading run in a process group of its own.
func runAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
