package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestMain builds the program once for all the tests, not once per session
// (booktest.Run).
func TestMain(m *testing.M) { os.Exit(booktest.Run(m)) }

// The book's transcript: a server, one client, Ctrl-C.
func TestTranscript(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server")
	cl := s.Run("client", "-client", "-addr", srv.Addr())
	srv.WaitForN("ln.Accept()", 2) // done with the client, waiting for the next
	srv.Interrupt()
	if code := cl.ExitCode(); code != 0 {
		t.Errorf("client exit status %d, want 0", code)
	}
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("server exit status %d after SIGINT, want 0", code)
	}
	s.Check("run")
}

// With no server, connect is refused: the client says so and exits 1.
func TestTranscriptRefused(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server", "-q")
	srv.Interrupt() // nothing listens on srv.Addr() from now on
	cl := s.Run("client", "-client", "-addr", srv.Addr())
	if code := cl.ExitCode(); code != 1 {
		t.Errorf("client exit status %d, want 1", code)
	}
	if want := "dial " + srv.Addr() + ": connection refused\n"; !strings.HasSuffix(cl.Output(), want) {
		t.Errorf("client printed %q, want it to end %q", cl.Output(), want)
	}
	s.Check("refused")
}

// kill (SIGTERM) stops the server as cleanly as Ctrl-C does.
func TestSIGTERMExitsZero(t *testing.T) {
	s := booktest.New(t)
	srv := s.Start("server")
	srv.WaitFor("ln.Accept()")
	srv.Signal(syscall.SIGTERM)
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("server exit status %d after SIGTERM, want 0; output:\n%s", code, srv.Output())
	}
	if !strings.HasSuffix(srv.Output(), "ln.Close()  // close\n") {
		t.Errorf("server did not close its listener last; output:\n%s", srv.Output())
	}
}

// The line sent is the line the server quotes back, addressed to the
// client's own address.
func TestRoundTrip(t *testing.T) {
	booktest.CheckFDs(t)
	srv := startServer(t, false)
	for _, msg := range []string{"hello", "two words", `with "quotes"`} {
		out, err := runClient(t, srv.addr, msg, false)
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		local, _ := connection(t, out)
		want := fmt.Sprintf("hi %s, you said %q\n", local, msg)
		if !strings.Contains(out, "\n"+want) {
			t.Errorf("client did not print %q; output:\n%s", want, out)
		}
	}
}

// Clients are served one after another, each on a connection of its own.
func TestClientsOneAfterAnother(t *testing.T) {
	booktest.CheckFDs(t)
	srv := startServer(t, false)
	var ports []string
	for i := range 3 {
		out, err := runClient(t, srv.addr, fmt.Sprint("client ", i), false)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		local, _ := connection(t, out)
		ports = append(ports, port(t, local))
	}
	srv.out.waitFor(t, "ln.Accept()", 4)
	accepted := regexp.MustCompile(`accepted 127\.0\.0\.1:(\d+)`).FindAllStringSubmatch(srv.out.String(), -1)
	if len(accepted) != 3 {
		t.Fatalf("server accepted %d clients, want 3; output:\n%s", len(accepted), srv.out)
	}
	for i, m := range accepted {
		if m[1] != ports[i] {
			t.Errorf("accept %d was from port %s, want client %d's port %s", i+1, m[1], i, ports[i])
		}
	}
	if ports[0] == ports[1] || ports[1] == ports[2] || ports[0] == ports[2] {
		t.Errorf("clients shared a port: %v", ports)
	}
	// Each connection is accepted, read, written and closed before the next.
	steps := regexp.MustCompile(`(?m)^(?:  accepted|r\.ReadSlice|c\.Write|c\.Close)`).FindAllString(srv.out.String(), -1)
	want := strings.Repeat("  accepted r.ReadSlice c.Write c.Close ", 3)
	if got := strings.Join(steps, " ") + " "; got != want {
		t.Errorf("server steps %q, want %q", got, want)
	}
}

// The client's port is an ephemeral one the kernel picked, and the two
// sides print the same connection (its 5-tuple) from opposite ends.
func TestConnectionBothEnds(t *testing.T) {
	booktest.CheckFDs(t)
	srv := startServer(t, false)
	out, err := runClient(t, srv.addr, "hello", false)
	if err != nil {
		t.Fatal(err)
	}
	cLocal, cRemote := connection(t, out)
	srv.out.waitFor(t, "c.Close()", 1)
	sLocal, sRemote := connection(t, srv.out.String())
	if cLocal != sRemote || cRemote != sLocal {
		t.Errorf("client sees local %s remote %s; server sees local %s remote %s", cLocal, cRemote, sLocal, sRemote)
	}
	if cRemote != srv.addr {
		t.Errorf("client's remote end is %s, want the server's %s", cRemote, srv.addr)
	}
	if port(t, cLocal) == port(t, srv.addr) {
		t.Errorf("client and server share port %s", port(t, cLocal))
	}
	lo, hi := ephemeralRange(t)
	if p, _ := strconv.Atoi(port(t, cLocal)); p < lo || p > hi {
		t.Errorf("client port %d outside the ephemeral range %d-%d", p, lo, hi)
	}
}

// A second client connects while the server is busy with a first one that
// says nothing: the kernel completes its connection and holds its line,
// and the server gets to it only when the first client leaves.
func TestSecondClientWaits(t *testing.T) {
	booktest.CheckFDs(t)
	srv := startServer(t, false)
	first, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	srv.out.waitFor(t, "r.ReadSlice", 1) // the server waits for the first client's line

	second := startClient(t, srv.addr, "hello")
	second.out.waitFor(t, "r.ReadSlice", 1) // its connect succeeded, its line is sent
	port2 := port(t, second.local(t))
	// ss -ltn: Recv-Q 1 on the listening socket; ss -tn: Recv-Q 6 on the
	// server's end of the second connection ("hello\n", unread).
	waitQueue(t, "0A", port(t, srv.addr), "", 1)
	waitQueue(t, "01", port(t, srv.addr), port2, len("hello\n"))
	if strings.Contains(srv.out.String(), "accepted 127.0.0.1:"+port2) {
		t.Fatalf("server accepted the second client while busy with the first:\n%s", srv.out)
	}

	first.Close() // the server reads EOF, reports it, and moves on
	if err := second.wait(t); err != nil {
		t.Fatalf("second client: %v", err)
	}
	srv.out.waitFor(t, "accepted 127.0.0.1:"+port2, 1)
	if !strings.Contains(srv.errOut.String(), ": EOF\n") {
		t.Errorf("server did not report the first client's EOF; stderr: %q", srv.errOut)
	}
}

// A client that hangs up without a newline costs the server that client,
// not its life.
func TestBadClientDoesNotStopServer(t *testing.T) {
	booktest.CheckFDs(t)
	srv := startServer(t, false)
	c, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	local := c.LocalAddr().String()
	c.Write([]byte("no newline"))
	c.Close()
	srv.out.waitFor(t, "ln.Accept()", 2)
	if want := "read " + local + ": EOF\n"; srv.errOut.String() != want {
		t.Errorf("server stderr %q, want %q", srv.errOut, want)
	}
	if _, err := runClient(t, srv.addr, "still there?", false); err != nil {
		t.Errorf("next client: %v", err)
	}
}

// The server reads up to the newline, however the bytes arrive.
func TestLineInPieces(t *testing.T) {
	booktest.CheckFDs(t)
	srv := startServer(t, false)
	c, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	if _, err := c.Write([]byte("hel")); err != nil {
		t.Fatal(err)
	}
	srv.out.waitFor(t, "r.ReadSlice", 1)
	if _, err := c.Write([]byte("lo\n")); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(15 * time.Second))
	reply, err := io.ReadAll(c) // the server closes after its one line
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("hi %s, you said \"hello\"\n", local); string(reply) != want {
		t.Errorf("reply %q, want %q", reply, want)
	}
}

// A line longer than 1024 bytes is refused rather than buffered without end.
func TestLongLineRefused(t *testing.T) {
	booktest.CheckFDs(t)
	srv := startServer(t, false)
	c, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	local := c.LocalAddr().String()
	if _, err := c.Write([]byte(strings.Repeat("x", maxLine))); err != nil {
		t.Fatal(err)
	}
	srv.out.waitFor(t, "ln.Accept()", 2) // done with this client
	if want := "read " + local + ": bufio: buffer full\n"; srv.errOut.String() != want {
		t.Errorf("server stderr %q, want %q", srv.errOut, want)
	}
}

// An empty host means every address this machine has, not loopback.
func TestEmptyHostListensEverywhere(t *testing.T) {
	booktest.CheckFDs(t)
	p := start(t, config{addr: ":0", quiet: true})
	p.out.waitFor(t, "listening on ", 1)
	m := regexp.MustCompile(`^listening on (\[::\]|0\.0\.0\.0):(\d+)\n$`).FindStringSubmatch(p.out.String())
	if m == nil {
		t.Fatalf("server printed %q, want listening on [::]:PORT or 0.0.0.0:PORT", p.out)
	}
	if _, err := runClient(t, "127.0.0.1:"+m[2], "hello", true); err != nil {
		t.Errorf("client via loopback: %v", err)
	}
}

// A second server on the same address fails in listen (bind, really).
func TestAddressInUse(t *testing.T) {
	booktest.CheckFDs(t)
	srv := startServer(t, true)
	err := run(booktest.Context(t), config{addr: srv.addr, quiet: true}, &buffer{}, &buffer{})
	if want := "listen " + srv.addr + ": address already in use"; err == nil || err.Error() != want {
		t.Errorf("second server: %v, want %q", err, want)
	}
	if !errors.Is(err, syscall.EADDRINUSE) {
		t.Errorf("error %v does not wrap EADDRINUSE", err)
	}
}

// A shell typically starts a program with a soft limit of 1024 descriptors
// (ulimit -n), but a Go program raises its own soft limit to one below the
// hard limit (ulimit -Hn) before main runs. The server is started from a
// shell whose soft limit is 64, and /proc/PID/limits read while it listens.
func TestGoRaisesFileLimit(t *testing.T) {
	if _, err := os.Stat("/proc/self/limits"); err != nil {
		t.Skip("needs /proc/PID/limits (Linux)")
	}
	bin := booktest.Build(t)
	const low = 64
	// exec: the server takes over the shell's process, and its limits.
	cmd := exec.Command("bash", "-c", `ulimit -S -n `+strconv.Itoa(low)+` && ulimit -S -n && exec "$0" -q -addr 127.0.0.1:0`, bin)
	out := &buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Skip(err) // no bash
	}
	defer func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	}()
	out.waitFor(t, "listening on ", 1)
	if !strings.HasPrefix(out.String(), fmt.Sprintf("%d\n", low)) {
		t.Fatalf("the shell's soft limit was not %d before exec; output:\n%s", low, out)
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/limits", cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^Max open files\s+(\d+)\s+(\d+)`).FindStringSubmatch(string(b))
	if m == nil {
		t.Fatalf("no open-files line in /proc/PID/limits:\n%s", b)
	}
	soft, _ := strconv.Atoi(m[1])
	hard, _ := strconv.Atoi(m[2])
	if hard <= low+1 {
		t.Skipf("hard limit %d leaves nothing to raise", hard)
	}
	if soft != hard-1 {
		t.Errorf("running server: soft limit %d, hard %d; want the soft limit raised from %d to %d", soft, hard, low, hard-1)
	}
}

// Cancelling the context (what SIGINT does) stops the server with no error
// and nothing left open, even while a client is connected and silent.
func TestCancelStopsServer(t *testing.T) {
	booktest.CheckFDs(t)
	srv := startServer(t, false)
	c, err := net.Dial("tcp", srv.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	srv.out.waitFor(t, "r.ReadSlice", 1)
	if err := srv.stop(t); err != nil {
		t.Errorf("run returned %v after cancel, want nil", err)
	}
	if !strings.HasSuffix(srv.out.String(), "ln.Close()  // close\n") {
		t.Errorf("server did not close its listener last:\n%s", srv.out)
	}
}

// -q keeps only what a user needs: where the server listens, the reply.
func TestQuiet(t *testing.T) {
	booktest.CheckFDs(t)
	srv := startServer(t, true)
	out, err := runClient(t, srv.addr, "hello", true)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^hi 127\.0\.0\.1:\d+, you said "hello"\n$`).MatchString(out) {
		t.Errorf("quiet client printed %q", out)
	}
	srv.stop(t)
	if want := "listening on " + srv.addr + "\n"; srv.out.String() != want {
		t.Errorf("quiet server printed %q, want %q", srv.out, want)
	}
}

// inProc is one run of the program in this process.
type inProc struct {
	addr   string
	out    *buffer
	errOut *buffer
	cancel context.CancelFunc
	done   chan error
}

func (p *inProc) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-p.done:
		p.done <- err // for the next caller
		return err
	case <-time.After(15 * time.Second):
		t.Fatalf("run did not return; output:\n%s", p.out)
		return nil
	}
}

func (p *inProc) stop(t *testing.T) error {
	t.Helper()
	p.cancel()
	return p.wait(t)
}

// local is the client's own address, from its connection line.
func (p *inProc) local(t *testing.T) string {
	l, _ := connection(t, p.out.String())
	return l
}

func start(t *testing.T, cfg config) *inProc {
	ctx, cancel := context.WithCancel(booktest.Context(t))
	p := &inProc{out: &buffer{}, errOut: &buffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() { p.done <- run(ctx, cfg, p.out, p.errOut) }()
	t.Cleanup(func() { p.stop(t) })
	return p
}

// startServer runs a server on a port the kernel picks and waits until it
// listens.
func startServer(t *testing.T, quiet bool) *inProc {
	t.Helper()
	p := start(t, config{addr: "127.0.0.1:0", quiet: quiet})
	p.out.waitFor(t, "listening on ", 1)
	p.addr = regexp.MustCompile(`listening on (\S+)`).FindStringSubmatch(p.out.String())[1]
	return p
}

func startClient(t *testing.T, addr, msg string) *inProc {
	return start(t, config{addr: addr, client: true, msg: msg})
}

// runClient runs a client to its end and returns what it printed.
func runClient(t *testing.T, addr, msg string, quiet bool) (string, error) {
	t.Helper()
	p := start(t, config{addr: addr, client: true, msg: msg, quiet: quiet})
	err := p.wait(t)
	return p.out.String(), err
}

var connRE = regexp.MustCompile(`connection: TCP, local (\S+), remote (\S+)\n`)

// connection reads the two ends from a "connection:" line.
func connection(t *testing.T, out string) (local, remote string) {
	t.Helper()
	m := connRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no connection line in:\n%s", out)
	}
	return m[1], m[2]
}

func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ephemeralRange is the range connect picks client ports from.
func ephemeralRange(t *testing.T) (lo, hi int) {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		t.Skip(err)
	}
	if _, err := fmt.Sscan(string(b), &lo, &hi); err != nil {
		t.Fatal(err)
	}
	return lo, hi
}

// waitQueue waits until /proc/net/tcp, which ss reads too, shows a socket
// in state st ("0A" LISTEN, "01" ESTABLISHED) on local port lport (and
// remote port rport, unless "") with n in its receive queue: for a
// listening socket, connections waiting for accept; otherwise unread bytes.
func waitQueue(t *testing.T, st, lport, rport string, n int) {
	t.Helper()
	hexPort := func(p string) string { v, _ := strconv.Atoi(p); return fmt.Sprintf("%04X", v) }
	var last string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		b, err := os.ReadFile("/proc/net/tcp")
		if err != nil {
			t.Skip(err)
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			f := strings.Fields(line) // sl local rem st tx_queue:rx_queue ...
			if len(f) < 5 || f[3] != st || !strings.HasSuffix(f[1], ":"+hexPort(lport)) ||
				(rport != "" && !strings.HasSuffix(f[2], ":"+hexPort(rport))) {
				continue
			}
			last = line
			rx, _ := strconv.ParseInt(f[4][strings.Index(f[4], ":")+1:], 16, 64)
			if int(rx) == n {
				return
			}
		}
	}
	t.Fatalf("no socket in state %s on port %s (peer %q) with %d queued; last seen: %q", st, lport, rport, n, last)
}

// buffer collects what a run prints while the test reads it.
type buffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (b *buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// waitFor waits until text has been printed n times.
func (b *buffer) waitFor(t *testing.T, text string, n int) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if strings.Count(b.String(), text) >= n {
			return
		}
	}
	t.Fatalf("%q not printed %d times; output:\n%s", text, n, b)
}
