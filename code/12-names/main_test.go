//go:build linux

package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/socket-to-server/book/tools/booktest"
)

// nsEnv is set in the environment of the test binary that TestMain started
// in namespaces of its own.
const nsEnv = "BOOK_12_NAMESPACES"

// TestMain runs the tests in a network namespace and a mount namespace of
// their own, so that no answer depends on the machine: loopback is the
// only link (port 8080 is free, and no query can leave), and the files a
// lookup reads are the tests' own, from testdata/, bind-mounted over
// /etc/hosts, /etc/services, /etc/nsswitch.conf and /etc/resolv.conf (and
// an empty file over /etc/gai.conf, which could change the order). Every
// process the tests start, Python and getent included, sees the same
// files. That needs root; otherwise the tests that need a known answer
// say so and skip.
func TestMain(m *testing.M) {
	if os.Getenv(nsEnv) == "" && os.Geteuid() == 0 {
		if code, ok := inNamespaces(); ok {
			os.Exit(code)
		}
	}
	os.Exit(booktest.Run(m))
}

// setupNS mounts the test's files in the new namespaces, then runs the
// test binary again: $0 is testdata's path, "$@" the command line.
const setupNS = `ip link set lo up || exit 125
for f in hosts services nsswitch.conf resolv.conf; do
	mount --bind "$0/etc-$f" "/etc/$f" || exit 125
done
if [ -e /etc/gai.conf ]; then mount --bind /dev/null /etc/gai.conf || exit 125; fi
exec "$@"
`

// inNamespaces runs this test binary again in new namespaces and returns
// its exit status; ok is false if the namespaces could not be made.
func inNamespaces() (code int, ok bool) {
	td, err := filepath.Abs("testdata")
	if err != nil {
		return 0, false
	}
	args := append([]string{"--net", "--mount", "--propagation", "private", "sh", "-c", setupNS, td}, os.Args...)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), nsEnv+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	var exit *exec.ExitError
	if err := cmd.Run(); err != nil && !errors.As(err, &exit) || cmd.ProcessState.ExitCode() == 125 {
		return 0, false // no unshare, or a mount failed: run here, skipping
	}
	return cmd.ProcessState.ExitCode(), true
}

// needNS skips a test that needs the namespaces TestMain makes.
func needNS(t *testing.T) {
	t.Helper()
	if os.Getenv(nsEnv) == "" {
		t.Skip("needs root, unshare and mount: runs in namespaces with a hosts file of its own")
	}
}

// lines are the lines of out that match re.
func lines(out, re string) []string {
	return regexp.MustCompile(`(?m)^`+re+`$`).FindAllString(out, -1)
}

// TestTranscript records the chapter's first run. localhost has two
// addresses here, ::1 and 127.0.0.1 in that order; the server listens on
// both, one socket each, and serves them from one poll. The first client
// resolves localhost too, tries ::1 first and connects there; the second
// asks for 127.0.0.1 by its address and the service by its name.
func TestTranscript(t *testing.T) {
	needNS(t)
	s := booktest.New(t)
	srv := s.Start("server", "-addr", "localhost:8080")
	c1 := s.Run("client", "-client", "-msg", "hello")
	srv.WaitForN("close(7) = 0", 1)
	c2 := s.Run("client", "-client", "-addr", "127.0.0.1:http-alt", "-msg", "over IPv4")
	srv.WaitForN("close(7) = 0", 2)

	// While it waits: its listening sockets, and the runtime's network
	// poller, which the resolver started (see TestDescriptors), and
	// nothing left of the two clients.
	fds := openFDs(t, srv.Pid())
	srv.Interrupt()
	s.Check("run")

	if got := lines(srv.Output(), `listening on .*`); strings.Join(got, "\n") != "listening on [::1]:8080\nlistening on 127.0.0.1:8080" {
		t.Errorf("listening lines %q, want [::1]:8080 then 127.0.0.1:8080", got)
	}
	for _, want := range []string{
		`LookupNetIP(ip, "localhost") = [::1 ::ffff:127.0.0.1]`,
		"setsockopt(3, IPPROTO_IPV6, IPV6_V6ONLY, 1) = 0",
		"poll([{fd=3, events=POLLIN}, {fd=6, events=POLLIN}], 2, -1) = 1 ([{fd=3, revents=POLLIN}])",
		"poll([{fd=3, events=POLLIN}, {fd=6, events=POLLIN}], 2, -1) = 1 ([{fd=6, revents=POLLIN}])",
		"poll([{fd=3, events=POLLIN}, {fd=6, events=POLLIN}], 2, -1) = 1 ([{fd=3, revents=POLLHUP}])",
	} {
		if !strings.Contains(srv.Output(), want) {
			t.Errorf("the server did not print %q:\n%s", want, srv.Output())
		}
	}
	if !strings.Contains(c1.Output(), "connect(3, [::1]:8080) = 0") || !strings.Contains(c2.Output(), "connect(3, 127.0.0.1:8080) = 0") {
		t.Errorf("want the first client on [::1]:8080 and the second on 127.0.0.1:8080:\n%s\n%s", c1.Output(), c2.Output())
	}
	if strings.Join(fds, " ") != "0 1 2 3 4 5 6" {
		t.Errorf("the waiting server's descriptors: %v, want 0 1 2 3 4 5 6", fds)
	}
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("server exit status %d after SIGINT, want 0", code)
	}
}

// openFDs lists the descriptors process pid has open, in order.
func openFDs(t *testing.T, pid int) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []int
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			fds = append(fds, n)
		}
	}
	slices.Sort(fds)
	out := make([]string, len(fds))
	for i, fd := range fds {
		out[i] = strconv.Itoa(fd)
	}
	return out
}

// TestFallback records the client that tries each address: with the
// server on 127.0.0.1 only, the connect to ::1 is refused, the client
// closes that socket and connects to 127.0.0.1. With nobody on either, it
// reports both errors and exits 1.
func TestFallback(t *testing.T) {
	needNS(t)
	s := booktest.New(t)
	srv := s.Start("server", "-addr", "127.0.0.1:8080")
	c := s.Run("client", "-client", "-addr", "localhost:http-alt", "-msg", "second try")
	srv.WaitFor("close(4) = 0")
	none := s.Run("client", "-client", "-addr", "localhost:8081")
	// 8081 is no client's port: the renumbering took it for one.
	s.Replace(`:40002\b`, ":8081")
	srv.Interrupt()
	s.Check("fallback")

	out := c.Output()
	refused := strings.Index(out, "connect(3, [::1]:8080) = -1 ECONNREFUSED")
	closed := strings.Index(out, "close(3) = 0")
	connected := strings.Index(out, "connect(3, 127.0.0.1:8080) = 0")
	if refused < 0 || closed < refused || connected < closed || c.ExitCode() != 0 {
		t.Errorf("want connect ::1 refused, close, connect 127.0.0.1, exit 0:\n%s", out)
	}
	if n := len(lines(none.Output(), `connect .*: connection refused`)); n != 2 || none.ExitCode() != 1 {
		t.Errorf("with nobody listening: want two refused connects in the error and exit 1:\n%s", none.Output())
	}
}

// TestDescriptors: the resolver used Go's net package, which started the
// runtime's network poller, an epoll instance and an eventfd; they are
// descriptors 4 and 5, between the two listening sockets.
func TestDescriptors(t *testing.T) {
	needNS(t)
	s := booktest.New(t)
	srv := s.Start("server", "-addr", "localhost:0")
	for fd, want := range map[string]string{"4": "anon_inode:[eventpoll]", "5": "anon_inode:[eventfd]"} {
		got, err := os.Readlink("/proc/" + strconv.Itoa(srv.Pid()) + "/fd/" + fd)
		if err != nil || got != want {
			t.Errorf("descriptor %s: %q (%v), want %q", fd, got, err, want)
		}
	}
	// With port 0 the second socket takes the port the kernel gave the first.
	got := lines(srv.Output(), `listening on .*`)
	if len(got) != 2 || got[0][strings.LastIndex(got[0], ":"):] != got[1][strings.LastIndex(got[1], ":"):] {
		t.Errorf("with port 0: want two listening lines with one port, got %q", got)
	}
	srv.Interrupt()
}
