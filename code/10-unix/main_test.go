//go:build linux

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/socket-to-server/book/tools/booktest"
)

// pidRE finds the PIDs the programs print, renumbered in transcripts.
const pidRE = `(?:pid=|pid )(\d+)`

// sockPath is a socket path in a directory of the test's own, and the
// rule that shows that directory as /tmp in the transcript, where the
// path is the program's default, /tmp/10-unix.sock.
func sockPath(t *testing.T, s *booktest.Session) string {
	dir := t.TempDir()
	if s != nil {
		s.Replace(regexp.QuoteMeta(dir)+`\b`, "/tmp")
	}
	return filepath.Join(dir, "10-unix.sock")
}

// peerPID is the pid the program printed for its peer in its nth
// "peer:" line (from 1).
func peerPID(t *testing.T, out string, nth int) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^peer: pid (\d+), uid (\d+), gid (\d+)$`).FindAllStringSubmatch(out, -1)
	if len(m) < nth {
		t.Fatalf("fewer than %d peer: lines in\n%s", nth, out)
	}
	pid, _ := strconv.Atoi(m[nth-1][1])
	return pid
}

// TestTranscript records the chapter's first run: the echo server on a
// socket file, and two clients. The server learns each client's pid from
// SO_PEERCRED, and the client learns the server's; the file exists while
// the server runs and is gone once Ctrl-C has stopped it.
func TestTranscript(t *testing.T) {
	s := booktest.New(t)
	s.Renumber(pidRE, 4242)
	path := sockPath(t, s)
	srv := s.Start("server", "-addr", path)
	if !isSocket(path) {
		t.Errorf("while the server listens, %s is not a socket file", path)
	}
	c1 := s.Run("client", "-client", "-addr", path, "-msg", "hello", "-msg", "over a socket file")
	srv.WaitForN("close(4) = 0", 1)
	c2 := s.Run("client", "-client", "-addr", path, "-msg", "who am I?")
	srv.WaitForN("close(4) = 0", 2)
	srv.Interrupt()
	s.Check("run")

	for i, c := range []*booktest.Proc{c1, c2} {
		if got := peerPID(t, srv.Output(), i+1); got != c.Pid() {
			t.Errorf("SO_PEERCRED told the server pid %d for client %d, whose pid is %d", got, i+1, c.Pid())
		}
		if got := peerPID(t, c.Output(), 1); got != srv.Pid() {
			t.Errorf("SO_PEERCRED told client %d pid %d for the server, whose pid is %d", i+1, got, srv.Pid())
		}
	}
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("server exit status %d after SIGINT, want 0", code)
	}
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Ctrl-C the socket file is still there (lstat: %v)", err)
	}
}

func isSocket(path string) bool {
	fi, err := os.Lstat(path)
	return err == nil && fi.Mode().Type() == os.ModeSocket
}

// TestStale records what a crash leaves behind. A server killed with
// SIGKILL cannot remove its file: a client's connect is refused, and a
// bare bind fails with EADDRINUSE. The next server finds a socket nobody
// listens on, removes it and binds; a server started while that one runs
// finds a live socket and leaves it alone.
func TestStale(t *testing.T) {
	s := booktest.New(t)
	s.Renumber(pidRE, 4242)
	path := sockPath(t, s)
	crashed := s.Start("server", "-addr", path)
	crashed.Signal(syscall.SIGKILL)
	if !isSocket(path) {
		t.Fatalf("after SIGKILL, %s is not there: want the stale socket file", path)
	}
	if err := bindOnce(path); err != unix.EADDRINUSE {
		t.Errorf("bind to the stale file: %v, want EADDRINUSE", err)
	}
	refused := s.Run("other", "-client", "-addr", path)
	if !strings.Contains(refused.Output(), "connect(3, "+path+") = -1 ECONNREFUSED") || refused.ExitCode() != 1 {
		t.Errorf("a client of the stale file: want connect ECONNREFUSED and exit status 1:\n%s", refused.Output())
	}

	srv := s.Start("server", "-addr", path)
	for _, want := range []string{
		"bind(3, " + path + ") = -1 EADDRINUSE",
		"connect(4, " + path + ") = -1 ECONNREFUSED",
		`unlink("` + path + `") = 0`,
		"bind(3, " + path + ") = 0",
	} {
		if !strings.Contains(srv.Output(), want) {
			t.Errorf("the restarted server did not print %q:\n%s", want, srv.Output())
		}
	}
	busy := s.Run("other", "-addr", path)
	if !strings.Contains(busy.Output(), "another server is listening there") || busy.ExitCode() != 1 {
		t.Errorf("a second server: want it to find the first and exit 1:\n%s", busy.Output())
	}
	// The server's own probe at start closed a 4 already; the second
	// close(4) ends the second server's probe, accepted and ended.
	srv.WaitForN("close(4) = 0", 2)
	srv.Interrupt()
	s.Check("stale")
}

// bindOnce binds a new Unix socket to path and closes it.
func bindOnce(path string) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Bind(fd, &unix.SockaddrUnix{Name: path})
}

// TestNotASocket: a regular file in the way makes bind fail with
// EADDRINUSE and a connect to it fail with ECONNREFUSED, as a stale socket
// does; the server looks before it unlinks, and leaves the file alone.
func TestNotASocket(t *testing.T) {
	booktest.CheckFDs(t)
	path := sockPath(t, nil)
	if err := os.WriteFile(path, []byte("keep me\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(c)
	if err := unix.Connect(c, &unix.SockaddrUnix{Name: path}); err != unix.ECONNREFUSED {
		t.Errorf("connect to a regular file: %v, want ECONNREFUSED", err)
	}
	var out strings.Builder
	_, err = listenOn(newNarrator(&out, false), &out, &unix.SockaddrUnix{Name: path}, 2)
	if err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("listenOn with a regular file in the way: %v, want an error that says it is not a socket\n%s", err, out.String())
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "keep me\n" {
		t.Errorf("the regular file: %q, %v; want it untouched", data, err)
	}
}

// TestSunPathLimit: sun_path is 108 bytes, NUL included. x/sys takes a
// path of 107 bytes and refuses 108 with EINVAL, without a system call;
// the program says so in words. (The lengths bind and connect pass, 20
// for /tmp/10-unix.sock and 7 for @echo, are strace's, in
// TestExperimentSocketFile.)
func TestSunPathLimit(t *testing.T) {
	booktest.CheckFDs(t)
	if n := len(unix.RawSockaddrUnix{}.Path); n != 108 {
		t.Errorf("sun_path is %d bytes, want 108", n)
	}
	// The figure's numbers: the whole struct, and the families.
	if unix.SizeofSockaddrUnix != 110 || unix.SizeofSockaddrInet4 != 16 || unix.AF_UNIX != 1 || unix.AF_INET != 2 {
		t.Errorf("sockaddr_un is %d bytes, sockaddr_in %d, AF_UNIX %d, AF_INET %d; want 110, 16, 1, 2",
			unix.SizeofSockaddrUnix, unix.SizeofSockaddrInet4, unix.AF_UNIX, unix.AF_INET)
	}
	dir := t.TempDir()
	name := func(n int) string { return dir + "/" + strings.Repeat("x", n-len(dir)-1) }
	if err := bindOnce(name(107)); err != nil {
		t.Errorf("bind to a path of 107 bytes: %v, want success", err)
	}
	for _, n := range []int{108, 109} {
		if err := bindOnce(name(n)); err != unix.EINVAL {
			t.Errorf("bind to a path of %d bytes: %v, want EINVAL", n, err)
		}
	}
	_, err := parseAddr(name(108))
	if err == nil || !strings.Contains(err.Error(), "108 bytes, but sun_path holds at most 107 and a NUL") {
		t.Errorf("parseAddr of 108 bytes: %v", err)
	}
}

// TestAbstract: an @name has no file. The server binds it, ss and
// /proc/net/unix list it with its @, a client connects by the name, and
// once the server has gone the name is free again, with nothing to unlink.
func TestAbstract(t *testing.T) {
	s := booktest.New(t)
	// The abstract namespace belongs to the network namespace: a name of
	// this test's own, so that parallel runs do not collide.
	name := fmt.Sprintf("@10-unix-test-%d", os.Getpid())
	srv := s.Start("server", "-addr", name)
	if srv.Addr() != name {
		t.Errorf("listening on %q, want %q", srv.Addr(), name)
	}
	table, err := os.ReadFile("/proc/net/unix")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(table), " "+name+"\n") {
		t.Errorf("/proc/net/unix does not list %s", name)
	}
	if _, err := os.Lstat(name); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a file named %s exists: %v", name, err)
	}
	c := s.Run("client", "-client", "-addr", name, "-msg", "no file")
	if !strings.Contains(c.Output(), `echoed "no file\n"`) {
		t.Errorf("client of %s:\n%s", name, c.Output())
	}
	srv.WaitFor("close(4) = 0")
	srv.Interrupt()
	if strings.Contains(srv.Output(), "unlink") {
		t.Errorf("the server unlinked something for an abstract name:\n%s", srv.Output())
	}
	if err := bindOnce(name); err != nil {
		t.Errorf("bind %s after the server has gone: %v, want success (the name went with the socket)", name, err)
	}
}

// pythonClient is a real client that no one here wrote: Python's socket
// module, run as the user nobody. It connects to path and prints "pid
// N" and what the server echoed, or the errno name of a failed connect.
func pythonClient(t *testing.T, path string) (out string, pid int) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root, to run a client as another user")
	}
	python, err := exec.LookPath("/usr/bin/python3")
	if err != nil {
		t.Skip("needs /usr/bin/python3")
	}
	const script = `
import errno, os, socket, sys
print("pid", os.getpid(), flush=True)
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
try:
    s.connect(sys.argv[1])
except OSError as e:
    print(errno.errorcode[e.errno])
    sys.exit(0)
s.sendall(b"from python\n")
print(s.recv(100))
`
	cmd := exec.Command(python, "-c", script, path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python as nobody: %v\n%s", err, b)
	}
	if _, err := fmt.Sscanf(string(b), "pid %d", &pid); err != nil {
		t.Fatalf("python printed %q", b)
	}
	return string(b), pid
}

// TestPermission: connect needs write permission on the socket file. With
// the server's file at 0755 (what bind makes with umask 022), a client
// running as another user gets EACCES; at 0777 it connects, and the server
// reads that user's uid and gid, and the client's pid, with SO_PEERCRED.
func TestPermission(t *testing.T) {
	s := booktest.New(t)
	path := sockPath(t, nil)
	// The directories must let nobody in, so that the file decides:
	// t.TempDir makes a directory for the test and one inside it, 0700.
	for _, dir := range []string{filepath.Dir(path), filepath.Dir(filepath.Dir(path))} {
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	srv := s.Start("server", "-addr", path)
	if err := os.Chmod(path, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, _ := pythonClient(t, path); !strings.HasSuffix(out, "EACCES\n") {
		t.Errorf("a client running as nobody, file mode 0755: %q, want EACCES", out)
	}
	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
	out, pid := pythonClient(t, path)
	if !strings.HasSuffix(out, "b'from python\\n'\n") {
		t.Errorf("a client running as nobody, file mode 0777: %q, want the echo", out)
	}
	srv.WaitFor("close(4) = 0")
	want := fmt.Sprintf("peer: pid %d, uid 65534, gid 65534\n", pid)
	if !strings.Contains(srv.Output(), want) {
		t.Errorf("the server did not print %q:\n%s", want, srv.Output())
	}
	srv.Interrupt()
}

// quiet is a narrator that prints nothing.
var quiet = narrator{w: io.Discard, quiet: true, mu: new(sync.Mutex)}

// pair is socketpair(AF_UNIX, SOCK_STREAM): two sockets, already
// connected to each other, closed when the test ends.
func pair(t *testing.T) [2]int {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fds[0]); unix.Close(fds[1]) })
	return fds
}

// TestSocketpair: the two ends are connected with no bind, no listen and
// no connect; neither has an address; bytes go both ways; and each end's
// SO_PEERCRED is this process, which made both.
func TestSocketpair(t *testing.T) {
	booktest.CheckFDs(t)
	fds := pair(t)
	for _, fd := range fds {
		for name, get := range map[string]func(int) (unix.Sockaddr, error){"getsockname": unix.Getsockname, "getpeername": unix.Getpeername} {
			sa, err := get(fd)
			if err != nil || addrString(sa) != "(unnamed)" {
				t.Errorf("%s(%d) = %s, %v; want (unnamed)", name, fd, addrString(sa), err)
			}
		}
		cred, err := unix.GetsockoptUcred(fd, unix.SOL_SOCKET, unix.SO_PEERCRED)
		if err != nil || int(cred.Pid) != os.Getpid() {
			t.Errorf("SO_PEERCRED of %d: %+v, %v; want pid %d", fd, cred, err, os.Getpid())
		}
	}
	for i, msg := range []string{"ping\n", "pong\n"} {
		from, to := fds[i], fds[1-i]
		if err := writeAll(quiet, from, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, len(msg))
		if err := readFull(quiet, to, buf); err != nil || string(buf) != msg {
			t.Errorf("%d to %d: %q, %v; want %q", from, to, buf, err, msg)
		}
	}
}

// TestPassFD: sendFD and recvFD move an open socket over a socketpair. The
// receiver gets a new descriptor for the same socket (the same inode), at
// a number of its own, with close-on-exec; after the sender closes its
// copy, the socket still works through the new one.
func TestPassFD(t *testing.T) {
	booktest.CheckFDs(t)
	via := pair(t)
	conn := pair(t)             // the "client" connection to pass: conn[1] plays the client
	blocker, err := unix.Dup(0) // so that the lowest free number is not conn[0]'s
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(blocker)
	if err := sendFD(quiet, via[0], conn[0]); err != nil {
		t.Fatal(err)
	}
	var before unix.Stat_t
	if err := unix.Fstat(conn[0], &before); err != nil {
		t.Fatal(err)
	}
	unix.Close(conn[0]) // the sender's copy
	got, err := recvFD(quiet, via[1])
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(got)
	var after unix.Stat_t
	if err := unix.Fstat(got, &after); err != nil {
		t.Fatal(err)
	}
	if after.Ino != before.Ino {
		t.Errorf("received descriptor %d is socket inode %d, want %d (the one sent)", got, after.Ino, before.Ino)
	}
	if flags, err := unix.FcntlInt(uintptr(got), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC == 0 {
		t.Errorf("received descriptor: F_GETFD = %d, %v; want FD_CLOEXEC", flags, err)
	}
	if err := writeAll(quiet, conn[1], []byte("still here\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 11)
	if err := readFull(quiet, got, buf); err != nil || string(buf) != "still here\n" {
		t.Errorf("read through the received descriptor: %q, %v", buf, err)
	}
	// The end of the stream: recvFD returns -1, no error.
	unix.Close(via[0])
	if fd, err := recvFD(quiet, via[1]); fd != -1 || err != nil {
		t.Errorf("recvFD after the sender closed: %d, %v; want -1, nil", fd, err)
	}
}

// TestBacklog: a Unix stream listener with backlog 2 takes 3 connections
// (backlog+1) that nobody accepts; the 4th non-blocking connect fails at
// once with EAGAIN. TCP, with the same backlog, answers the 4th with
// EINPROGRESS: its SYN was dropped and will be sent again, not refused.
func TestBacklog(t *testing.T) {
	booktest.CheckFDs(t)
	results := func(domain int, sa unix.Sockaddr) []error {
		ln, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(ln)
		if err := unix.Bind(ln, sa); err != nil {
			t.Fatal(err)
		}
		if err := unix.Listen(ln, 2); err != nil {
			t.Fatal(err)
		}
		if sa, err = unix.Getsockname(ln); err != nil {
			t.Fatal(err)
		}
		var errs []error
		for range 5 {
			c, err := unix.Socket(domain, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(c)
			errs = append(errs, unix.Connect(c, sa))
		}
		return errs
	}
	unixErrs := results(unix.AF_UNIX, &unix.SockaddrUnix{Name: sockPath(t, nil)})
	want := []error{nil, nil, nil, unix.EAGAIN, unix.EAGAIN}
	if fmt.Sprint(unixErrs) != fmt.Sprint(want) {
		t.Errorf("Unix, backlog 2, five non-blocking connects: %v, want %v", unixErrs, want)
	}
	tcpErrs := results(unix.AF_INET, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}})
	if tcpErrs[3] != unix.EINPROGRESS {
		t.Errorf("TCP, backlog 2, the 4th non-blocking connect: %v, want EINPROGRESS", tcpErrs[3])
	}
}
