//go:build linux

package main

import (
	"bufio"
	"errors"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// TestMain builds the program once for all the tests, not once per session
// (booktest.Run).
func TestMain(m *testing.M) { os.Exit(booktest.Run(m)) }

// renumberPIDs shows the children's process IDs as 1001, 1002, ... in the
// order they appear: in the marks of their lines, in start, wait and kill.
func renumberPIDs(s *booktest.Session) {
	s.Renumber(`(?m)(?:^\[|^start\(.*\) = |^wait\(|^kill\()(\d+)`, 1001)
	// The tests give -addr 127.0.0.1:0; the reader types the port.
	s.Replace(`-addr 127\.0\.0\.1:0\b`, "-addr 127.0.0.1:8080")
	s.Replace(`bind\((\d+), 127\.0\.0\.1:0\)`, "bind($1, 127.0.0.1:8080)")
	s.Replace(`LookupPort\(tcp, "\d+"\) = \d+`, `LookupPort(tcp, "8080") = 8080`)
}

// childPIDs are the process IDs the server printed for its children, in order.
func childPIDs(out string) []int {
	var pids []int
	for _, m := range regexp.MustCompile(`(?m)^start\(.*\) = (\d+)$`).FindAllStringSubmatch(out, -1) {
		pid, _ := strconv.Atoi(m[1])
		pids = append(pids, pid)
	}
	return pids
}

// silent connects to addr and says nothing: a client that holds its
// connection open. The wait for an answer is bounded.
func silent(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c
}

// sockets lists the descriptors of process pid that are sockets.
func sockets(t *testing.T, pid int) []string {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(pid) + "/fd/"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var fds []string
	for _, e := range ents {
		if target, err := os.Readlink(dir + e.Name()); err == nil && strings.HasPrefix(target, "socket:") {
			fds = append(fds, e.Name())
		}
	}
	slices.Sort(fds)
	return fds
}

// TestTranscript records the chapter's run: a silent client holds its
// connection, and a second client is served meanwhile, by a second child.
// While both children live, the parent holds the listening socket and no
// connection, and each child holds its connection at 3 and nothing else.
// Ctrl-C then reaches the parent alone, which ends the first child with
// SIGTERM, waits for it, and exits 0.
func TestTranscript(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	renumberPIDs(s)
	srv := s.Start("server", "-addr", "127.0.0.1:0")
	idle := silent(t, srv.Addr())
	srv.WaitForN("connection: TCP", 1) // the first child is waiting for a line
	c := s.Run("client", "-client", "-addr", srv.Addr(), "-msg", "hello")
	srv.WaitForN("wait(", 1)
	pids := childPIDs(srv.Output())
	if len(pids) != 2 {
		t.Fatalf("want two children started, got %v:\n%s", pids, srv.Output())
	}
	if got := sockets(t, srv.Pid()); !slices.Equal(got, []string{"3"}) {
		t.Errorf("the parent's sockets: %v, want only 3, the listening one: it must close its copy of each connection", got)
	}
	if got := sockets(t, pids[0]); !slices.Equal(got, []string{"3"}) {
		t.Errorf("the first child's sockets: %v, want only 3, its connection", got)
	}
	srv.Interrupt()
	s.Check("run")

	if c.ExitCode() != 0 || !strings.Contains(c.Output(), `echoed "hello\n"`) {
		t.Errorf("the second client was not served while the first waited:\n%s", c.Output())
	}
	out := srv.Output()
	for _, want := range []string{
		"kill(" + strconv.Itoa(pids[0]) + ", SIGTERM) = 0",
		"wait(" + strconv.Itoa(pids[0]) + ") = exit status 0",
		"wait(" + strconv.Itoa(pids[1]) + ") = exit status 0",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the server did not print %q:\n%s", want, out)
		}
	}
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("server exit status %d after SIGINT, want 0", code)
	}
	// The first client saw end of file when its child ended.
	if n, err := idle.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("the silent client's read after Ctrl-C: %d, %v; want end of file", n, err)
	}
	for _, pid := range pids {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Errorf("child %d is still there after the server exited", pid)
		}
	}
}

// TestCrash: a client's line "crash" makes its child panic. The child
// exits with status 2, its client sees end of file, and the server and the
// other children go on: a client connected before the crash and one after
// it are both served.
func TestCrash(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server", "-addr", "127.0.0.1:0")
	before := silent(t, srv.Addr())
	srv.WaitForN("connection: TCP", 1)
	crash := s.Run("client", "-client", "-addr", srv.Addr(), "-msg", "crash")
	srv.WaitForN("wait(", 1)
	if !strings.Contains(srv.Output(), `panic: a client sent "crash"`) || !regexp.MustCompile(`(?m)^wait\(\d+\) = exit status 2$`).MatchString(srv.Output()) {
		t.Errorf("want the child's panic and its exit status 2:\n%s", srv.Output())
	}
	if crash.ExitCode() != 1 || !strings.Contains(crash.Output(), "the server closed the connection") {
		t.Errorf("the crashing client: want end of file (the server closed the connection) and exit status 1:\n%s", crash.Output())
	}
	before.Write([]byte("still here\n"))
	line, err := bufio.NewReader(before).ReadString('\n')
	if line != "still here\n" {
		t.Errorf("the client connected before the crash: got %q, %v; want its echo", line, err)
	}
	after := s.Run("client", "-client", "-addr", srv.Addr(), "-msg", "after")
	if after.ExitCode() != 0 {
		t.Errorf("a client after the crash was not served:\n%s", after.Output())
	}
	srv.Interrupt()
	if srv.ExitCode() != 0 {
		t.Errorf("server exit status %d, want 0:\n%s", srv.ExitCode(), srv.Output())
	}
}

// TestKeep: with -keep the parent does not close its copy of the
// connection. The child crashes and its copy is gone, but the parent's
// keeps the connection open: the client waits for an end of file that does
// not come, and the parent holds a socket for it. Only when the parent
// exits does the client see end of file.
func TestKeep(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server", "-keep", "-addr", "127.0.0.1:0")
	c := silent(t, srv.Addr())
	c.Write([]byte("crash\n"))
	srv.WaitForN("wait(", 1) // the child has exited, and been waited for
	if got := sockets(t, srv.Pid()); !slices.Equal(got, []string{"3", "4"}) {
		t.Errorf("with -keep, the parent's sockets: %v, want 3 and 4, the connection it kept", got)
	}
	// Nothing will come, but the connection is open: a bounded wait.
	c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if n, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("with -keep, after the child exited: read = %d, %v; want no end of file (a time-out)", n, err)
	}
	srv.Interrupt()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := c.Read(make([]byte, 1)); n != 0 || err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("after the parent exited: read = %d, %v; want end of file", n, err)
	}
}

// TestZombie: with -nowait nobody waits for a child. It exits, and stays in
// the process table as a zombie: state Z in /proc/PID/stat, its parent the
// server, until the server exits.
func TestZombie(t *testing.T) {
	t.Parallel()
	s := booktest.New(t)
	srv := s.Start("server", "-nowait", "-addr", "127.0.0.1:0")
	s.Run("client", "-client", "-addr", srv.Addr())
	srv.WaitFor("] close(3) = 0")
	pid := childPIDs(srv.Output())[0]
	// The child's exit follows its last line: a bounded wait for the Z.
	var stat []string
	for range 100 {
		stat = procStat(t, pid)
		if stat[2] == "Z" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if stat[2] != "Z" || stat[3] != strconv.Itoa(srv.Pid()) {
		t.Errorf("child %d: state %s, parent %s; want Z (a zombie), parent %d", pid, stat[2], stat[3], srv.Pid())
	}
	if strings.Contains(srv.Output(), "wait(") {
		t.Errorf("with -nowait the server waited for a child:\n%s", srv.Output())
	}
	srv.Interrupt()
}

// procStat is /proc/PID/stat split in fields: 0 the PID, 1 the command in
// parentheses, 2 the state, 3 the parent's PID.
func procStat(t *testing.T, pid int) []string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b))
}
