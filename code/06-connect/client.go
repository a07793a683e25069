//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// region client
// runClient connects one socket to cfg.addr and shows the connection from
// its end. Then it sends cfg.msg and prints the reply or, with -hold, sends
// nothing until Ctrl-C.
func runClient(ctx context.Context, cfg config, n narrator, w io.Writer) (err error) {
	fd, err := dial(ctx, n, cfg.addr, cfg.timeout)
	if err != nil {
		if ctx.Err() != nil {
			return nil // Ctrl-C stopped the connect: we are stopping, not failing
		}
		return err
	}
	defer func() { err = errors.Join(err, closeFD(n, fd)) }()
	if _, err := showConn(n, w, fd); err != nil {
		return err
	}
	if cfg.hold {
		fmt.Fprintln(w, "sending nothing until Ctrl-C")
		<-ctx.Done()
		return nil
	}
	return talk(ctx, n, w, fd, cfg.msg)
}

// endregion client

// region talk
// talk sends msg as a line and prints the reply. It polls until the reply
// has arrived, for as long as the server is busy with other clients.
func talk(ctx context.Context, n narrator, w io.Writer, fd int, msg string) error {
	line := []byte(msg + "\n")
	sent, err := unix.Write(fd, line)
	n.call(fmt.Sprintf("write(%d, %q, %d)", fd, line, len(line)), strconv.Itoa(sent), err)
	if err != nil {
		return os.NewSyscallError("write", err)
	}
	for ready := 0; ready == 0; { // wake every 100 ms to notice Ctrl-C
		if ctx.Err() != nil {
			return nil
		}
		ready, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 100)
	}
	buf := make([]byte, 1024)
	got, err := unix.Read(fd, buf)
	n.call(fmt.Sprintf("read(%d, %q, %d)", fd, buf[:max(got, 0)], len(buf)), strconv.Itoa(got), err)
	if err != nil {
		return os.NewSyscallError("read", err)
	}
	fmt.Fprint(w, string(buf[:got]))
	return nil
}

// endregion talk

// pollEvents names the bits poll set in revents.
func pollEvents(ev int16) string {
	var names []string
	for _, b := range []struct {
		bit  int16
		name string
	}{{unix.POLLIN, "POLLIN"}, {unix.POLLOUT, "POLLOUT"}, {unix.POLLERR, "POLLERR"}, {unix.POLLHUP, "POLLHUP"}} {
		if ev&b.bit != 0 {
			names = append(names, b.name)
		}
	}
	return strings.Join(names, "|")
}
