//go:build grade && linux

// The graders of chapter 8's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names), plays a
// client with its own sockets on loopback where it needs to, and reads the
// kernel's own account of each connection in /proc/net/tcp (what ss -tan
// shows) and of the server's descriptors in /proc/PID/fd. So it grades any
// copy of the program, whatever its code. Run them with
//
//	go run ./tools/grade 08
//	go run ./tools/grade -program DIR 08
//
// They decide by events and their order: what arrived on a socket, what the
// program printed, the state the kernel lists for a connection once the
// event that settles it has happened. Every wait is bounded by waitLimit.
package grade

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// waitLimit bounds every wait of the graders' own. The program's answers,
// and the kernel's state changes on loopback, take milliseconds.
const waitLimit = 15 * time.Second

// probeLimit bounds the wait for the usage a program prints for -h.
const probeLimit = 5 * time.Second

// Exercise 1: with -n 3 the client does the whole exchange three times,
// each on a new connection, and each connection is left in TIME_WAIT on the
// client's side, the side that closed first, and on no side of the server.
func TestExercise1CountTheTimeWaits(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server")
	server := netip.MustParseAddrPort(srv.Addr())
	cl := s.Run("client", "-client", "-addr", srv.Addr(), "-n", "3", "-msg", "one", "-msg", "two")
	out := cl.Output()
	if f := undefinedFlag(out); f != "" {
		t.Fatalf("the client has no %s flag yet: -client -n 3 printed %q", f, "flag provided but not defined: "+f)
	}
	if code := cl.ExitCode(); code != 0 {
		t.Fatalf("with -n 3 the client exited with status %d, want 0; its output:\n%s", code, out)
	}
	for _, echo := range []string{`echoed "one\n"`, `echoed "two\n"`} {
		if got := strings.Count("\n"+out, "\n"+echo+"\n"); got != 3 {
			t.Fatalf("with -n 3 -msg one -msg two the client printed %s %s, want 3 (both lines echoed on each of 3 connections); its output:\n%s",
				echo, times(got), out)
		}
	}

	// The server saw three connections, from three client ports.
	conns := connections(output(srv), server)
	if len(conns) != 3 {
		t.Fatalf("the server accepted %s from the -n 3 client, want 3: one new connection for each exchange; its output:\n%s",
			count(len(conns), "connection", "connections"), output(srv))
	}
	seen := map[netip.AddrPort]bool{}
	for _, c := range conns {
		if seen[c] {
			t.Fatalf("the server accepted two connections from %s, want three different client ports: a new socket for each exchange; its output:\n%s", c, output(srv))
		}
		seen[c] = true
	}

	// The client closed each connection first: one TIME_WAIT per
	// connection on its side (ss -tan state time-wait '( dport = :PORT )'),
	// none on the server's (the same with sport).
	var clientSide, serverSide []string
	for _, c := range conns {
		if e, listed, ok := waitState(t, c, server, stTimeWait); !ok {
			clientSide = append(clientSide, fmt.Sprintf("%s -> %s is %s", c, server, describe(e, listed)))
		}
		if e, listed, ok := waitState(t, server, c, 0); !ok {
			serverSide = append(serverSide, fmt.Sprintf("%s -> %s is %s", server, c, describe(e, listed)))
		}
	}
	if len(clientSide) > 0 {
		t.Errorf("want each of the 3 connections in TIME_WAIT on the client's side, which closes first, with a FIN, after its last echo; %d are not:\n  %s\nclient output:\n%s",
			len(clientSide), strings.Join(clientSide, "\n  "), out)
	}
	if len(serverSide) > 0 {
		t.Errorf("want none of the 3 connections left on the server's side, which closes second, after end of file; %d are:\n  %s\nserver output:\n%s",
			len(serverSide), strings.Join(serverSide, "\n  "), output(srv))
	}
}

// Exercise 2: a -linger0 server ends every connection with an RST: a
// client that half-closes reads the whole sorted reply from a -sort server,
// then ECONNRESET instead of end of file, and no side keeps TIME_WAIT. The
// echo server (no -sort) does the same after its last echo.
func TestExercise2AnAbortiveServer(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := startServer(t, s, "-sort", "-linger0")
	const lines, sorted = "pear\napple\nfig\n", "apple\nfig\npear\n"
	// Two clients, one after the other: every connection, and the server
	// goes on accepting after the reset.
	for i := 1; i <= 2; i++ {
		c := dial(t, srv)
		send(t, c, lines)
		if err := c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatalf("client %d: shutdown(SHUT_WR): %v", i, err)
		}
		reply, err := io.ReadAll(c)
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			t.Fatalf("client %d sent %q and shut down its sending side; from the -sort -linger0 server it read %q, then nothing for %v, want the sorted reply, then ECONNRESET; server output:\n%s",
				i, lines, reply, waitLimit, output(srv))
		case string(reply) != sorted:
			t.Fatalf("client %d sent %q and shut down its sending side; from the -sort -linger0 server it read %q, then %s, want the whole sorted reply %q, then ECONNRESET; server output:\n%s",
				i, lines, reply, what(err), sorted, output(srv))
		case err == nil:
			t.Fatalf("client %d read the sorted reply, then end of file (the server's close sent a FIN), want ECONNRESET: with -linger0, set SO_LINGER {1, 0} on each connection just before serve closes it; server output:\n%s",
				i, output(srv))
		case !errors.Is(err, syscall.ECONNRESET):
			t.Fatalf("client %d read the sorted reply, then %v, want ECONNRESET; server output:\n%s", i, err, output(srv))
		}
		noTimeWait(t, c, srv)
	}

	// Without -sort: the echo, then the reset.
	srv = s.Start("server", "-linger0")
	c := dial(t, srv)
	send(t, c, "hello\n")
	echo := make([]byte, len("hello\n"))
	if _, err := io.ReadFull(c, echo); err != nil || string(echo) != "hello\n" {
		t.Fatalf("the -linger0 server echoed %q, then %s, want %q; its output:\n%s", echo, what(err), "hello\n", output(srv))
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		t.Fatalf("shutdown(SHUT_WR): %v", err)
	}
	rest, err := io.ReadAll(c)
	switch {
	case len(rest) > 0:
		t.Fatalf("after its echo and the client's shutdown(SHUT_WR), the -linger0 server sent %q, want nothing but an RST; its output:\n%s", rest, output(srv))
	case !errors.Is(err, syscall.ECONNRESET):
		t.Fatalf("after its echo and the client's shutdown(SHUT_WR), the client of a -linger0 server (no -sort) read %s, want ECONNRESET: -linger0 is for every connection, echoed or sorted; server output:\n%s",
			what(err), output(srv))
	}
	noTimeWait(t, c, srv)
}

// Exercise 3: a -leak server does not close a connection at end of file.
// After three clients have closed theirs, each is in CLOSE_WAIT on the
// server's side, held by one of the server's descriptors; Ctrl-C closes
// them all, and the server exits with status 0.
func TestExercise3ACloseWaitLeak(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := startServer(t, s, "-leak")
	server := netip.MustParseAddrPort(srv.Addr())
	var clients []netip.AddrPort
	for i := 1; i <= 3; i++ {
		c := dial(t, srv)
		talk(t, c, srv, fmt.Sprintf("client %d", i))
		clients = append(clients, netip.MustParseAddrPort(c.LocalAddr().String()))
		// The echo has been read, so this close sends a FIN, not an RST.
		c.Close()
	}
	// The server serves one client at a time: once a fourth is answered,
	// it is done with the third, and with each of them it has read end of
	// file and either closed the connection or kept it.
	talk(t, dial(t, srv), srv, "client 4")

	fds := socketFDs(t, srv.Pid())
	var held []int
	var closed, unheld []string
	for _, c := range clients {
		e, listed := find(t, server, c)
		fd, holds := fds[e.inode]
		switch {
		case !listed || e.state != stCloseWait:
			closed = append(closed, fmt.Sprintf("%s -> %s is %s", server, c, describe(e, listed)))
		case !holds:
			unheld = append(unheld, fmt.Sprintf("%s -> %s", server, c))
		default:
			held = append(held, fd)
		}
	}
	if len(closed) > 0 {
		t.Fatalf("after 3 clients closed their ends, want each of their connections in CLOSE_WAIT on the -leak server's side: serve must not close a connection at end of file; %d are not:\n  %s\nserver output:\n%s",
			len(closed), strings.Join(closed, "\n  "), output(srv))
	}
	if len(unheld) > 0 {
		t.Fatalf("%d connections are in CLOSE_WAIT, but no descriptor in /proc/%d/fd refers to them, want one each: keep each descriptor open, in a slice that run closes at exit;\n  %s",
			len(unheld), srv.Pid(), strings.Join(unheld, "\n  "))
	}

	// Ctrl-C: run closes every descriptor it kept, on the way out.
	at := len(srv.Output())
	srv.Interrupt()
	out := srv.Output()
	if code := srv.ExitCode(); code != 0 {
		t.Fatalf("after Ctrl-C (SIGINT) the -leak server exited with status %d, want 0; its output:\n%s", code, out)
	}
	var missing []string
	for _, fd := range held {
		if line := fmt.Sprintf("close(%d) = 0", fd); !hasLine(out[at:], line) {
			missing = append(missing, line)
		}
	}
	if len(missing) > 0 {
		t.Errorf("the -leak server held the 3 connections in descriptors %v, and after Ctrl-C it never printed %s: run must close the descriptors serve kept, before it exits; its output after Ctrl-C:\n%s",
			held, strings.Join(missing, ", "), out[at:])
	}
}

// startServer starts a server with args. It asks for the usage first
// (-h, which the flag package answers at once), so that a flag the program
// does not know yet is reported in one line, not as a server that ended
// before listening. A program that does not answer -h within probeLimit
// (one that hangs, or has usage of its own) is simply started: Start
// reports what goes wrong then.
func startServer(t *testing.T, s *booktest.Session, args ...string) *booktest.Proc {
	t.Helper()
	usage := s.Spawn("usage", append(append([]string{}, args...), "-h")...)
	for deadline := time.Now().Add(probeLimit); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		out := usage.Output()
		if f := undefinedFlag(out); f != "" {
			t.Fatalf("the server has no %s flag yet: %s printed %q", f, strings.Join(args, " "), "flag provided but not defined: "+f)
		}
		if strings.Contains(out, "Usage") {
			break
		}
	}
	return s.Start("server", args...)
}

var undefinedFlagRE = regexp.MustCompile(`flag provided but not defined: (-\S+)`)

// undefinedFlag is the flag a program said it does not know, or "".
func undefinedFlag(out string) string {
	if m := undefinedFlagRE.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

// connections are the client addresses of the connections the server
// printed, in order: its lines "connection: TCP, local SERVER, remote CLIENT".
func connections(out string, server netip.AddrPort) []netip.AddrPort {
	var conns []netip.AddrPort
	for _, m := range regexp.MustCompile(`(?m)^connection: TCP, local (\S+), remote (\S+)$`).FindAllStringSubmatch(out, -1) {
		local, err1 := netip.ParseAddrPort(m[1])
		remote, err2 := netip.ParseAddrPort(m[2])
		if err1 == nil && err2 == nil && local == server {
			conns = append(conns, remote)
		}
	}
	return conns
}

// dial connects to the server, or fails the test.
func dial(t *testing.T, srv *booktest.Proc) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", srv.Addr(), waitLimit)
	if err != nil {
		t.Fatalf("could not connect to the server at %s: %v; its output:\n%s", srv.Addr(), err, output(srv))
	}
	t.Cleanup(func() { c.Close() })
	// No read on this connection waits for longer.
	c.SetDeadline(time.Now().Add(waitLimit))
	return c
}

func send(t *testing.T, c net.Conn, text string) {
	t.Helper()
	if _, err := io.WriteString(c, text); err != nil {
		t.Fatalf("sending %q to the server: %v", text, err)
	}
}

// talk sends a line and reads its whole echo.
func talk(t *testing.T, c net.Conn, srv *booktest.Proc, who string) {
	t.Helper()
	send(t, c, "hello\n")
	echo := make([]byte, len("hello\n"))
	if _, err := io.ReadFull(c, echo); err != nil || string(echo) != "hello\n" {
		t.Fatalf("%s sent %q and got back %q, then %s, want the echo; server output:\n%s", who, "hello\n", echo, what(err), output(srv))
	}
}

// noTimeWait checks that the connection c, reset by the server, has left
// nothing behind, on either side: no TIME_WAIT, no state at all.
func noTimeWait(t *testing.T, c net.Conn, srv *booktest.Proc) {
	t.Helper()
	client := netip.MustParseAddrPort(c.LocalAddr().String())
	server := netip.MustParseAddrPort(c.RemoteAddr().String())
	if e, listed, ok := waitState(t, server, client, 0); !ok {
		t.Errorf("after the RST the server's side of the connection from %s is %s, want it gone, in no state (ss -tan lists no TIME-WAIT for it); server output:\n%s",
			client, describe(e, listed), output(srv))
	}
	if e, listed, ok := waitState(t, client, server, 0); !ok {
		t.Errorf("after the RST the client's side of the connection %s -> %s is %s, want it gone, in no state", client, server, describe(e, listed))
	}
}

// what says in a student's words how a read ended.
func what(err error) string {
	switch {
	case err == nil:
		return "end of file"
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "end of file"
	case errors.Is(err, syscall.ECONNRESET):
		return "ECONNRESET"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Sprintf("nothing for %v", waitLimit)
	}
	return err.Error()
}

// output is what p has printed, for a failure message or a decision: it
// waits (briefly) for lines still on their way through the pipe, such as
// those a server printed just before the event the grader saw.
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

// hasLine reports whether out has line as a whole line.
func hasLine(out, line string) bool {
	return strings.Contains("\n"+out, "\n"+line+"\n")
}

// count says "1 connection", "2 connections".
func count(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// times says "once", "2 times".
func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

// TCP states as the kernel numbers them (include/net/tcp_states.h), which is
// how /proc/net/tcp shows them, in hex, in its st column.
const (
	stTimeWait  = 0x06
	stCloseWait = 0x08
)

var stateNames = map[int]string{
	0x01: "ESTABLISHED", 0x02: "SYN_SENT", 0x03: "SYN_RECV", 0x04: "FIN_WAIT_1",
	0x05: "FIN_WAIT_2", 0x06: "TIME_WAIT", 0x07: "CLOSE", 0x08: "CLOSE_WAIT",
	0x09: "LAST_ACK", 0x0A: "LISTEN", 0x0B: "CLOSING",
}

// A tcpEntry is one line of /proc/net/tcp or /proc/net/tcp6: one socket in
// the kernel's TCP tables, seen from its own side.
type tcpEntry struct {
	local, remote netip.AddrPort
	state         int
	inode         uint64 // the socket's inode, as /proc/PID/fd shows it: socket:[INODE]
}

// describe names the state of a connection as found in the tables.
func describe(e tcpEntry, listed bool) string {
	if !listed {
		return "gone (in no state)"
	}
	if name, ok := stateNames[e.state]; ok {
		return name
	}
	return fmt.Sprintf("in state %#x", e.state)
}

// tcpTable reads the kernel's TCP tables, as ss -tan does.
func tcpTable(t *testing.T) []tcpEntry {
	t.Helper()
	var entries []tcpEntry
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 {
				continue
			}
			var e tcpEntry
			if e.local, err = procAddr(f[1]); err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			if e.remote, err = procAddr(f[2]); err != nil {
				t.Fatalf("%s: %v", table, err)
			}
			st, _ := strconv.ParseInt(f[3], 16, 32)
			e.state = int(st)
			e.inode, _ = strconv.ParseUint(f[9], 10, 64)
			entries = append(entries, e)
		}
	}
	return entries
}

// procAddr decodes "0100007F:1F90": the address as the kernel stores it, 32
// bits at a time in host byte order, and the port in hex.
func procAddr(s string) (netip.AddrPort, error) {
	hexIP, hexPort, ok := strings.Cut(s, ":")
	port, err := strconv.ParseUint(hexPort, 16, 16)
	if !ok || err != nil || (len(hexIP) != 8 && len(hexIP) != 32) {
		return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
	}
	var b [16]byte
	for i := 0; i < len(hexIP)/8; i++ {
		w, err := strconv.ParseUint(hexIP[8*i:8*i+8], 16, 32)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("bad address %q", s)
		}
		// Little-endian words (x86, arm64): the first byte is the lowest.
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(w), byte(w>>8), byte(w>>16), byte(w>>24)
	}
	ip := netip.AddrFrom16(b)
	if len(hexIP) == 8 {
		ip = netip.AddrFrom4([4]byte(b[:4]))
	}
	return netip.AddrPortFrom(ip, uint16(port)), nil
}

// find returns the entry of the socket whose local address is local and
// whose peer is remote.
func find(t *testing.T, local, remote netip.AddrPort) (tcpEntry, bool) {
	t.Helper()
	for _, e := range tcpTable(t) {
		if e.local == local && e.remote == remote {
			return e, true
		}
	}
	return tcpEntry{}, false
}

// waitState waits until the socket local -> remote is in state want (or,
// for want 0, until it is in no table at all). It returns the last entry
// found, whether it was listed, and whether the wait succeeded. A socket
// that is gone comes back in no state, so for any other want that ends
// the wait at once.
func waitState(t *testing.T, local, remote netip.AddrPort, want int) (e tcpEntry, listed, ok bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for {
		e, listed = find(t, local, remote)
		if (want == 0 && !listed) || (listed && e.state == want) {
			return e, listed, true
		}
		if !listed {
			return e, listed, false
		}
		if time.Now().After(deadline) {
			return e, listed, false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// socketFDs maps the inode of each socket process pid holds to the number
// of its descriptor for it, from the links in /proc/PID/fd (socket:[INODE]).
func socketFDs(t *testing.T, pid int) map[uint64]int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("the server's descriptors: %v", err)
	}
	fds := map[uint64]int{}
	for _, e := range entries {
		target, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue // closed meanwhile
		}
		var inode uint64
		if _, err := fmt.Sscanf(target, "socket:[%d]", &inode); err != nil {
			continue
		}
		if fd, err := strconv.Atoi(e.Name()); err == nil {
			fds[inode] = fd
		}
	}
	return fds
}
