package main

import (
	"fmt"
	"io"
	"net"
	"strings"
)

// client connects to addr, sends msg as one line and prints the reply.
func client(addr, msg string, n narrator) error {
	// region dial
	n.call(fmt.Sprintf("net.Dial(%q, %q)", "tcp", addr), "socket, connect")
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return fail("dial", addr, err)
	}
	defer func() {
		n.call("c.Close()", "close")
		c.Close()
	}()
	// connect gave this socket a port of the kernel's choosing.
	n.result("connection: TCP, local %s, remote %s", c.LocalAddr(), c.RemoteAddr())
	// endregion dial

	// region talk
	n.call(fmt.Sprintf("c.Write(%q)", msg+"\n"), "write")
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return fail("write", addr, err)
	}
	reply, err := readLine(c, n)
	if err != nil {
		return fail("read", addr, err)
	}
	n.say("%s", strings.TrimRight(reply, "\n"))
	return nil
	// endregion talk
}
