//go:build linux

// Command 06-connect is chapter 5's iterative server with a client that
// connects properly: socket, then connect, which has the kernel pick a local
// port and do the TCP handshake. Both ends print the connection as they see
// it: protocol, local address, remote address. With -timeout the client
// connects without blocking and waits for the handshake itself, for at most
// that long, instead of the kernel's two minutes.
//
// This is the reference solution to the chapter's exercises: the chapter's
// program, changed as little as possible so that the client
//
//  1. binds its socket to -from ADDR before connect, when it is given;
//  2. with -retry N, tries again on ECONNREFUSED, with a new socket, a second
//     later, up to N times;
//  3. takes a comma-separated list in -addr and tries each address in turn,
//     stopping at the first that connects;
//  4. while it waits for a handshake with -timeout, prints the socket's
//     TCP_INFO every second: the SYNs sent again, and the retransmission
//     timeout.
//
// Try the exercises before you read it. Run it as the chapter's program:
//
//	go run ./code/06-connect/solution                      # serve clients one at a time
//	go run ./code/06-connect/solution -client              # connect, send "hello", print the reply
//	go run ./code/06-connect/solution -client -timeout 1s  # give up after a second
//	go run ./code/06-connect/solution -client -hold        # connect, say nothing until Ctrl-C
//	go run ./code/06-connect/solution -q                   # without the narration
//	go run ./code/06-connect/solution -client -from 127.0.0.1:50000
//	go run ./code/06-connect/solution -client -retry 10
//	go run ./code/06-connect/solution -client -timeout 1s -addr 127.0.0.1:8080,127.0.0.1:8081
//
// and grade it with go run ./tools/grade -program code/06-connect/solution 06.
//
// It needs Linux: it uses accept4, and SOCK_CLOEXEC and SOCK_NONBLOCK.
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
	addrs     addrList       // -addr: the server's address, or the client's list of them
	quiet     bool           // do not narrate system calls
	reuseaddr bool           // set SO_REUSEADDR before bind
	backlog   int            // the backlog argument of listen

	client  bool           // be the client: connect to addr
	timeout time.Duration  // if not 0, how long the client waits for connect
	msg     string         // the line the client sends
	hold    bool           // the client sends nothing and holds on until Ctrl-C
	from    netip.AddrPort // if valid, the client binds to it before connect
	retry   int            // how many times the client tries again when refused
}

// addrList is the -addr flag: one address, or for the client a
// comma-separated list of them, tried in turn.
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

func main() {
	var cfg config
	cfg.addrs = addrList{netip.MustParseAddrPort("127.0.0.1:8080")}
	flag.Var(&cfg.addrs, "addr", "`address` to listen on (or, with -client, to connect to: a comma-separated list is tried in turn), IP:PORT or [IPv6]:PORT; port 0 lets the kernel choose")
	flag.BoolVar(&cfg.quiet, "q", false, "quiet: do not narrate system calls")
	// On by default, as Go's net package sets it on every listening socket.
	flag.BoolVar(&cfg.reuseaddr, "reuseaddr", true, "set SO_REUSEADDR before bind")
	// Small on purpose, so that a handful of clients fills the queue.
	flag.IntVar(&cfg.backlog, "backlog", 2, "the `backlog` argument of listen")
	flag.BoolVar(&cfg.client, "client", false, "be the client: connect to -addr")
	flag.DurationVar(&cfg.timeout, "timeout", 0, "client: give up connecting after this long (0: when the kernel does)")
	flag.StringVar(&cfg.msg, "msg", "hello", "client: the line to send")
	flag.BoolVar(&cfg.hold, "hold", false, "client: connect, then send nothing until Ctrl-C")
	flag.TextVar(&cfg.from, "from", netip.AddrPort{}, "client: bind to this `address` before connect (port 0: the kernel chooses)")
	flag.IntVar(&cfg.retry, "retry", 0, "client: when refused, try again a second later, up to `N` times")
	flag.Parse()
	cfg.addr = cfg.addrs[0]
	if !cfg.client && len(cfg.addrs) > 1 {
		fmt.Fprintln(os.Stderr, "-addr: a server listens on one address")
		os.Exit(2)
	}
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
	for {
		cfd, err := acceptConn(n, fd)
		if err != nil {
			if ctx.Err() != nil {
				return nil // shutdown woke accept4: we are stopping, not failing
			}
			return err
		}
		// One client's failure is not the server's: report it and go on.
		if err := serve(ctx, n, w, cfd); err != nil {
			fmt.Fprintln(w, err)
		}
	}
	// endregion loop
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
// serve answers one client: it asks for both ends' addresses, reads one
// line, writes one line, and closes the connection. One read is enough for
// a short line on loopback; chapter 7 reads and writes properly.
func serve(ctx context.Context, n narrator, w io.Writer, fd int) (err error) {
	defer func() { err = errors.Join(err, closeFD(n, fd)) }()
	stop := wakeOnCancel(ctx, n, fd) // a silent client must not hold up Ctrl-C
	defer stop()

	peer, err := showConn(n, w, fd)
	if err != nil {
		return err
	}

	buf := make([]byte, 1024)
	got, err := unix.Read(fd, buf)
	n.call(fmt.Sprintf("read(%d, %q, %d)", fd, buf[:max(got, 0)], len(buf)), strconv.Itoa(got), err)
	if err != nil || got == 0 { // 0 is end of file: the client left without a word
		return os.NewSyscallError("read "+peer, err)
	}
	line := strings.TrimRight(string(buf[:got]), "\r\n")
	reply := []byte(fmt.Sprintf("hi %s, you said %q\n", peer, line))
	sent, err := unix.Write(fd, reply)
	n.call(fmt.Sprintf("write(%d, %q, %d)", fd, reply, len(reply)), strconv.Itoa(sent), err)
	return os.NewSyscallError("write "+peer, err)
}

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

// region dial
// dial makes a socket and connects it to addr, from the address from if it
// is valid. With timeout 0 it is the plain, blocking connect, which returns
// when the handshake has succeeded or failed: after about two minutes if
// nobody answers. Otherwise the socket is non-blocking, and waitConnected
// waits for the handshake, at most timeout.
func dial(ctx context.Context, n narrator, w io.Writer, addr, from netip.AddrPort, timeout time.Duration) (fd int, err error) {
	sa, err := sockaddr(addr)
	if err != nil {
		return -1, err
	}
	domain := unix.AF_INET6
	if addr.Addr().Is4() {
		domain = unix.AF_INET
	}
	typ := unix.SOCK_STREAM
	if timeout > 0 {
		typ |= unix.SOCK_NONBLOCK
	}
	if fd, err = newSocket(n, domain, typ, 0); err != nil {
		return -1, err
	}
	defer func() {
		if err != nil {
			err, fd = errors.Join(err, closeFD(n, fd)), -1
		}
	}()
	stop := wakeOnCancel(ctx, n, fd) // Ctrl-C must not wait for the kernel's timeout
	defer stop()

	// Without -from, no bind: connect gives the socket a local address,
	// with a port the kernel picks, and then sends the SYN. With it
	// (exercise 1), bind chooses the local address first, as a server's
	// does, and connect keeps it. Port 0 has bind pick the port, and bind
	// picks ports of the other parity than connect does, so that the two
	// kinds of user do not compete for the same half of the range.
	if from.IsValid() {
		local, err := sockaddr(from)
		if err != nil {
			return fd, err
		}
		err = unix.Bind(fd, local)
		n.call(fmt.Sprintf("bind(%d, %s)", fd, from), "0", err)
		if err != nil {
			return fd, os.NewSyscallError("bind "+from.String(), err)
		}
	}
	err = unix.Connect(fd, sa)
	n.call(fmt.Sprintf("connect(%d, %s)", fd, addr), "0", err)
	if err == unix.EINPROGRESS {
		return fd, waitConnected(n, w, fd, addr, timeout)
	}
	return fd, os.NewSyscallError("connect "+addr.String(), err)
}

// endregion dial

// region wait
// waitConnected waits for the handshake that a non-blocking connect started.
// The socket becomes writable when the handshake ends, whether it succeeded
// or failed; SO_ERROR says which, as connect's own result would have.
func waitConnected(n narrator, w io.Writer, fd int, addr netip.AddrPort, timeout time.Duration) error {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLOUT}}
	deadline := time.Now().Add(timeout)
	for {
		// At most a second at a time, so as to report every second how the
		// handshake is going (exercise 4).
		ms := pollMillis(deadline)
		ready, err := unix.Poll(pfd, ms)
		for err == unix.EINTR { // a signal is not an answer: wait out the rest
			ms = pollMillis(deadline)
			ready, err = unix.Poll(pfd, ms)
		}
		result := fmt.Sprintf("%d ([{fd=%d, revents=%s}])", ready, fd, pollEvents(pfd[0].Revents))
		if ready == 0 {
			result = "0 (Timeout)"
		}
		n.call(fmt.Sprintf("poll([{fd=%d, events=POLLOUT}], 1, %d)", fd, ms), result, err)
		if err != nil {
			return os.NewSyscallError("poll", err)
		}
		if ready > 0 {
			break
		}
		if err := showSYNs(n, w, fd); err != nil {
			return err
		}
		if time.Until(deadline) <= 0 {
			// The kernel would go on trying; this program gives up.
			// ETIMEDOUT is what a blocking connect reports when the
			// kernel gives up.
			return fmt.Errorf("connect %s: no answer within %v: %w", addr, timeout, unix.ETIMEDOUT)
		}
	}
	soerr, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ERROR)
	result := "0"
	if soerr != 0 {
		result = fmt.Sprintf("%d (%s)", soerr, unix.ErrnoName(unix.Errno(soerr)))
	}
	n.call(fmt.Sprintf("getsockopt(%d, SOL_SOCKET, SO_ERROR)", fd), result, err)
	if err != nil {
		return os.NewSyscallError("getsockopt SO_ERROR", err)
	}
	if soerr != 0 {
		return os.NewSyscallError("connect "+addr.String(), unix.Errno(soerr))
	}
	return nil
}

// endregion wait

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

// region showConn
// showConn asks the kernel for both ends of fd's connection and prints the
// five values that name it: protocol, local IP and port, remote IP and port.
// The other end prints the same five, with local and remote swapped.
func showConn(n narrator, w io.Writer, fd int) (peer string, err error) {
	sa, err := unix.Getsockname(fd)
	local := addrString(sa)
	n.call(fmt.Sprintf("getsockname(%d)", fd), local, err)
	if err != nil {
		return "", os.NewSyscallError(fmt.Sprintf("getsockname %d", fd), err)
	}
	sa, err = unix.Getpeername(fd)
	peer = addrString(sa)
	n.call(fmt.Sprintf("getpeername(%d)", fd), peer, err)
	if err != nil {
		return "", os.NewSyscallError(fmt.Sprintf("getpeername %d", fd), err)
	}
	fmt.Fprintf(w, "connection: TCP, local %s, remote %s\n", local, peer)
	return peer, nil
}

// endregion showConn

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
