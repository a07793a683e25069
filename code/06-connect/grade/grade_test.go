//go:build grade && linux

// The graders of chapter 6's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names), mostly as a
// client, and sets up with its own sockets on loopback what that client
// meets: a port where nothing listens, a server that starts late, a server
// whose accept queue is full so that the kernel drops every SYN. Then it
// decides by events: what the program printed and in what order, what
// reached the grader's sockets, and what the kernel says of the client's
// socket in /proc/net/tcp. So it grades any copy of the program, whatever
// its code. Run them with
//
//	go run ./tools/grade 06
//	go run ./tools/grade -program DIR 06
//
// The graders read descriptor numbers from the program's narration
// (connect(3, ADDR) = ...) rather than assume them. Every wait is bounded,
// by waitLimit or by booktest's own limits.
package grade

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
	"golang.org/x/sys/unix"
)

// waitLimit bounds every wait of the graders' own. On loopback the
// program's answers take milliseconds; the slowest thing a grader waits for
// is a retry, a second after the last.
const waitLimit = 15 * time.Second

// connRE matches the line each end prints about its connection.
var connRE = regexp.MustCompile(`(?m)^connection: TCP, local (\S+), remote (\S+)$`)

// replyRE matches the reply the client prints as a plain line, not the
// narration's quoted copy of it.
var replyRE = regexp.MustCompile(`(?m)^hi \S+, you said "hello"$`)

// Exercise 1: -from ADDR binds the client's socket before connect. Both
// ends show that port; a port another client holds cannot be bound again;
// and with port 0, bind chooses the port, which has bind's parity, not
// connect's.
func TestExercise1ChooseYourPort(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server")

	from := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	c := runClient(t, s, "client", "-from", from, "-addr", srv.Addr())
	if local, _ := connection(t, c); local != from {
		t.Fatalf("with -from %s the client's connection line shows local %s, want %s: bind the socket to -from before connect; its output:\n%s",
			from, local, from, c.Output())
	}
	seen := "connection: TCP, local " + srv.Addr() + ", remote " + from + "\n"
	if !waitUntil(func() bool { return strings.Contains(srv.Output(), seen) }) {
		t.Fatalf("the server did not print %q: its end of the connection should show the client's port too; its output:\n%s",
			strings.TrimSuffix(seen, "\n"), output(srv))
	}

	// While one client holds a port, a second client cannot bind it.
	from = fmt.Sprintf("127.0.0.1:%d", freePort(t))
	holder := s.Spawn("client 1", "-client", "-hold", "-from", from, "-addr", srv.Addr())
	holder.WaitFor("sending nothing until Ctrl-C")
	second := s.Run("client 2", "-client", "-from", from, "-addr", srv.Addr())
	switch out := second.Output(); {
	case connRE.MatchString(out) || second.ExitCode() == 0:
		t.Fatalf("while another client held %s, a second client with -from %s exited with status %d, want it to fail in bind with EADDRINUSE and exit with status 1; its output:\n%s",
			from, from, second.ExitCode(), out)
	case !bindInUse(out):
		t.Fatalf("while another client held %s, a second client with -from %s exited with status %d, but not because bind failed with EADDRINUSE: want the narration line %q and the error %q; its output:\n%s",
			from, from, second.ExitCode(), "bind(3, "+from+") = -1 EADDRINUSE (Address already in use)", "bind "+from+": address already in use", out)
	}
	holder.Interrupt()

	// Port 0: the kernel chooses in bind, which prefers the ports connect
	// does not.
	c = runClient(t, s, "client 3", "-from", "127.0.0.1:0", "-addr", srv.Addr())
	local, _ := connection(t, c)
	ap, err := netip.ParseAddrPort(local)
	if err != nil || ap.Port() == 0 {
		t.Fatalf("with -from 127.0.0.1:0 the client's connection line shows local %q, want 127.0.0.1 and the port the kernel chose; its output:\n%s", local, c.Output())
	}
	port, lo := int(ap.Port()), portRangeLow(t)
	if port%2 == lo%2 {
		t.Fatalf("with -from 127.0.0.1:0 the client's port is %d, an %s port: that is connect's choice (ports of the parity of %d, where ip_local_port_range starts), want bind's (%s ports): bind the socket even when -from's port is 0, and connect keeps the port bind chose; its output:\n%s",
			port, parity(port), lo, parity(lo+1), c.Output())
	}
}

// Exercise 2: -retry N tries again on ECONNREFUSED, a second later, with
// a new socket each time, up to N more times.
func TestExercise2Retry(t *testing.T) {
	s := booktest.NewGrader(t)
	// Ports with a socket bound to them and not listening: connecting is
	// refused, and no other program can listen there in the meantime.
	later, addr := boundSocket(t)
	_, never := boundSocket(t)

	c := s.Spawn("client", "-client", "-retry", "10", "-addr", addr)

	// While that client tries, another runs out of tries: with -retry 1,
	// the first attempt and one more, then the refusal is its error.
	limited := s.Run("client 2", "-client", "-retry", "1", "-addr", never)
	noFlag(t, limited, "-retry 1 -addr "+never)
	if got := len(attempts(limited.Output(), never)); got == 0 {
		t.Fatalf("with -retry 1 -addr %s and nothing listening, the client narrated no connect attempt (no line %q); its output:\n%s",
			never, "connect(3, "+never+") = -1 ECONNREFUSED (Connection refused)", limited.Output())
	} else if got != 2 {
		t.Errorf("with -retry 1 and nothing listening, the client made %s to %s, want 2: the first and one more; its output:\n%s",
			count(got, "connect attempt", "connect attempts"), never, limited.Output())
	}
	if limited.ExitCode() == 0 {
		t.Errorf("with -retry 1 and nothing listening, the client exited with status 0, want 1: once it has run out of tries, the refusal is its error; its output:\n%s", limited.Output())
	}

	// After two refusals and a second more, the server starts, and the
	// next try connects. The second is for a client that tries again at
	// once: its eleven tries take milliseconds, but on a loaded machine it
	// can be descheduled between two of them, and without the pause it
	// was once still trying when the server started (1 grading run in
	// about 50 under CI's load).
	c.WaitForN(addr+") = -1 ECONNREFUSED", 2)
	time.Sleep(time.Second)
	result := serveOnce(t, later)
	c.Wait()
	got := result()
	out := c.Output()
	tries := attempts(out, addr)
	if c.ExitCode() != 0 {
		if got.err != nil && allRefused(tries) {
			t.Fatalf("with -retry 10 the client gave up after %s, all refused, before the server started listening: wait a second before each new try; its output:\n%s",
				count(len(tries), "attempt", "attempts"), out)
		}
		t.Fatalf("with -retry 10 the client exited with status %d, want 0 once the server listened; its output:\n%s", c.ExitCode(), out)
	}
	if got.err != nil {
		t.Fatalf("the server that started after two refusals did not get the client's line (%v); the client's output:\n%s", got.err, out)
	}
	if got.line != "hello" {
		t.Fatalf("the server that started after two refusals got %q from the client, want %q", got.line, "hello")
	}
	if !replyRE.MatchString(out) {
		t.Errorf("the client did not print the server's reply as a line of its own; its output:\n%s", out)
	}
	for i, a := range tries {
		switch {
		case !a.socket:
			t.Errorf("connect attempt %d used the socket of the attempt before it (descriptor %s): after a failed connect, close the socket and make a new one; the client's output:\n%s", i+1, a.fd, out)
		case i < len(tries)-1 && !a.closed:
			t.Errorf("the socket of refused attempt %d (descriptor %s) was not closed before the next attempt: close it, or every retry leaks a descriptor; the client's output:\n%s", i+1, a.fd, out)
		}
	}
}

// Exercise 3: -addr takes a list, tried in turn with -timeout; the client
// stops at the first address that connects.
func TestExercise3EveryAddress(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server")
	full := fullListener(t)

	list := full + "," + srv.Addr()
	c := s.Run("client", "-client", "-timeout", "1s", "-addr", list)
	out := c.Output()
	if m := regexp.MustCompile(`invalid value .* for flag -addr.*`).FindString(out); m != "" {
		t.Fatalf("the client does not take a list in -addr yet: -addr %s printed %q", list, m)
	}
	noFlag(t, c, "-timeout 1s -addr "+list)
	if code := c.ExitCode(); code != 0 {
		t.Fatalf("with -timeout 1s -addr %s, where the first server never answers (its queue is full), the client exited with status %d, want 0: after the timeout, try the next address; its output:\n%s",
			list, code, out)
	}
	if _, remote := connection(t, c); remote != srv.Addr() {
		t.Fatalf("with -addr %s the client connected to %s, want %s, the second address; its output:\n%s", list, remote, srv.Addr(), out)
	}
	if !replyRE.MatchString(out) {
		t.Errorf("the client did not print the server's reply as a line of its own; its output:\n%s", out)
	}
	first, second := connectAt(out, full), connectAt(out, srv.Addr())
	switch {
	case first < 0 || first > second:
		t.Errorf("with -addr %s the client did not try %s first (no connect(N, %s) before connect(N, %s)): try the addresses in the order given; its output:\n%s",
			list, full, full, srv.Addr(), out)
	case !strings.Contains(out[first:second], "(Timeout)") && !strings.Contains(out[first:second], "timed out"):
		t.Errorf("the client gave up on %s, whose queue is full, without waiting out -timeout 1s (no poll(...) = 0 (Timeout) between its connect and the next); its output:\n%s", full, out)
	}

	// The first address that connects is the last one tried. The second
	// is a server too, so that a client that goes on to it gets an
	// answer, and ends.
	watchFile, watch := boundSocket(t)
	result := serveOnce(t, watchFile)
	list = srv.Addr() + "," + watch
	c = runClient(t, s, "client 2", "-timeout", "1s", "-addr", list)
	watched := result()
	if _, remote := connection(t, c); remote != srv.Addr() {
		t.Fatalf("with -addr %s the client connected to %s, want %s, the first: stop at the first address that connects; its output:\n%s", list, remote, srv.Addr(), c.Output())
	}
	if connectAt(c.Output(), watch) >= 0 || watched.err == nil {
		t.Errorf("with -addr %s the client connected to %s and then tried %s too: stop at the first address that connects; its output:\n%s",
			list, srv.Addr(), watch, c.Output())
	}

	// Each address has its own family: nothing listens on ::1 at the
	// server's port, so that one is refused and the next connects.
	if !hasIPv6Loopback() {
		t.Log("this machine has no ::1: the IPv6 part of the check is skipped")
		return
	}
	v6 := netip.AddrPortFrom(netip.IPv6Loopback(), netip.MustParseAddrPort(srv.Addr()).Port()).String()
	list = v6 + "," + srv.Addr()
	c = runClient(t, s, "client 3", "-timeout", "1s", "-addr", list)
	if _, remote := connection(t, c); remote != srv.Addr() {
		t.Fatalf("with -addr %s the client connected to %s, want %s; its output:\n%s", list, remote, srv.Addr(), c.Output())
	}
	if at := connectAt(c.Output(), v6); at < 0 || at > connectAt(c.Output(), srv.Addr()) {
		t.Errorf("with -addr %s the client did not try %s first: give each address a socket of its own family (AF_INET6 for ::1); its output:\n%s", list, v6, c.Output())
	}
}

// Exercise 4: while the client waits for a handshake that does not come,
// it prints TCP_INFO's tcpi_total_retrans and tcpi_rto every second. The
// grader watches the kernel's own count of the SYNs sent again, in
// /proc/net/tcp, and checks the client's lines against it.
func TestExercise4CountTheSYNs(t *testing.T) {
	s := booktest.NewGrader(t)
	full := fullListener(t)
	port := netip.MustParseAddrPort(full).Port()

	// Four seconds: on kernels that start with one-second gaps, the SYN
	// is sent again after 1, 2 and 3 s, and a line printed after the
	// third must count at least two of them (tcpi_retrans, the segments
	// in flight, stays at 1).
	c := s.Spawn("client", "-client", "-timeout", "4s", "-addr", full)
	// A sample is how much the client had printed, then how many times
	// the kernel had sent its SYN again (the most seen: the socket's line
	// is gone once the client closes it).
	type sample struct{ at, retrans int }
	stop, result := make(chan struct{}), make(chan []sample)
	go func() {
		var samples []sample
		for most := 0; ; time.Sleep(10 * time.Millisecond) {
			select {
			case <-stop:
				result <- samples
				return
			default:
			}
			at := len(c.Output())
			most = max(most, synRetrans(port))
			if n := len(samples); n == 0 || samples[n-1] != (sample{at, most}) {
				samples = append(samples, sample{at, most})
			}
		}
	}()
	c.Wait()
	close(stop)
	samples := <-result

	out := c.Output()
	example := "TCP_INFO: total_retrans 1, rto 1s"
	lines := tcpInfoRE.FindAllStringSubmatchIndex(out, -1)
	if len(lines) == 0 {
		t.Fatalf("with -timeout 4s and a server that never answers (its queue is full), the client printed no TCP_INFO line while it waited, want one a second such as %q; its output:\n%s", example, out)
	}
	most := samples[len(samples)-1].retrans
	if most == 0 {
		t.Fatalf("the kernel never sent the client's SYN again while it waited (no socket in SYN_SENT to %s with a retransmission, in /proc/net/tcp): the client should wait for -timeout 4s; its output:\n%s", full, out)
	}
	// When the kernel's count first reached k, the client had printed
	// this much.
	reached := func(k int) int {
		for _, sm := range samples {
			if sm.retrans >= k {
				return sm.at
			}
		}
		return len(out)
	}
	prev, prevN := "", 0
	for _, m := range lines {
		text := out[m[0]:m[1]]
		n, _ := strconv.Atoi(out[m[2]:m[3]])
		// A SYN's retransmission timeout starts at a second and at most
		// doubles, up to the kernel's limit of 120 s; tcpi_rto is in
		// microseconds.
		if rto, err := time.ParseDuration(out[m[4]:m[5]]); err != nil || rto < time.Second || rto > 120*time.Second {
			t.Fatalf("the client printed %q: want the rto as a duration between 1s and 2m0s, such as 1s (tcpi_rto is in microseconds); its output:\n%s", text, out)
		}
		// The line was printed before the grader's next look at the
		// kernel, and the count only grows: it cannot be more than that,
		// give or take the one retransmission under way. (/proc/net/tcp
		// shows icsk_retransmits, which the kernel counts a moment after
		// tcpi_total_retrans; on a loaded machine the grader has seen
		// the one without the other.)
		for _, sm := range samples {
			if sm.at >= m[1] && n > sm.retrans+1 {
				t.Fatalf("the client printed %q when the kernel had sent its SYN again only %s: print tcpi_total_retrans from getsockopt(TCP_INFO); its output:\n%s", text, count(sm.retrans, "time", "times"), out)
			}
			if sm.at >= m[1] {
				break
			}
		}
		// Once the kernel has sent it k times, a line says at least k-1:
		// one printed just before the kth may still be on its way
		// through the pipe, but the k-1th came a second or more earlier.
		for k := 2; k <= most; k++ {
			if m[0] >= reached(k) && n < k-1 {
				t.Fatalf("the client printed %q after the kernel had sent its SYN again %d times: print tcpi_total_retrans from a new getsockopt(TCP_INFO) every second; its output:\n%s", text, k, out)
			}
		}
		if prev != "" && n < prevN {
			t.Fatalf("the client printed %q, then %q: tcpi_total_retrans never goes down; its output:\n%s", prev, text, out)
		}
		prev, prevN = text, n
	}
	// And some line after the first SYN sent again says so.
	if last := lines[len(lines)-1]; last[0] < reached(1) || out[last[2]:last[3]] == "0" {
		t.Fatalf("the kernel sent the client's SYN again, but no TCP_INFO line the client printed after that says total_retrans 1 or more: print one every second until the handshake ends or -timeout passes, each from a new getsockopt(TCP_INFO); its output:\n%s", out)
	}
}

// tcpInfoRE matches the line exercise 4 asks for: total_retrans, and rto
// as a Go duration.
var tcpInfoRE = regexp.MustCompile(`(?m)^TCP_INFO: total_retrans (\d+), rto (\S+)$`)

// runClient runs the program as a client with args to its end, and fails
// the test unless it knew every flag and exited with status 0.
func runClient(t *testing.T, s *booktest.Session, pane string, args ...string) *booktest.Proc {
	t.Helper()
	c := s.Run(pane, append([]string{"-client"}, args...)...)
	with := strings.Join(args, " ")
	noFlag(t, c, with)
	if code := c.ExitCode(); code != 0 {
		t.Fatalf("with -client %s the client exited with status %d, want 0; its output:\n%s", with, code, c.Output())
	}
	return c
}

// noFlag fails the test if the program did not know one of its flags.
func noFlag(t *testing.T, p *booktest.Proc, with string) {
	t.Helper()
	if m := regexp.MustCompile(`flag provided but not defined: (\S+)`).FindStringSubmatch(p.Output()); m != nil {
		t.Fatalf("the program has no %s flag yet: with %s it printed %q", m[1], with, m[0])
	}
}

// connection returns the local and remote addresses of the client's
// connection line, or fails the test.
func connection(t *testing.T, c *booktest.Proc) (local, remote string) {
	t.Helper()
	m := connRE.FindStringSubmatch(c.Output())
	if m == nil {
		t.Fatalf("the client printed no line %q; its output:\n%s", "connection: TCP, local ADDR, remote ADDR", c.Output())
	}
	return m[1], m[2]
}

// bindInUse reports whether out says that bind failed with EADDRINUSE.
func bindInUse(out string) bool {
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "bind") && (strings.Contains(line, "EADDRINUSE") || strings.Contains(line, "address already in use")) {
			return true
		}
	}
	return false
}

// An attempt is one connect to an address, as the client's narration
// shows it.
type attempt struct {
	fd     string // its descriptor
	result string // what connect returned
	socket bool   // a socket(...) call came after the previous attempt
	closed bool   // its descriptor was closed before the next socket(...)
}

var (
	socketRE = regexp.MustCompile(`^socket\(.*\) = \d+$`)
	closeRE  = regexp.MustCompile(`^close\((\d+)\) = 0$`)
)

// attempts reads the client's connects to addr from its narration.
func attempts(out, addr string) []attempt {
	connectRE := regexp.MustCompile(`^connect\((\d+), ` + regexp.QuoteMeta(addr) + `\) = (.*)$`)
	var list []attempt
	socket := false
	for _, line := range strings.Split(out, "\n") {
		if socketRE.MatchString(line) {
			socket = true
		} else if m := connectRE.FindStringSubmatch(line); m != nil {
			list = append(list, attempt{fd: m[1], result: m[2], socket: socket})
			socket = false
		} else if m := closeRE.FindStringSubmatch(line); m != nil && len(list) > 0 && !socket && list[len(list)-1].fd == m[1] {
			list[len(list)-1].closed = true
		}
	}
	return list
}

func allRefused(list []attempt) bool {
	for _, a := range list {
		if !strings.Contains(a.result, "ECONNREFUSED") {
			return false
		}
	}
	return true
}

// connectAt is where out narrates the first connect to addr, or -1.
func connectAt(out, addr string) int {
	m := regexp.MustCompile(`(?m)^connect\(\d+, ` + regexp.QuoteMeta(addr) + `\) = `).FindStringIndex(out)
	if m == nil {
		return -1
	}
	return m[0]
}

// served is what serveOnce's client sent, or why it sent nothing.
type served struct {
	line string
	err  error
}

// serveOnce makes the bound socket f listen and, in the background,
// answers one client's line as the chapter's server would. Call the
// function it returns once the client has ended: it stops listening, so as
// not to wait for a client that gave up, and returns what was served.
func serveOnce(t *testing.T, f *os.File) (result func() served) {
	t.Helper()
	if err := unix.Listen(int(f.Fd()), 5); err != nil {
		t.Fatalf("listen: %v", err)
	}
	ln, err := net.FileListener(f)
	if err != nil {
		t.Fatalf("listener: %v", err)
	}
	t.Cleanup(func() { ln.Close() })
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(waitLimit))
	ch := make(chan served, 1)
	go func() {
		c, err := ln.Accept()
		ln.Close() // one client only; and no other can queue for ever
		if err != nil {
			ch <- served{err: fmt.Errorf("nothing connected")}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(waitLimit))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			ch <- served{err: fmt.Errorf("no line within %v: %v", waitLimit, err)}
			return
		}
		line = strings.TrimSuffix(line, "\n")
		fmt.Fprintf(c, "hi %s, you said %q\n", c.RemoteAddr(), line)
		ch <- served{line: line}
	}()
	return func() served {
		ln.Close()
		return <-ch
	}
}

// boundSocket is a TCP socket bound to 127.0.0.1, a port the kernel
// chooses, and not listening; and its address.
func boundSocket(t *testing.T) (*os.File, string) {
	t.Helper()
	fd := newSocket(t)
	f := os.NewFile(uintptr(fd), "socket")
	t.Cleanup(func() { f.Close() })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	return f, sockname(t, fd)
}

// listener is a socket listening on 127.0.0.1 with backlog, and its
// address.
func listener(t *testing.T, backlog int) (int, string) {
	t.Helper()
	fd := newSocket(t)
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("bind: %v", err)
	}
	if err := unix.Listen(fd, backlog); err != nil {
		t.Fatalf("listen: %v", err)
	}
	return fd, sockname(t, fd)
}

// fullListener listens with backlog 0 and fills its accept queue with one
// connection it never accepts: the kernel drops every later SYN, so a
// client connecting there waits in SYN_SENT until it gives up.
func fullListener(t *testing.T) string {
	t.Helper()
	_, addr := listener(t, 0)
	fd := newSocket(t)
	t.Cleanup(func() { unix.Close(fd) })
	ap := netip.MustParseAddrPort(addr)
	if err := unix.Connect(fd, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}); err != nil {
		t.Fatalf("connect %s: %v", addr, err)
	}
	if !waitUntil(func() bool { return acceptQueue(ap.Port()) == 1 }) {
		t.Fatalf("the accept queue of %s does not hold the grader's connection after %v", addr, waitLimit)
	}
	return addr
}

func newSocket(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("socket: %v", err)
	}
	return fd
}

func sockname(t *testing.T, fd int) string {
	t.Helper()
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("getsockname: %v", err)
	}
	a := sa.(*unix.SockaddrInet4)
	return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), uint16(a.Port)).String()
}

// freePort is a port on 127.0.0.1 that nothing uses: the kernel's choice
// for a socket bound to port 0, which is then closed.
func freePort(t *testing.T) int {
	t.Helper()
	f, addr := boundSocket(t)
	f.Close()
	return int(netip.MustParseAddrPort(addr).Port())
}

// portRangeLow is where net.ipv4.ip_local_port_range starts. connect
// prefers ports of its parity, and bind the others.
func portRangeLow(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Fatal(err)
	}
	var lo int
	if _, err := fmt.Sscan(string(b), &lo); err != nil {
		t.Fatalf("ip_local_port_range %q: %v", b, err)
	}
	return lo
}

func parity(n int) string {
	if n%2 == 0 {
		return "even"
	}
	return "odd"
}

func hasIPv6Loopback() bool {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// procTCP returns the fields of each socket's line of /proc/net/tcp:
// local and remote address as hex IP:PORT, state (0A listening, 02
// SYN_SENT), tx_queue:rx_queue, timer, retransmissions, ...
func procTCP() [][]string {
	b, err := os.ReadFile("/proc/net/tcp")
	if err != nil {
		return nil
	}
	var lines [][]string
	for _, l := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(l); len(f) > 6 {
			lines = append(lines, f)
		}
	}
	return lines
}

// acceptQueue is the length of the accept queue of the socket listening on
// 127.0.0.1:port (what ss shows as Recv-Q), or -1 if there is none.
func acceptQueue(port uint16) int {
	for _, f := range procTCP() {
		if f[3] == "0A" && f[1] == fmt.Sprintf("0100007F:%04X", port) {
			_, rx, _ := strings.Cut(f[4], ":")
			if n, err := strconv.ParseUint(rx, 16, 32); err == nil {
				return int(n)
			}
		}
	}
	return -1
}

// synRetrans is how many times the kernel has sent again the SYN of a
// socket connecting to 127.0.0.1:port, or 0 if there is none.
func synRetrans(port uint16) int {
	for _, f := range procTCP() {
		if f[3] == "02" && f[2] == fmt.Sprintf("0100007F:%04X", port) {
			if n, err := strconv.ParseUint(f[6], 16, 32); err == nil {
				return int(n)
			}
		}
	}
	return 0
}

// waitUntil polls cond until it holds or waitLimit has passed, and
// reports whether it held.
func waitUntil(cond func() bool) bool {
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
	}
}

// output is what p has printed, for a failure message: it waits (briefly)
// for lines still on their way through the pipe.
func output(p *booktest.Proc) string {
	out := p.Output()
	for i := 0; i < 20; i++ {
		time.Sleep(50 * time.Millisecond)
		now := p.Output()
		if now == out && i >= 3 {
			break
		}
		out = now
	}
	return out
}

// count says "1 attempt", "2 attempts".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
