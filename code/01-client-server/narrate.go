package main

import (
	"fmt"
	"io"
)

// narrator prints what the program does. say always prints; call and
// result are the narration, which -q silences.
type narrator struct {
	w     io.Writer
	quiet bool
}

func (n narrator) say(format string, args ...any) {
	fmt.Fprintf(n.w, format+"\n", args...)
}

// call prints a Go call about to be made, and the system calls it makes.
func (n narrator) call(goCall, syscalls string) {
	if !n.quiet {
		fmt.Fprintf(n.w, "%s  // %s\n", goCall, syscalls)
	}
}

// result prints, indented under its call, what the call gave back.
func (n narrator) result(format string, args ...any) {
	if !n.quiet {
		fmt.Fprintf(n.w, "  "+format+"\n", args...)
	}
}
