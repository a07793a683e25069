//go:build linux

//go:debug containermaxprocs=0

// Command 02-socket asks the kernel for six sockets, one of each common kind,
// and shows what it hands back: small integers, indexes into this process's
// descriptor table. It asks the kernel what each socket is, lists
// /proc/self/fd, shows that a freed number is handed out again, makes one
// call fail on purpose, and closes everything, narrating each call.
//
//	go run ./code/02-socket         # narrate each system call, strace-style
//	go run ./code/02-socket -q      # only the table and /proc/self/fd
//	go run ./code/02-socket -hold   # keep the sockets open until Ctrl-C
//
// It needs Linux: SO_DOMAIN and SO_PROTOCOL are Linux socket options.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"

	"golang.org/x/sys/unix"
)

type config struct {
	quiet bool // do not narrate system calls
	hold  bool // keep the sockets open until SIGINT or SIGTERM
}

func main() {
	var cfg config
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	flag.BoolVar(&cfg.hold, "hold", false, "keep the sockets open until SIGINT or SIGTERM")
	flag.Parse()
	// Ctrl-C (SIGINT) and kill (SIGTERM) cancel ctx instead of ending the
	// program at once, so that run can close its sockets on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, w io.Writer) (err error) {
	n := newNarrator(w, cfg.quiet)

	// region create
	kinds := []struct{ domain, typ int }{
		{unix.AF_INET, unix.SOCK_STREAM},
		{unix.AF_INET, unix.SOCK_DGRAM},
		{unix.AF_INET6, unix.SOCK_STREAM},
		{unix.AF_INET6, unix.SOCK_DGRAM},
		{unix.AF_UNIX, unix.SOCK_STREAM},
		{unix.AF_UNIX, unix.SOCK_DGRAM},
	}
	var fds []int
	// However run ends, close every socket that is still ours.
	defer func() {
		for _, fd := range fds {
			if fd >= 0 {
				err = errors.Join(err, closeFD(n, fd))
			}
		}
	}()
	for _, k := range kinds {
		fd, err := newSocket(n, k.domain, k.typ, 0)
		if err != nil {
			return err
		}
		fds = append(fds, fd)
	}
	// endregion create

	var rows []string
	for _, fd := range fds {
		row, err := inspect(n, fd)
		if err != nil {
			return err
		}
		rows = append(rows, row)
	}
	if !cfg.quiet {
		fmt.Fprintln(w) // between the narration and the table that sums it up
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "fd\tSO_DOMAIN\tSO_TYPE\tSO_PROTOCOL\tF_GETFD\tgetsockname")
	fmt.Fprintln(tw, strings.Join(rows, "\n"))
	tw.Flush()
	fmt.Fprintln(w)
	if err := listFDs(w); err != nil {
		return err
	}

	// region reuse
	// Free the third socket's number and ask for another socket. The kernel
	// hands out the lowest free number: this one, not one past the highest.
	old := fds[2]
	fds[2] = -1 // closed or not, the number is no longer ours to close
	if err := closeFD(n, old); err != nil {
		return err
	}
	if fds[2], err = newSocket(n, unix.AF_INET6, unix.SOCK_STREAM, 0); err != nil {
		return err
	}
	now, err := os.Readlink(fdPath(fds[2]))
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "closed %d; the next socket got %d again, a new one: %s -> %s\n", old, fds[2], fdPath(fds[2]), now)
	// endregion reuse

	// region fail
	// TCP is a stream protocol and UDP a datagram one: a stream socket that
	// speaks UDP is a contradiction, and the kernel refuses to make one.
	bad, err := newSocket(n, unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_UDP)
	if err == nil {
		fds = append(fds, bad)
		return fmt.Errorf("socket AF_INET SOCK_STREAM IPPROTO_UDP = %d, want EPROTONOSUPPORT", bad)
	}
	if !errors.Is(err, unix.EPROTONOSUPPORT) {
		return err
	}
	// endregion fail

	// region hold
	if cfg.hold {
		pid := os.Getpid()
		fmt.Fprintf(w, "holding %d sockets open in pid %d; from another terminal try\n", len(fds), pid)
		fmt.Fprintf(w, "  ls -l /proc/%d/fd\n  ss -xap | grep pid=%d\n", pid, pid)
		fmt.Fprintf(w, "Ctrl-C (SIGINT) or kill %d (SIGTERM) closes them and exits\n", pid)
		<-ctx.Done()
	}
	// endregion hold
	return nil
}

// region newSocket
// newSocket asks the kernel for a socket, always with SOCK_CLOEXEC so that
// the descriptor does not leak into programs this one might exec.
func newSocket(n narrator, domain, typ, proto int) (int, error) {
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, proto)
	n.call(fmt.Sprintf("socket(%s, %s|SOCK_CLOEXEC, %s)", domainName(domain), typeName(typ), protoName(proto)),
		strconv.Itoa(fd), err)
	if err != nil {
		what := "socket " + domainName(domain) + " " + typeName(typ)
		if proto != 0 {
			what += " " + protoName(proto)
		}
		return -1, os.NewSyscallError(what, err)
	}
	return fd, nil
}

func closeFD(n narrator, fd int) error {
	err := unix.Close(fd)
	n.call(fmt.Sprintf("close(%d)", fd), "0", err)
	return os.NewSyscallError("close "+strconv.Itoa(fd), err) // nil if err is nil
}

// endregion newSocket
