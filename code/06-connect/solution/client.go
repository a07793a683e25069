//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// addrList is the -addr flag: one address, or for the client a
// comma-separated list of them, tried in turn (exercise 3).
type addrList []netip.AddrPort

func (l *addrList) String() string {
	var s []string
	for _, a := range *l {
		s = append(s, a.String())
	}
	return strings.Join(s, ",")
}

// Set replaces the default with the list given: -addr names every address,
// so a list does not add to the default.
func (l *addrList) Set(text string) error {
	var list addrList
	for _, s := range strings.Split(text, ",") {
		a, err := netip.ParseAddrPort(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		list = append(list, a)
	}
	*l = list
	return nil
}

// region client
// runClient connects one socket to the first of cfg.addrs that answers and
// shows the connection from its end. Then it sends cfg.msg and prints the
// reply or, with -hold, sends nothing until Ctrl-C.
func runClient(ctx context.Context, cfg config, n narrator, w io.Writer) (err error) {
	// Exercise 3: each address in turn, stopping at the first that
	// connects. One that fails for any reason (refused, no answer within
	// -timeout, a family this machine lacks) is not the end: the next may
	// answer. Only when all have failed is it an error, and then every
	// address's reason is worth reporting.
	fd, errs := -1, []error(nil)
	for _, addr := range cfg.addrs {
		fd, err = dialRetry(ctx, n, w, addr, cfg)
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return nil // Ctrl-C stopped the connect: we are stopping, not failing
		}
		errs = append(errs, err)
	}
	if fd < 0 {
		return errors.Join(errs...)
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

// dialRetry is dial, tried again a second later while the connection is
// refused, up to cfg.retry more times (exercise 2). Refused means nothing
// listens yet, so trying again makes sense; a timeout or any other error is
// returned at once. Each attempt has its own socket: after a failed connect
// the socket's state is unspecified, and dial has closed it.
func dialRetry(ctx context.Context, n narrator, w io.Writer, addr netip.AddrPort, cfg config) (int, error) {
	for try := 0; ; try++ {
		fd, err := dial(ctx, n, w, addr, cfg.from, cfg.timeout)
		if err == nil || !errors.Is(err, unix.ECONNREFUSED) || try == cfg.retry {
			return fd, err
		}
		select {
		case <-ctx.Done(): // Ctrl-C must not wait out the second
			return -1, err
		case <-time.After(time.Second):
		}
	}
}

// pollMillis is how long the next poll may wait, in milliseconds: a
// second, or what is left until deadline if that is less. It rounds up, so
// that a poll that times out ends at or after the deadline, never a
// fraction of a millisecond before it.
func pollMillis(deadline time.Time) int {
	left := max(min(time.Until(deadline), time.Second), 0)
	return int((left + time.Millisecond - 1) / time.Millisecond)
}

// showSYNs prints what the kernel says of a handshake that has not ended
// yet (exercise 4). In SYN_SENT, tcpi_total_retrans counts the SYNs sent
// again, and tcpi_rto, in microseconds, is how long the kernel waits for
// an answer before it sends the next: a second at first, then doubling
// (after a few one-second gaps, on kernels with tcp_syn_linear_timeouts).
func showSYNs(n narrator, w io.Writer, fd int) error {
	info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
	n.call(fmt.Sprintf("getsockopt(%d, IPPROTO_TCP, TCP_INFO)", fd), "0", err)
	if err != nil {
		return os.NewSyscallError("getsockopt TCP_INFO", err)
	}
	rto := time.Duration(info.Rto) * time.Microsecond
	fmt.Fprintf(w, "TCP_INFO: total_retrans %d, rto %v\n", info.Total_retrans, rto)
	return nil
}

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
