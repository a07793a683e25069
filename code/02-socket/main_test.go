//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
	"golang.org/x/sys/unix"
)

// Some tests run this test binary again as a child process that does one
// thing and exits, so that they can change what only a whole process can
// change (its descriptor limit) or watch what survives an exec.
const (
	childEnv = "SOCKET_CHAPTER_CHILD" // what the child does
	binEnv   = "SOCKET_CHAPTER_BIN"   // the program the "limited" child runs
)

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(booktest.Run(m))
	case "fds":
		childListFDs()
	case "wait":
		// Hold whatever was inherited until the parent closes our stdin.
		os.Stdin.Read(make([]byte, 1))
	case "emfile":
		os.Exit(childEMFILE())
	case "limited":
		childLimited()
	case "soft":
		// Lower only the soft limit, then start a fresh Go program: this one.
		var lim syscall.Rlimit
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		lim.Cur = 64
		syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)
		os.Setenv(childEnv, "rlimit")
		fmt.Println(syscall.Exec(os.Args[0], os.Args[:1], os.Environ()))
		os.Exit(1)
	case "rlimit":
		var lim syscall.Rlimit
		syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
		fmt.Printf("soft %d hard %d\n", lim.Cur, lim.Max)
	}
	os.Exit(0)
}

// asReader makes the programs the transcript tests start see what a reader's
// program sees in a terminal, whatever machine the tests run on.
func asReader(t *testing.T) {
	t.Helper()
	// A descriptor this test inherited without close-on-exec would be passed
	// on to every program it starts (exactly the leak the chapter is about).
	for name := range booktest.OpenFDs(t) {
		if fd, err := strconv.Atoi(name); err == nil && fd > 2 {
			unix.CloseOnExec(fd)
		}
	}
}

// The //go:debug containermaxprocs=0 line in main.go, with GODEBUG unset,
// is what makes the first socket 3 on a machine whose cgroup has CPU limit
// files: GODEBUG=containermaxprocs=1 (which overrides the line) shows the
// files the runtime would otherwise keep open, and the socket numbers move.
func TestDirectiveFirstSocket3(t *testing.T) {
	asReader(t)
	bin := booktest.Build(t)
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "GODEBUG=") })
	runWith := func(extra ...string) string {
		cmd := exec.Command(bin, "-q")
		cmd.Env = append(slices.Clip(env), extra...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		return string(out)
	}
	rowRE := regexp.MustCompile(`(?m)^(\d+) +2 \(AF_INET\) +1 \(SOCK_STREAM\)`)
	cgroupRE := regexp.MustCompile(`(?m)^  \d+ -> /sys/fs/cgroup/.*$`)

	plain := runWith()
	if m := rowRE.FindStringSubmatch(plain); m == nil || m[1] != "3" {
		t.Errorf("with GODEBUG unset the first socket is not 3:\n%s", plain)
	}
	if files := cgroupRE.FindAllString(plain, -1); files != nil {
		t.Errorf("with GODEBUG unset the runtime kept cgroup files open: %q", files)
	}

	without := runWith("GODEBUG=containermaxprocs=1")
	files := cgroupRE.FindAllString(without, -1)
	if files == nil {
		t.Logf("this machine's cgroup has no CPU limit files: the first socket is 3 either way")
		return
	}
	want := strconv.Itoa(3 + len(files))
	if m := rowRE.FindStringSubmatch(without); m == nil || m[1] != want {
		t.Errorf("with the runtime holding %q, the first socket is not %s:\n%s", files, want, without)
	}
}

// Inode numbers and PIDs change from run to run; the transcripts show them
// renumbered in order of appearance.
const (
	inodeRE = `(?:socket|pipe):\[(\d+)\]`
	pidRE   = `(?:pid |pid=|/proc/|kill )(\d+)`
)

func TestTranscript(t *testing.T) {
	asReader(t)
	s := booktest.New(t)
	s.Renumber(inodeRE, 100001)
	p := s.Run("terminal")
	if code := p.ExitCode(); code != 0 {
		t.Fatalf("exit status %d:\n%s", code, p.Output())
	}
	out := p.Output()
	// What the chapter says about this run, checked even with -update.
	for _, want := range []string{
		"socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, 0) = 3\n", // 0, 1 and 2 are taken: 3 is the lowest free
		"socket(AF_UNIX, SOCK_DGRAM|SOCK_CLOEXEC, 0) = 8\n",
		"  0 -> /dev/null\n",
		"closed 5; the next socket got 5 again",
		"socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_UDP) = -1 EPROTONOSUPPORT (Protocol not supported)\n",
		"close(3) = 0\nclose(4) = 0\nclose(5) = 0\nclose(6) = 0\nclose(7) = 0\nclose(8) = 0\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Every descriptor above 2 in the listing is one of the program's sockets.
	if m := regexp.MustCompile(`(?m)^  ([3-9]|\d\d+) -> (.*)$`).FindAllStringSubmatch(out, -1); len(m) != 6 {
		t.Errorf("listing shows %d descriptors above 2, want the 6 sockets:\n%s", len(m), out)
	} else {
		for _, l := range m {
			if !strings.HasPrefix(l[2], "socket:[") {
				t.Errorf("descriptor %s -> %s, want a socket", l[1], l[2])
			}
		}
	}
	s.Check("run")
}

// TestHold runs the program as the chapter's "see it yourself" does and looks
// at it from outside, as ls -l /proc/PID/fd and ss would.
func TestHold(t *testing.T) {
	asReader(t)
	s := booktest.New(t)
	s.Renumber(inodeRE, 100001)
	s.Renumber(pidRE, 4242)
	p := s.Spawn("terminal", "-q", "-hold")
	p.WaitFor("closes them and exits\n")
	pid := regexp.MustCompile(`in pid (\d+)`).FindStringSubmatch(p.Output())[1]

	// ls -l /proc/PID/fd: descriptors 3 to 8 are the six sockets.
	inodes := map[int]string{}
	for fd := 3; fd <= 8; fd++ {
		target, err := os.Readlink(fmt.Sprintf("/proc/%s/fd/%d", pid, fd))
		m := regexp.MustCompile(`^socket:\[(\d+)\]$`).FindStringSubmatch(target)
		if err != nil || m == nil {
			t.Fatalf("/proc/%s/fd/%d -> %q, %v; want socket:[INODE]", pid, fd, target, err)
		}
		inodes[fd] = m[1]
	}
	// ss and /proc/net list the sockets in the kernel's lookup tables. The two
	// AF_UNIX sockets (7 and 8) are there, unnamed; the four IP sockets are in
	// no table until bind or connect puts them in one.
	unixPaths := procNetInodes(t, "unix", 6, 7)
	for fd, inode := range inodes {
		path, listed := unixPaths[inode]
		if want := fd >= 7; listed != want {
			t.Errorf("socket %d (inode %s) in /proc/net/unix: %v, want %v", fd, inode, listed, want)
		} else if listed && path != "" {
			t.Errorf("socket %d has a name, %q; want none", fd, path)
		}
	}
	for _, table := range []string{"tcp", "tcp6", "udp", "udp6"} {
		listed := procNetInodes(t, table, 9, -1)
		for fd, inode := range inodes {
			if _, ok := listed[inode]; ok {
				t.Errorf("socket %d (inode %s) is in /proc/net/%s; want an unbound socket in no table", fd, inode, table)
			}
		}
	}
	if ssPath, err := exec.LookPath("ss"); err == nil {
		for _, c := range []struct {
			args []string
			want int
		}{{[]string{"-xap"}, 2}, {[]string{"-tuap"}, 0}} {
			out, err := exec.Command(ssPath, c.args...).Output()
			if err != nil {
				t.Fatalf("ss %s: %v", c.args[0], err)
			}
			if got := strings.Count(string(out), "pid="+pid+","); got != c.want {
				t.Errorf("ss %s shows %d of the program's sockets, want %d:\n%s", c.args[0], got, c.want, out)
			}
		}
	}

	p.Interrupt()
	if code := p.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGINT, want 0", code)
	}
	s.Check("hold")
}

// TestHoldSIGTERM: kill PID (SIGTERM) ends -hold as Ctrl-C does: every socket
// is closed, and the exit status is 0.
func TestHoldSIGTERM(t *testing.T) {
	asReader(t)
	p := booktest.New(t).Spawn("terminal", "-hold")
	p.WaitFor("closes them and exits\n")
	held := len(p.Output())
	p.Signal(syscall.SIGTERM)
	if code := p.ExitCode(); code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0", code)
	}
	if got, want := p.Output()[held:], "close(3) = 0\nclose(4) = 0\nclose(5) = 0\nclose(6) = 0\nclose(7) = 0\nclose(8) = 0\n"; got != want {
		t.Errorf("after SIGTERM the program printed %q, want %q", got, want)
	}
}

// procNetInodes reads /proc/net/TABLE and returns the inode in column
// inodeCol of each line, mapped to the text in column pathCol (or "").
func procNetInodes(t *testing.T, table string, inodeCol, pathCol int) map[string]string {
	t.Helper()
	data, err := os.ReadFile("/proc/net/" + table)
	if errors.Is(err, os.ErrNotExist) {
		return nil // no IPv6 on this machine, say
	} else if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, line := range strings.Split(string(data), "\n")[1:] {
		f := strings.Fields(line)
		if len(f) > inodeCol {
			path := ""
			if pathCol >= 0 && len(f) > pathCol {
				path = f[pathCol]
			}
			m[f[inodeCol]] = path
		}
	}
	return m
}

// TestErrorExit runs the program with a descriptor limit of 6: three sockets
// fit after 0, 1 and 2, the fourth fails. The error names the call, goes to
// stderr, the exit status is 1, and the sockets already open are closed.
func TestErrorExit(t *testing.T) {
	asReader(t)
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=limited", binEnv+"="+booktest.Build(t))
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if code := cmd.ProcessState.ExitCode(); code != 1 {
		t.Fatalf("exit status %d (%v), want 1; stderr:\n%s", code, err, stderr.String())
	}
	if want := "socket AF_INET6 SOCK_DGRAM: too many open files\n"; stderr.String() != want {
		t.Errorf("stderr = %q, want %q", stderr.String(), want)
	}
	if want := "socket(AF_INET6, SOCK_DGRAM|SOCK_CLOEXEC, 0) = -1 EMFILE (Too many open files)\n" +
		"close(3) = 0\nclose(4) = 0\nclose(5) = 0\n"; !strings.HasSuffix(stdout.String(), want) {
		t.Errorf("stdout ends\n%s\nwant it to end\n%s", stdout.String(), want)
	}
}

func childLimited() {
	// A hard limit too, or the Go runtime of the program would raise the
	// soft one back up when it starts.
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: 6, Max: 6}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	bin := os.Getenv(binEnv)
	err := syscall.Exec(bin, []string{bin}, os.Environ())
	fmt.Fprintln(os.Stderr, err)
	os.Exit(2)
}

// TestRun runs the program in this test process, whose descriptor table is
// fuller than a fresh program's: the sockets still get the lowest free numbers.
func TestRun(t *testing.T) {
	checkFDs(t)
	free := lowestFree(t, 6)
	var out strings.Builder
	if err := run(booktest.Context(t), config{}, &out); err != nil {
		t.Fatal(err)
	}
	created := regexp.MustCompile(`(?m)^socket\((\w+), (\w+)\|SOCK_CLOEXEC, 0\) = (\d+)$`).FindAllStringSubmatch(out.String(), -1)
	if len(created) != 7 {
		t.Fatalf("%d sockets created, want 6 and 1 more after a close:\n%s", len(created), out.String())
	}
	for i, c := range created[:6] {
		if c[3] != strconv.Itoa(free[i]) {
			t.Errorf("socket %d got %s, want %d, the lowest free number", i+1, c[3], free[i])
		}
	}
	if c := created[6]; c[1] != "AF_INET6" || c[2] != "SOCK_STREAM" || c[3] != strconv.Itoa(free[2]) {
		t.Errorf("after closing %d, got %v; want AF_INET6 SOCK_STREAM at %d", free[2], c[1:], free[2])
	}
	for _, fd := range free {
		if !strings.Contains(out.String(), fmt.Sprintf("close(%d) = 0\n", fd)) {
			t.Errorf("no close(%d) = 0 in the output", fd)
		}
	}
}

func TestQuiet(t *testing.T) {
	checkFDs(t)
	var out strings.Builder
	if err := run(booktest.Context(t), config{quiet: true}, &out); err != nil {
		t.Fatal(err)
	}
	if m := regexp.MustCompile(`(?m)^\w+\(.*\) = `).FindString(out.String()); m != "" {
		t.Errorf("-q printed a system call: %q", m)
	}
	for _, want := range []string{"fd  SO_DOMAIN", "/proc/self/fd:\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("-q output lacks %q", want)
		}
	}
}

// TestHoldReturns: with -hold, run waits for the context (SIGINT or SIGTERM
// in main), then closes every socket and returns nil.
func TestHoldReturns(t *testing.T) {
	checkFDs(t)
	ctx, cancel := context.WithCancel(booktest.Context(t))
	cancel()
	var out strings.Builder
	if err := run(ctx, config{hold: true}, &out); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("holding 6 sockets open in pid %d", os.Getpid()); !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q", want)
	}
	if n := strings.Count(out.String(), ") = 0\n"); n < 7 {
		t.Errorf("%d calls returned 0; want at least the 7 closes", n)
	}
}

// checkFDs is booktest.CheckFDs, after starting the Go runtime's poller: the
// first pipe or net socket a process makes opens its descriptors (an epoll
// and an eventfd), which then stay open for good.
func checkFDs(t *testing.T) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
	w.Close()
	booktest.CheckFDs(t)
}

// socket is unix.Socket for tests: it fails the test on error and closes the
// socket when the test ends.
func socket(t *testing.T, domain, typ, proto int) int {
	t.Helper()
	fd, err := unix.Socket(domain, typ, proto)
	if err != nil {
		t.Fatalf("socket(%d, %#x, %d): %v", domain, typ, proto, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// TestWhatTheKernelSays: SO_DOMAIN, SO_TYPE and SO_PROTOCOL report what was
// asked for; protocol 0 resolves to TCP (6) for stream and UDP (17) for
// datagram IP sockets, and to 0 for AF_UNIX; SO_TYPE does not include
// SOCK_CLOEXEC; a new socket has no local address and no peer.
func TestWhatTheKernelSays(t *testing.T) {
	checkFDs(t)
	for _, c := range []struct {
		domain, typ, proto int
		wantProto          int
		wantLocal          string
	}{
		{unix.AF_INET, unix.SOCK_STREAM, 0, 6, "0.0.0.0:0"},
		{unix.AF_INET, unix.SOCK_DGRAM, 0, 17, "0.0.0.0:0"},
		{unix.AF_INET6, unix.SOCK_STREAM, 0, 6, "[::]:0"},
		{unix.AF_INET6, unix.SOCK_DGRAM, 0, 17, "[::]:0"},
		{unix.AF_UNIX, unix.SOCK_STREAM, 0, 0, "(unnamed)"},
		{unix.AF_UNIX, unix.SOCK_DGRAM, 0, 0, "(unnamed)"},
		// Naming the default explicitly makes the same socket.
		{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_TCP, 6, "0.0.0.0:0"},
		{unix.AF_INET6, unix.SOCK_DGRAM, unix.IPPROTO_UDP, 17, "[::]:0"},
	} {
		name := fmt.Sprintf("%s/%s/%d", domainName(c.domain), typeName(c.typ), c.proto)
		fd := socket(t, c.domain, c.typ|unix.SOCK_CLOEXEC, c.proto)
		for _, o := range []struct {
			opt, want int
			name      string
		}{
			{unix.SO_DOMAIN, c.domain, "SO_DOMAIN"},
			{unix.SO_TYPE, c.typ, "SO_TYPE"},
			{unix.SO_PROTOCOL, c.wantProto, "SO_PROTOCOL"},
		} {
			if v, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, o.opt); err != nil || v != o.want {
				t.Errorf("%s: %s = %d, %v; want %d", name, o.name, v, err, o.want)
			}
		}
		sa, err := unix.Getsockname(fd)
		if err != nil || addrString(sa) != c.wantLocal {
			t.Errorf("%s: getsockname = %s, %v; want %s", name, addrString(sa), err, c.wantLocal)
		}
		// The kernel returns only the family for an unnamed socket, and x/sys
		// makes that the name "@" (which addrString shows as unnamed).
		if u, ok := sa.(*unix.SockaddrUnix); ok && u.Name != "@" {
			t.Errorf("%s: x/sys names an unnamed socket %q; the chapter says \"@\"", name, u.Name)
		}
		if _, err := unix.Getpeername(fd); !errors.Is(err, unix.ENOTCONN) {
			t.Errorf("%s: getpeername: %v, want ENOTCONN", name, err)
		}
	}
}

// TestCloseOnExec: SOCK_CLOEXEC sets FD_CLOEXEC and without it the flag is
// clear; a program this one execs gets the descriptors without the flag.
func TestCloseOnExec(t *testing.T) {
	checkFDs(t)
	kept := socket(t, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	leaked := socket(t, unix.AF_INET, unix.SOCK_STREAM, 0)
	for _, c := range []struct {
		fd, want int
	}{{kept, unix.FD_CLOEXEC}, {leaked, 0}} {
		if flags, err := unix.FcntlInt(uintptr(c.fd), unix.F_GETFD, 0); err != nil || flags != c.want {
			t.Errorf("fcntl(%d, F_GETFD) = %d, %v; want %d", c.fd, flags, err, c.want)
		}
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=fds")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("%d -> %s\n", leaked, target(t, leaked)); !strings.Contains(string(out), want) {
		t.Errorf("the child lacks %q; it has\n%s", want, out)
	}
	if s := target(t, kept); strings.Contains(string(out), s) {
		t.Errorf("the child has %s, created with SOCK_CLOEXEC:\n%s", s, out)
	}
}

func childListFDs() {
	entries, _ := os.ReadDir("/proc/self/fd")
	for _, e := range entries {
		if target, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil {
			fmt.Printf("%s -> %s\n", e.Name(), target)
		}
	}
}

// TestLeakKeepsPort is why close-on-exec matters: a listening socket that
// leaked into a child keeps its port busy after the parent closes it, for as
// long as the child lives.
func TestLeakKeepsPort(t *testing.T) {
	checkFDs(t)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM, 0) // no SOCK_CLOEXEC
	if err != nil {
		t.Fatal(err)
	}
	parentHasIt := true
	t.Cleanup(func() {
		if parentHasIt {
			unix.Close(fd)
		}
	})
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := sa.(*unix.SockaddrInet4)
	child := exec.Command(os.Args[0])
	child.Env = append(os.Environ(), childEnv+"=wait")
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	err = child.Start()
	unix.Close(fd) // the parent is done with it, child or not
	parentHasIt = false
	if err != nil {
		t.Fatal(err)
	}

	bindAgain := func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		return unix.Bind(fd, &unix.SockaddrInet4{Addr: addr.Addr, Port: addr.Port})
	}
	if err := bindAgain(); !errors.Is(err, unix.EADDRINUSE) {
		t.Errorf("bind to port %d while the child lives: %v, want EADDRINUSE", addr.Port, err)
	}
	stdin.Close()
	if err := child.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := bindAgain(); err != nil {
		t.Errorf("bind to port %d after the child exited: %v, want success", addr.Port, err)
	}
}

// TestNetPackage: Go's own net package makes its sockets close-on-exec and
// non-blocking, and SOCK_NONBLOCK shows as O_NONBLOCK in F_GETFL.
func TestNetPackage(t *testing.T) {
	// The first net socket starts the runtime's poller, whose descriptors
	// stay open for good: start it before counting descriptors.
	warm, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	warm.Close()
	booktest.CheckFDs(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	for _, c := range []syscall.Conn{ln.(*net.TCPListener), pc.(*net.UDPConn)} {
		raw, err := c.SyscallConn()
		if err != nil {
			t.Fatal(err)
		}
		raw.Control(func(fd uintptr) {
			fdFlags, err1 := unix.FcntlInt(fd, unix.F_GETFD, 0)
			flFlags, err2 := unix.FcntlInt(fd, unix.F_GETFL, 0)
			if err1 != nil || err2 != nil || fdFlags&unix.FD_CLOEXEC == 0 || flFlags&unix.O_NONBLOCK == 0 {
				t.Errorf("%T: F_GETFD %#x, F_GETFL %#x (%v, %v); want FD_CLOEXEC and O_NONBLOCK", c, fdFlags, flFlags, err1, err2)
			}
		})
	}

	// A call that would wait returns EAGAIN at once on a non-blocking socket:
	// here a read with nothing to read.
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pair[0])
	defer unix.Close(pair[1])
	if n, err := unix.Read(pair[0], make([]byte, 1)); err != unix.EAGAIN {
		t.Errorf("read on an empty non-blocking socket = %d, %v; want EAGAIN", n, err)
	}

	for _, c := range []struct {
		typ  int
		want int
	}{{unix.SOCK_STREAM | unix.SOCK_NONBLOCK, unix.O_NONBLOCK}, {unix.SOCK_STREAM, 0}} {
		fd := socket(t, unix.AF_INET, c.typ|unix.SOCK_CLOEXEC, 0)
		if fl, err := unix.FcntlInt(uintptr(fd), unix.F_GETFL, 0); err != nil || fl&unix.O_NONBLOCK != c.want {
			t.Errorf("type %#x: F_GETFL = %#x, %v; want O_NONBLOCK %#x", c.typ, fl, err, c.want)
		}
	}
}

// lowestFree is the n lowest descriptor numbers this process has free.
func lowestFree(t *testing.T, n int) []int {
	t.Helper()
	open := booktest.OpenFDs(t)
	var free []int
	for fd := 0; len(free) < n; fd++ {
		if _, ok := open[strconv.Itoa(fd)]; !ok {
			free = append(free, fd)
		}
	}
	return free
}

func target(t *testing.T, fd int) string {
	t.Helper()
	s, err := os.Readlink(fdPath(fd))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestLowestFree: the kernel hands out the lowest free number, so a closed
// number comes back at once, for a new socket with a new inode.
func TestLowestFree(t *testing.T) {
	checkFDs(t)
	free := lowestFree(t, 3)
	a := socket(t, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	b, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	c := socket(t, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if got := []int{a, b, c}; !slices.Equal(got, free) {
		t.Errorf("sockets got %v, want the lowest free %v", got, free)
	}
	before := target(t, b)
	unix.Close(b)
	d := socket(t, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if d != b {
		t.Errorf("after closing %d the next socket got %d, want %d", b, d, b)
	}
	if after := target(t, d); after == before {
		t.Errorf("descriptor %d is %s both before and after: want a new socket", d, after)
	}
}

// TestProcFD: /proc/self/fd/N links to socket:[INODE], and fstat says the
// descriptor is a socket (S_IFSOCK) with that inode number.
func TestProcFD(t *testing.T) {
	checkFDs(t)
	fd := socket(t, unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	m := regexp.MustCompile(`^socket:\[(\d+)\]$`).FindStringSubmatch(target(t, fd))
	if m == nil {
		t.Fatalf("/proc/self/fd/%d -> %s, want socket:[INODE]", fd, target(t, fd))
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		t.Errorf("fstat mode %#o, want S_IFSOCK", st.Mode)
	}
	if strconv.FormatUint(st.Ino, 10) != m[1] {
		t.Errorf("fstat inode %d, /proc/self/fd says %s", st.Ino, m[1])
	}
}

// TestErrors: a family the kernel does not have is EAFNOSUPPORT; a protocol
// that does not fit the type is EPROTONOSUPPORT; the program's error and
// narration name the call the way the chapter shows.
func TestErrors(t *testing.T) {
	checkFDs(t)
	for _, c := range []struct {
		domain, typ, proto int
		want               unix.Errno
	}{
		{unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_UDP, unix.EPROTONOSUPPORT},
		{unix.AF_INET, unix.SOCK_DGRAM, unix.IPPROTO_TCP, unix.EPROTONOSUPPORT},
		{unix.AF_INET6, unix.SOCK_STREAM, unix.IPPROTO_UDP, unix.EPROTONOSUPPORT},
		{unix.AF_MAX, unix.SOCK_STREAM, 0, unix.EAFNOSUPPORT}, // past the last family there is
	} {
		fd, err := unix.Socket(c.domain, c.typ|unix.SOCK_CLOEXEC, c.proto)
		if err != c.want {
			t.Errorf("socket(%d, %d, %d) = %d, %v; want %v", c.domain, c.typ, c.proto, fd, err, unix.ErrnoName(c.want))
		}
		if err == nil {
			unix.Close(fd)
		}
	}

	var out strings.Builder
	_, err := newSocket(newNarrator(&out, false), unix.AF_INET, unix.SOCK_STREAM, unix.IPPROTO_UDP)
	if want := "socket AF_INET SOCK_STREAM IPPROTO_UDP: protocol not supported"; err == nil || err.Error() != want {
		t.Errorf("error %v, want %q", err, want)
	}
	if !errors.Is(err, unix.EPROTONOSUPPORT) {
		t.Errorf("errors.Is(%v, EPROTONOSUPPORT) = false", err)
	}
	if want := "socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_UDP) = -1 EPROTONOSUPPORT (Protocol not supported)\n"; out.String() != want {
		t.Errorf("narration %q, want %q", out.String(), want)
	}
}

// TestEMFILE: descriptors are numbered from 0 to RLIMIT_NOFILE-1; with all of
// them taken, socket fails with EMFILE, for root too. It runs in a child so
// that this process keeps its limit.
func TestEMFILE(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=emfile")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if want := "every descriptor below 16 in use; socket = EMFILE\n"; string(out) != want {
		t.Errorf("child: %q, want %q", out, want)
	}
}

// TestGoRaisesSoftLimit: a Go program raises its own soft RLIMIT_NOFILE to
// one below the hard limit as it starts, so ulimit -n is not what it runs with.
func TestGoRaisesSoftLimit(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), childEnv+"=soft")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	var soft, hard uint64
	if _, err := fmt.Sscanf(string(out), "soft %d hard %d\n", &soft, &hard); err != nil {
		t.Fatalf("child printed %q: %v", out, err)
	}
	if hard > 65 && soft != hard-1 {
		t.Errorf("started with soft limit 64: soft %d, hard %d; want soft = hard-1", soft, hard)
	}
}

func childEMFILE() int {
	const limit = 16
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Println(err)
		return 1
	}
	// Only the soft limit: root could raise it again, but it binds root too.
	lim.Cur = limit
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Println(err)
		return 1
	}
	var err error
	for i := 0; i <= limit; i++ {
		if _, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
			break
		}
	}
	for fd := 0; fd < limit; fd++ {
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
			fmt.Printf("descriptor %d free, yet socket = %v\n", fd, err)
			return 1
		}
	}
	if !errors.Is(err, unix.EMFILE) {
		fmt.Printf("socket = %v, want EMFILE\n", err)
		return 1
	}
	fmt.Printf("every descriptor below %d in use; socket = %s\n", limit, unix.ErrnoName(err.(unix.Errno)))
	return 0
}

// TestDup: dup makes a second descriptor for the same socket (same inode),
// without close-on-exec unless asked with F_DUPFD_CLOEXEC; the socket lives
// on until its last descriptor is closed.
func TestDup(t *testing.T) {
	checkFDs(t)
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	inode := target(t, fd)
	dup, err := unix.Dup(fd)
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(dup) })
	dupCloexec, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		unix.Close(fd)
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(dupCloexec) })
	for _, c := range []struct{ fd, want int }{{dup, 0}, {dupCloexec, unix.FD_CLOEXEC}} {
		if got := target(t, c.fd); got != inode {
			t.Errorf("descriptor %d -> %s, want the same socket as %d, %s", c.fd, got, fd, inode)
		}
		if flags, err := unix.FcntlInt(uintptr(c.fd), unix.F_GETFD, 0); err != nil || flags != c.want {
			t.Errorf("fcntl(%d, F_GETFD) = %d, %v; want %d", c.fd, flags, err, c.want)
		}
	}
	unix.Close(fd)
	if v, err := unix.GetsockoptInt(dup, unix.SOL_SOCKET, unix.SO_PROTOCOL); err != nil || v != 6 {
		t.Errorf("after closing %d, SO_PROTOCOL through %d = %d, %v; want 6", fd, dup, v, err)
	}
}
