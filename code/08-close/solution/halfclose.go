//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"time"
)

// region halfClose
// halfClose is the -close shutdown client written with the net package
// (exercise 4). It sends all the lines in one write, then CloseWrite shuts
// down the sending half of the connection (it calls shutdown(fd, SHUT_WR)):
// the server reads end of file, yet the reply can still flow back.
// io.ReadAll reads it up to the server's own end of file. The net package
// makes the socket non-blocking and waits in its poller, so there is no
// EAGAIN to handle here.
func halfClose(ctx context.Context, n narrator, w io.Writer, cfg config) (err error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", cfg.addr.String())
	n.call(fmt.Sprintf("net.Dial(%q, %q)", "tcp", cfg.addr), "conn", err)
	if err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl-C stopped the connect: we are stopping, not failing
		}
		return err // net's errors name the call and the address
	}
	conn := c.(*net.TCPConn)
	defer func() {
		cerr := conn.Close()
		n.call("conn.Close()", "nil", cerr)
		err = errors.Join(err, cerr)
	}()
	fmt.Fprintf(w, "connection: TCP, local %s, remote %s\n", conn.LocalAddr(), conn.RemoteAddr())
	// Ctrl-C must not wait for a server that says nothing. A deadline in
	// the past wakes the read, as shutdown does in the rest of the program,
	// and leaves closing the descriptor to the deferred Close.
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()

	lines := []byte(strings.Join(cfg.msgs, "\n") + "\n")
	sent, err := conn.Write(lines) // as many write(2) calls as it takes
	n.call(fmt.Sprintf("conn.Write(%s, %d)", quote(lines), len(lines)), strconv.Itoa(sent), err)
	if err != nil {
		return err
	}
	err = conn.CloseWrite()
	n.call("conn.CloseWrite()", "nil", err)
	if err != nil {
		return err
	}
	reply, err := io.ReadAll(conn) // reads until a read returns 0
	result := quote(reply)
	if err != nil {
		result += ", " + err.Error() // an errno is shown as -1 ENAME instead
	}
	n.call("io.ReadAll(conn)", result, err)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return fmt.Errorf("after a reply of %q: %w", reply, err)
	}
	fmt.Fprintf(w, "reply %q, then end of file\n", reply)
	return nil
}

// endregion halfClose
