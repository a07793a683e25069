//go:build linux

// Command 02-socket asks the kernel for seven sockets, one of each common kind,
// and shows what it hands back: small integers, indexes into this process's
// descriptor table. It asks the kernel what each socket is, shows what a child
// process inherits, makes two more descriptors for one socket, lists
// /proc/self/fd, shows that a freed number is handed out again, makes one
// call fail on purpose, and closes everything, narrating each call.
//
// This is the reference solution to the chapter's exercises.
//
//	go run ./code/02-socket/solution            # narrate each system call, strace-style
//	go run ./code/02-socket/solution -q         # only the table and /proc/self/fd
//	go run ./code/02-socket/solution -hold      # keep the sockets open until Ctrl-C
//	go run ./code/02-socket/solution -leak      # sockets without SOCK_CLOEXEC: ls inherits them
//	go run ./code/02-socket/solution -limit 20  # run out of descriptors: EMFILE
//
// It needs Linux: SO_DOMAIN and SO_PROTOCOL are Linux socket options.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"

	"golang.org/x/sys/unix"
)

type config struct {
	quiet bool // do not narrate system calls
	hold  bool // keep the sockets open until SIGINT or SIGTERM
	leak  bool // create the sockets without SOCK_CLOEXEC
	limit int  // if > 0, lower RLIMIT_NOFILE to this and run out of descriptors
}

func main() {
	var cfg config
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	flag.BoolVar(&cfg.hold, "hold", false, "keep the sockets open until SIGINT or SIGTERM")
	flag.BoolVar(&cfg.leak, "leak", false, "create the sockets without SOCK_CLOEXEC, so that ls inherits them")
	flag.IntVar(&cfg.limit, "limit", 0, "lower the soft RLIMIT_NOFILE to `N` and create sockets until one fails")
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
	n := narrator{w: w, quiet: cfg.quiet}

	// region create
	kinds := []struct{ domain, typ int }{
		{unix.AF_INET, unix.SOCK_STREAM},
		{unix.AF_INET, unix.SOCK_DGRAM},
		{unix.AF_INET6, unix.SOCK_STREAM},
		{unix.AF_INET6, unix.SOCK_DGRAM},
		{unix.AF_UNIX, unix.SOCK_STREAM},
		{unix.AF_UNIX, unix.SOCK_DGRAM},
		// Exercise 1. Sequenced packets: a connection, like a stream, that
		// keeps each message's boundaries, like datagrams. (AF_INET,
		// SOCK_SEQPACKET) fails with ESOCKTNOSUPPORT, "Socket type not
		// supported": IPv4 has no protocol of that type unless the SCTP
		// module is loaded.
		{unix.AF_UNIX, unix.SOCK_SEQPACKET},
	}
	// Exercise 2. Without SOCK_CLOEXEC the sockets survive exec, into ls.
	flags := unix.SOCK_CLOEXEC
	if cfg.leak {
		flags = 0
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
		fd, err := newSocket(n, k.domain, k.typ|flags, 0)
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

	// Exercise 2. ls runs before exercise 4's dup makes a copy without
	// close-on-exec, so that only -leak decides what ls inherits.
	if err := runLS(w); err != nil {
		return err
	}

	// Exercise 4. Two more descriptors for the first socket. dup copies the
	// table entry but not its close-on-exec flag, which belongs to the
	// entry; F_DUPFD_CLOEXEC sets it on the copy in the same call.
	first := fds[0]
	dup, err := unix.Dup(first)
	n.call(fmt.Sprintf("dup(%d)", first), strconv.Itoa(dup), err)
	if err != nil {
		return os.NewSyscallError(fmt.Sprintf("dup %d", first), err)
	}
	fds = append(fds, dup)
	dupCloexec, err := unix.FcntlInt(uintptr(first), unix.F_DUPFD_CLOEXEC, 0)
	n.call(fmt.Sprintf("fcntl(%d, F_DUPFD_CLOEXEC, 0)", first), strconv.Itoa(dupCloexec), err)
	if err != nil {
		return os.NewSyscallError(fmt.Sprintf("fcntl %d F_DUPFD_CLOEXEC", first), err)
	}
	fds = append(fds, dupCloexec)
	for _, fd := range []int{dup, dupCloexec} {
		if _, err := getFD(n, fd); err != nil {
			return err
		}
	}
	if !cfg.quiet {
		fmt.Fprintln(w) // between the narration and the listing
	}

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
	if fds[2], err = newSocket(n, unix.AF_INET6, unix.SOCK_STREAM|flags, 0); err != nil {
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
	bad, err := newSocket(n, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if err == nil {
		fds = append(fds, bad)
		return fmt.Errorf("socket AF_INET SOCK_STREAM IPPROTO_UDP = %d, want EPROTONOSUPPORT", bad)
	}
	if !errors.Is(err, unix.EPROTONOSUPPORT) {
		return err
	}
	// endregion fail

	// Exercise 4, after the reuse above so that 5 still comes back as 5.
	// The socket lives on while any descriptor for it is open: closing the
	// original leaves it working through the copies.
	fds[0] = -1
	if err := closeFD(n, first); err != nil {
		return err
	}
	proto, err := unix.GetsockoptInt(dup, unix.SOL_SOCKET, unix.SO_PROTOCOL)
	n.call(fmt.Sprintf("getsockopt(%d, SOL_SOCKET, SO_PROTOCOL)", dup), withName(proto, protoName(proto)), err)
	if err != nil {
		return os.NewSyscallError(fmt.Sprintf("getsockopt %d SO_PROTOCOL", dup), err)
	}

	if cfg.limit > 0 {
		if err := hitLimit(n, w, cfg.limit); err != nil {
			return err
		}
	}

	// region hold
	if cfg.hold {
		pid := os.Getpid()
		open := 0
		for _, fd := range fds {
			if fd >= 0 {
				open++
			}
		}
		fmt.Fprintf(w, "holding %d descriptors open in pid %d; from another terminal try\n", open, pid)
		fmt.Fprintf(w, "  ls -l /proc/%d/fd\n  ss -xap | grep pid=%d\n", pid, pid)
		fmt.Fprintf(w, "Ctrl-C (SIGINT) or kill %d (SIGTERM) closes them and exits\n", pid)
		<-ctx.Done()
	}
	// endregion hold
	return nil
}

// region newSocket
// newSocket asks the kernel for a socket. typ may carry SOCK_CLOEXEC, which
// every socket should have so that the descriptor does not leak into
// programs this one might exec; only -leak leaves it out, to show the leak.
func newSocket(n narrator, domain, typ, proto int) (int, error) {
	fd, err := unix.Socket(domain, typ, proto)
	base := typ &^ unix.SOCK_CLOEXEC
	shown := typeName(base)
	if typ&unix.SOCK_CLOEXEC != 0 {
		shown += "|SOCK_CLOEXEC"
	}
	n.call(fmt.Sprintf("socket(%s, %s, %s)", domainName(domain), shown, protoName(proto)),
		strconv.Itoa(fd), err)
	if err != nil {
		what := "socket " + domainName(domain) + " " + typeName(base)
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

// region inspect
// inspect asks the kernel what fd is, and returns the answers as a table row.
func inspect(n narrator, fd int) (string, error) {
	row := []string{strconv.Itoa(fd)}
	for _, o := range []struct {
		opt  int
		name string
		show func(int) string
	}{
		{unix.SO_DOMAIN, "SO_DOMAIN", domainName},
		{unix.SO_TYPE, "SO_TYPE", typeName},
		{unix.SO_PROTOCOL, "SO_PROTOCOL", protoName},
	} {
		v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, o.opt)
		n.call(fmt.Sprintf("getsockopt(%d, SOL_SOCKET, %s)", fd, o.name), withName(v, o.show(v)), err)
		if err != nil {
			return "", os.NewSyscallError(fmt.Sprintf("getsockopt %d %s", fd, o.name), err)
		}
		row = append(row, withName(v, o.show(v)))
	}
	// endregion inspect
	// region flags
	cloexec, err := getFD(n, fd)
	if err != nil {
		return "", err
	}
	sa, err := unix.Getsockname(fd)
	local := addrString(sa)
	n.call(fmt.Sprintf("getsockname(%d)", fd), local, err)
	if err != nil {
		return "", os.NewSyscallError(fmt.Sprintf("getsockname %d", fd), err)
	}
	return strings.Join(append(row, cloexec, local), "\t"), nil
}

// endregion flags

// getFD shows the flags of descriptor fd. Close-on-exec is a flag on this
// process's descriptor, not on the socket, so it is fcntl that reports it.
func getFD(n narrator, fd int) (string, error) {
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	cloexec := "0"
	if flags&unix.FD_CLOEXEC != 0 {
		cloexec = "FD_CLOEXEC"
	}
	n.call(fmt.Sprintf("fcntl(%d, F_GETFD)", fd), cloexec, err)
	if err != nil {
		return "", os.NewSyscallError(fmt.Sprintf("fcntl %d F_GETFD", fd), err)
	}
	return cloexec, nil
}

// runLS runs ls -l /proc/self/fd in a child process, which lists the child's
// own descriptor table: what it inherited from this process through exec.
// Its standard input, output and error are this process's own, passed as
// they are. Left nil, they would make os/exec open /dev/null, and opening a
// file starts the Go runtime's poller, whose two descriptors (an epoll and an
// eventfd) would then stay open here and shift every number after them.
func runLS(w io.Writer) error {
	fmt.Fprintln(w, "$ ls -l /proc/self/fd")
	cmd := exec.Command("ls", "-l", "/proc/self/fd")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, w, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ls -l /proc/self/fd: %w", err)
	}
	fmt.Fprintln(w)
	return nil
}

// hitLimit is exercise 3: it lowers the soft RLIMIT_NOFILE to limit, then
// creates sockets until the kernel refuses one, and closes them all. Only
// the soft limit changes, and it binds root too.
func hitLimit(n narrator, w io.Writer, limit int) (err error) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return os.NewSyscallError("getrlimit RLIMIT_NOFILE", err)
	}
	lim.Cur = uint64(limit)
	err = unix.Setrlimit(unix.RLIMIT_NOFILE, &lim)
	n.call(fmt.Sprintf("setrlimit(RLIMIT_NOFILE, {rlim_cur=%d, rlim_max=%d})", lim.Cur, lim.Max), "0", err)
	if err != nil {
		return os.NewSyscallError(fmt.Sprintf("setrlimit RLIMIT_NOFILE %d", limit), err)
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			err = errors.Join(err, closeFD(n, fd))
		}
	}()
	for {
		fd, err := newSocket(n, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		var errno unix.Errno
		if errors.As(err, &errno) {
			// The expected end, not a failure: say how far it got.
			last := "none"
			if len(fds) > 0 {
				last = strconv.Itoa(fds[len(fds)-1])
			}
			fmt.Fprintf(w, "limit %d: last socket %s, then %s\n", limit, last, errnoText(errno))
			return nil
		} else if err != nil {
			return err
		}
		fds = append(fds, fd)
	}
}

// region listFDs
// listFDs prints what ls -l /proc/self/fd shows: every descriptor this process
// has open, its own and any the Go runtime or its parent gave it.
func listFDs(w io.Writer) error {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return err
	}
	var fds []int
	for _, e := range entries {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			return fmt.Errorf("/proc/self/fd/%s: %w", e.Name(), err)
		}
		fds = append(fds, fd)
	}
	slices.Sort(fds)
	fmt.Fprintln(w, "/proc/self/fd:")
	for _, fd := range fds {
		target, err := os.Readlink(fdPath(fd))
		if errors.Is(err, fs.ErrNotExist) {
			continue // the descriptor ReadDir read the directory with, closed since
		} else if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %d -> %s\n", fd, target)
	}
	fmt.Fprintln(w)
	return nil
}

// endregion listFDs

func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// addrString shows a socket address the way this book writes them.
func addrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrUnix:
		// For a socket with no name the kernel returns only the family,
		// which x/sys shows as "@", the prefix of an abstract name.
		if a.Name == "" || a.Name == "@" {
			return "(unnamed)"
		}
		return a.Name
	}
	return ""
}

// narrator prints each system call the way strace shows it, unless quiet.
type narrator struct {
	w     io.Writer
	quiet bool
}

// call prints "call = result", or for a failure "call = -1 ENAME (Message)".
func (n narrator) call(call, result string, err error) {
	if n.quiet {
		return
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		result = "-1 " + errnoText(errno)
	}
	fmt.Fprintf(n.w, "%s = %s\n", call, result)
}

// errnoText shows an errno as strace does: "EMFILE (Too many open files)".
func errnoText(errno unix.Errno) string {
	msg := errno.Error()
	return fmt.Sprintf("%s (%s%s)", unix.ErrnoName(errno), strings.ToUpper(msg[:1]), msg[1:])
}

// withName shows a number the kernel returned and, if it has one, its name.
func withName(v int, name string) string {
	if name == strconv.Itoa(v) {
		return name
	}
	return fmt.Sprintf("%d (%s)", v, name)
}

func domainName(d int) string {
	return lookup(d, map[int]string{unix.AF_UNIX: "AF_UNIX", unix.AF_INET: "AF_INET", unix.AF_INET6: "AF_INET6"})
}

func typeName(t int) string {
	return lookup(t, map[int]string{unix.SOCK_STREAM: "SOCK_STREAM", unix.SOCK_DGRAM: "SOCK_DGRAM",
		unix.SOCK_SEQPACKET: "SOCK_SEQPACKET"}) // exercise 1
}

// protoName names the IP protocols. An AF_UNIX socket reports protocol 0:
// it has no protocols to choose between.
func protoName(p int) string {
	return lookup(p, map[int]string{unix.IPPROTO_TCP: "IPPROTO_TCP", unix.IPPROTO_UDP: "IPPROTO_UDP"})
}

// lookup is the C name of v, or v itself if this program does not know one.
func lookup(v int, names map[int]string) string {
	if name, ok := names[v]; ok {
		return name
	}
	return strconv.Itoa(v)
}
