//go:build linux

// Command 05-accept is an iterative server: it listens, then accepts one
// client at a time, with accept4, which returns a new descriptor for that
// client's connection while the listening one goes on listening. It reads one
// line from the client, answers it, closes the connection, and accepts the
// next. Its client mode connects, sends one line and prints the reply; with
// -hold it connects and sends nothing, which keeps the server busy.
//
// This is the reference solution to the chapter's exercises: the server
// counts its clients, gives each a 5-second receive timeout, and answers
// every line until the client closes; the client sends -lines lines on each
// connection. (Exercise 3 needs no code: run the server with
// -addr 0.0.0.0:8080 and connect a client to 127.0.0.2:8080.)
//
//	go run ./code/05-accept/solution                          # serve clients one at a time
//	go run ./code/05-accept/solution -client                  # send "hello", print the reply
//	go run ./code/05-accept/solution -client -n 2 -lines 3    # three lines on each of two connections
//	go run ./code/05-accept/solution -client -hold            # connect, say nothing until Ctrl-C
//	go run ./code/05-accept/solution -q                       # without the narration
//
// It needs Linux: it uses accept4 and reads TCP_INFO in Linux's form.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

type config struct {
	addr      netip.AddrPort // the local address to bind
	quiet     bool           // do not narrate system calls
	reuseaddr bool           // set SO_REUSEADDR before bind
	backlog   int            // the backlog argument of listen

	client bool          // be the client: connect to addr
	conns  int           // how many connections the client opens
	wait   time.Duration // how long the client waits for them to complete
	msg    string        // the line the client sends on each connection
	lines  int           // how many times the client sends it on each connection
	hold   bool          // the client sends nothing and holds on until Ctrl-C
}

func main() {
	var cfg config
	flag.TextVar(&cfg.addr, "addr", netip.MustParseAddrPort("127.0.0.1:8080"), "`address` to listen on (or, with -client, to connect to), IP:PORT or [IPv6]:PORT; port 0 lets the kernel choose")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	// On by default, as Go's net package sets it on every listening socket.
	flag.BoolVar(&cfg.reuseaddr, "reuseaddr", true, "set SO_REUSEADDR before bind")
	// Small on purpose, so that a handful of clients fills the queue.
	flag.IntVar(&cfg.backlog, "backlog", 2, "the `backlog` argument of listen")
	flag.BoolVar(&cfg.client, "client", false, "be the client: open -n connections to -addr")
	flag.IntVar(&cfg.conns, "n", 1, "client: how many connections to open")
	flag.DurationVar(&cfg.wait, "wait", time.Minute, "client: how long to wait for every connection to complete")
	flag.StringVar(&cfg.msg, "msg", "hello", "client: the line to send")
	flag.IntVar(&cfg.lines, "lines", 1, "client: how many `lines` to send on each connection, waiting for each reply")
	flag.BoolVar(&cfg.hold, "hold", false, "client: connect, then send nothing until Ctrl-C")
	flag.Parse()
	// Ctrl-C (SIGINT) and kill (SIGTERM) cancel ctx instead of ending the
	// program at once, so that run can close its socket on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, os.Stdout)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg config, w io.Writer) (err error) {
	n := narrator{w: w, quiet: cfg.quiet, mu: new(sync.Mutex)}
	if cfg.client {
		return runClient(ctx, cfg, n, w)
	}

	// region create
	// The address decides the family: an IPv4 address needs an AF_INET
	// socket, an IPv6 one an AF_INET6 socket.
	domain := unix.AF_INET6
	if cfg.addr.Addr().Is4() {
		domain = unix.AF_INET
	}
	fd, err := newSocket(n, domain, unix.SOCK_STREAM, 0)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, closeFD(n, fd)) }()
	// endregion create

	// region reuseaddr
	// SO_REUSEADDR must be set before bind: bind is where the kernel checks
	// whether the address is free.
	if cfg.reuseaddr {
		err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1)
		n.call(fmt.Sprintf("setsockopt(%d, SOL_SOCKET, SO_REUSEADDR, 1)", fd), "0", err)
		if err != nil {
			return os.NewSyscallError("setsockopt SO_REUSEADDR", err)
		}
	}
	// endregion reuseaddr

	// region bind
	sa, err := sockaddr(cfg.addr)
	if err != nil {
		return err
	}
	err = unix.Bind(fd, sa)
	n.call(fmt.Sprintf("bind(%d, %s)", fd, cfg.addr), "0", err)
	if err != nil {
		return os.NewSyscallError("bind "+cfg.addr.String(), err)
	}
	// endregion bind

	// region listen
	// From here on the kernel answers connection requests for this socket
	// and queues completed connections, up to backlog+1, until accept.
	err = unix.Listen(fd, cfg.backlog)
	n.call(fmt.Sprintf("listen(%d, %d)", fd, cfg.backlog), "0", err)
	if err != nil {
		return os.NewSyscallError("listen "+cfg.addr.String(), err)
	}
	// endregion listen

	// region getsockname
	// With port 0 the kernel chose a port; only getsockname can say which.
	bound, err := unix.Getsockname(fd)
	local := addrString(bound)
	n.call(fmt.Sprintf("getsockname(%d)", fd), local, err)
	if err != nil {
		return os.NewSyscallError(fmt.Sprintf("getsockname %d", fd), err)
	}
	fmt.Fprintf(w, "listening on %s\n", local)
	// endregion getsockname

	// region loop
	// Ctrl-C must not wait for a client that may never come: see wakeOnCancel.
	stop := wakeOnCancel(ctx, n, fd)
	defer stop()
	// An iterative server: it serves one client from accept4 to close before
	// it takes the next. Meanwhile the kernel completes the handshakes of
	// other clients and queues their connections.
	for clients := 1; ; clients++ {
		cfd, err := acceptConn(n, fd)
		if err != nil {
			if ctx.Err() != nil {
				return nil // shutdown woke accept4: we are stopping, not failing
			}
			return err
		}
		// One client's failure is not the server's: report it and go on.
		if err := serve(ctx, n, cfd); err != nil {
			fmt.Fprintln(w, err)
		}
		// Exercise 1. serve has closed cfd, whatever happened: that client
		// is done, failed or not, and the next accept4 gets the same number.
		fmt.Fprintf(w, "client %d done\n", clients)
	}
	// endregion loop
}

// tcpInfo reads TCP_INFO and narrates the state and what more shows of it.
func tcpInfo(n narrator, fd int, more func(*unix.TCPInfo) string) (*unix.TCPInfo, error) {
	info, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO)
	result := ""
	if err == nil {
		result = "{tcpi_state=" + stateName(info.State) + more(info) + "}"
	}
	n.call(fmt.Sprintf("getsockopt(%d, SOL_TCP, TCP_INFO)", fd), result, err)
	return info, os.NewSyscallError("getsockopt TCP_INFO", err)
}

// region accept
// acceptConn takes the oldest connection off the listening socket's accept
// queue, waiting for one if the queue is empty. The kernel writes the
// client's address into a buffer it is given, and returns a new descriptor
// for the connection; fd goes on listening.
func acceptConn(n narrator, fd int) (int, error) {
	cfd, peer, err := unix.Accept4(fd, unix.SOCK_CLOEXEC)
	n.call(fmt.Sprintf("accept4(%d, %s, SOCK_CLOEXEC)", fd, addrString(peer)), strconv.Itoa(cfd), err)
	if err != nil {
		return -1, os.NewSyscallError("accept4", err)
	}
	return cfd, nil
}

// endregion accept

// region serve
// serve answers one client: it asks for both ends' addresses, then reads a
// line and answers it, again and again, until the client closes its end,
// and closes the connection. One read is enough for a short line on
// loopback; chapter 7 reads and writes properly.
func serve(ctx context.Context, n narrator, fd int) (err error) {
	defer func() { err = errors.Join(err, closeFD(n, fd)) }()
	stop := wakeOnCancel(ctx, n, fd) // a silent client must not hold up Ctrl-C
	defer stop()

	// Exercise 2. A read that waits longer than this fails with EAGAIN, so
	// a silent client loses its turn instead of holding every client
	// behind it for ever. It is set first, before any call that could
	// block; the socket keeps it for every read.
	tv := unix.NsecToTimeval(readTimeout.Nanoseconds())
	err = unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	n.call(fmt.Sprintf("setsockopt(%d, SOL_SOCKET, SO_RCVTIMEO, %v)", fd, readTimeout), "0", err)
	if err != nil {
		return os.NewSyscallError(fmt.Sprintf("setsockopt %d SO_RCVTIMEO", fd), err)
	}

	local, err := unix.Getsockname(fd)
	n.call(fmt.Sprintf("getsockname(%d)", fd), addrString(local), err)
	if err != nil {
		return os.NewSyscallError(fmt.Sprintf("getsockname %d", fd), err)
	}
	sa, err := unix.Getpeername(fd)
	peer := addrString(sa)
	n.call(fmt.Sprintf("getpeername(%d)", fd), peer, err)
	if err != nil {
		return os.NewSyscallError(fmt.Sprintf("getpeername %d", fd), err)
	}

	// Exercise 4. One line, one answer, until the client closes its end.
	buf := make([]byte, 1024)
	for {
		got, err := unix.Read(fd, buf)
		n.call(fmt.Sprintf("read(%d, %q, %d)", fd, buf[:max(got, 0)], len(buf)), strconv.Itoa(got), err)
		if err != nil || got == 0 { // 0 is end of file: the client has no more to say
			return os.NewSyscallError("read "+peer, err)
		}
		line := strings.TrimRight(string(buf[:got]), "\r\n")
		reply := []byte(fmt.Sprintf("hi %s, you said %q\n", peer, line))
		sent, err := unix.Write(fd, reply)
		n.call(fmt.Sprintf("write(%d, %q, %d)", fd, reply, len(reply)), strconv.Itoa(sent), err)
		if err != nil {
			return os.NewSyscallError("write "+peer, err)
		}
	}
}

// readTimeout is how long serve waits for each line (exercise 2).
const readTimeout = 5 * time.Second

// endregion serve

// region wake
// wakeOnCancel shuts fd down when ctx ends. On Linux that wakes a call
// blocked on it: accept4 on a listening socket fails with EINVAL, read on a
// connected one returns 0. Call the function it returns before closing fd,
// so that shutdown can never hit a number the kernel has handed out again.
func wakeOnCancel(ctx context.Context, n narrator, fd int) (stop func()) {
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		select {
		case <-ctx.Done():
			// Hold the narrator across the call, so that the call this
			// wakes is narrated after the shutdown that woke it.
			n.mu.Lock()
			defer n.mu.Unlock()
			err := unix.Shutdown(fd, unix.SHUT_RDWR)
			n.print(fmt.Sprintf("shutdown(%d, SHUT_RDWR)", fd), "0", err)
		case <-done:
		}
	}()
	return func() { close(done); <-stopped }
}

// endregion wake

// region client
// runClient starts cfg.conns connections to cfg.addr at once: a non-blocking
// connect sends the SYN and returns without waiting for the handshake. Then
// it reports which handshakes the kernel completed, and waits for the rest.
func runClient(ctx context.Context, cfg config, n narrator, w io.Writer) (err error) {
	sa, err := sockaddr(cfg.addr)
	if err != nil {
		return err
	}
	domain := unix.AF_INET6
	if cfg.addr.Addr().Is4() {
		domain = unix.AF_INET
	}
	var fds []int
	defer func() {
		for _, fd := range fds {
			err = errors.Join(err, closeFD(n, fd))
		}
	}()
	for range cfg.conns {
		fd, err := newSocket(n, domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			return err
		}
		fds = append(fds, fd)
		err = unix.Connect(fd, sa)
		n.call(fmt.Sprintf("connect(%d, %s)", fd, cfg.addr), "0", err)
		if err != nil && err != unix.EINPROGRESS {
			return os.NewSyscallError("connect "+cfg.addr.String(), err)
		}
	}
	// On loopback a handshake takes microseconds: half a second is plenty
	// for every one the server's kernel is willing to complete now.
	waiting, err := handshakes(ctx, n, w, fds, cfg.addr, 500*time.Millisecond)
	if err != nil {
		return err
	}
	if waiting > 0 {
		fmt.Fprintf(w, "waiting up to %v for the other %d (Ctrl-C stops)\n", cfg.wait, waiting)
		if waiting, err = handshakes(ctx, n, w, fds, cfg.addr, cfg.wait); err != nil || waiting > 0 {
			return err
		}
	}
	if cfg.hold {
		fmt.Fprintln(w, "sending nothing until Ctrl-C")
		<-ctx.Done()
		return nil
	}
	return talk(ctx, n, w, fds, cfg.msg, cfg.lines)
}

// endregion client

// region talk
// talk sends msg as a line, lines times, on each connection in turn and
// prints each reply before it sends the next line. The sockets are
// non-blocking, so it polls until the reply has arrived: for as long as the
// server is busy with other clients.
func talk(ctx context.Context, n narrator, w io.Writer, fds []int, msg string, lines int) error {
	for _, fd := range fds {
		for range lines {
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
			if got == 0 { // end of file: the server hung up before it answered
				return fmt.Errorf("read %d: the server closed the connection", fd)
			}
			fmt.Fprint(w, string(buf[:got]))
		}
		// Exercise 4. Say we are done with this connection before the next:
		// the server answers lines until it reads end of file, and it will
		// not accept our next connection before that. SHUT_WR sends the
		// end of file and leaves the descriptor for the deferred close.
		err := unix.Shutdown(fd, unix.SHUT_WR)
		n.call(fmt.Sprintf("shutdown(%d, SHUT_WR)", fd), "0", err)
		if err != nil {
			return os.NewSyscallError("shutdown", err)
		}
	}
	return nil
}

// endregion talk

// region handshakes
// handshakes waits until no connection in fds is in SYN_SENT any more, or
// for limit, or until ctx ends; then it asks the kernel for each one's TCP
// state and reports how many still wait for the server's SYN-ACK.
func handshakes(ctx context.Context, n narrator, w io.Writer, fds []int, addr netip.AddrPort, limit time.Duration) (int, error) {
	for deadline := time.Now().Add(limit); ctx.Err() == nil && time.Now().Before(deadline); {
		var pending []unix.PollFd
		for _, fd := range fds {
			if i, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO); err == nil && i.State == unix.BPF_TCP_SYN_SENT {
				pending = append(pending, unix.PollFd{Fd: int32(fd), Events: unix.POLLOUT})
			}
		}
		if len(pending) == 0 {
			break
		}
		// A socket becomes writable when its handshake ends. Wake every
		// 100 ms anyway, to notice the deadline and Ctrl-C.
		unix.Poll(pending, 100)
	}
	waiting := 0
	for _, fd := range fds {
		info, err := tcpInfo(n, fd, func(*unix.TCPInfo) string { return "" })
		if err != nil {
			return 0, err
		}
		switch info.State {
		case unix.BPF_TCP_SYN_SENT:
			waiting++
		case unix.BPF_TCP_CLOSE: // the handshake failed; SO_ERROR says why
			soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
			n.call(fmt.Sprintf("getsockopt(%d, SOL_SOCKET, SO_ERROR)", fd), unix.ErrnoName(unix.Errno(soerr)), err)
			return 0, os.NewSyscallError("connect "+addr.String(), unix.Errno(soerr))
		}
	}
	fmt.Fprintf(w, "%d of %d connected", len(fds)-waiting, len(fds))
	if waiting > 0 {
		fmt.Fprintf(w, ", %d waiting in SYN_SENT", waiting)
	}
	fmt.Fprintln(w)
	return waiting, nil
}

// endregion handshakes

// region sockaddr
// sockaddr converts an address to the form bind takes: the C structs
// sockaddr_in and sockaddr_in6, which x/sys calls SockaddrInet4 and
// SockaddrInet6. Port is a plain int here; x/sys writes it into the struct
// in network byte order (big-endian), as the kernel expects.
func sockaddr(a netip.AddrPort) (unix.Sockaddr, error) {
	ip := a.Addr()
	if ip.Is4() {
		return &unix.SockaddrInet4{Port: int(a.Port()), Addr: ip.As4()}, nil
	}
	if ip.Zone() != "" {
		return nil, fmt.Errorf("bind %s: this program takes no IPv6 zone", a)
	}
	return &unix.SockaddrInet6{Port: int(a.Port()), Addr: ip.As16()}, nil
}

// endregion sockaddr

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

// addrString shows a socket address the way this book writes them.
func addrString(sa unix.Sockaddr) string {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr), uint16(a.Port)).String()
	}
	return "?" // no address, as when a call failed
}

// narrator prints each system call the way strace shows it, unless quiet.
type narrator struct {
	w     io.Writer
	quiet bool
	mu    *sync.Mutex // one line at a time, from any goroutine
}

// call prints "call = result", or for a failure "call = -1 ENAME (Message)".
func (n narrator) call(call, result string, err error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.print(call, result, err)
}

func (n narrator) print(call, result string, err error) {
	if n.quiet {
		return
	}
	var errno unix.Errno
	if errors.As(err, &errno) {
		msg := errno.Error()
		result = fmt.Sprintf("-1 %s (%s%s)", unix.ErrnoName(errno), strings.ToUpper(msg[:1]), msg[1:])
	}
	fmt.Fprintf(n.w, "%s = %s\n", call, result)
}

func domainName(d int) string {
	return lookup(d, map[int]string{unix.AF_UNIX: "AF_UNIX", unix.AF_INET: "AF_INET", unix.AF_INET6: "AF_INET6"})
}

func typeName(t int) string {
	if t&unix.SOCK_NONBLOCK != 0 {
		return typeName(t&^unix.SOCK_NONBLOCK) + "|SOCK_NONBLOCK"
	}
	return lookup(t, map[int]string{unix.SOCK_STREAM: "SOCK_STREAM", unix.SOCK_DGRAM: "SOCK_DGRAM"})
}

// stateName names a TCP state as the kernel's TCP_INFO reports it.
func stateName(s uint8) string {
	return lookup(int(s), map[int]string{
		unix.BPF_TCP_ESTABLISHED: "TCP_ESTABLISHED", unix.BPF_TCP_SYN_SENT: "TCP_SYN_SENT",
		unix.BPF_TCP_CLOSE: "TCP_CLOSE", unix.BPF_TCP_CLOSE_WAIT: "TCP_CLOSE_WAIT", unix.BPF_TCP_LISTEN: "TCP_LISTEN",
	})
}

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
