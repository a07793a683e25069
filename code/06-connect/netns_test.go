//go:build linux

package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
	"golang.org/x/sys/unix"
)

// TestTimeWaitReuse: with net.ipv4.tcp_tw_reuse at its default, 2, Linux
// lets connect take a port whose last connection to the same server is in
// TIME_WAIT, on loopback, once a second has passed since that connection's
// last segment. To see it, the test needs an ephemeral range of one port,
// and ip_local_port_range belongs to a network namespace: the test makes one
// of its own (it needs root and ip(8)), so the host's range is untouched.
//
// In order: a connection from the one port is closed by the client, which
// leaves the port in TIME_WAIT; a second connect to the same server fails at
// once with EADDRNOTAVAIL; a later one, well before TIME_WAIT's 60 s are
// over, succeeds from the same port, and the TIME_WAIT entry is gone. With
// tcp_tw_reuse set to 0 the port stays taken (for the 3 s the test waits).
func TestTimeWaitReuse(t *testing.T) {
	booktest.CheckFDs(t)
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace with ip(8)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8), from iproute2")
	}
	ns := "connect-tw-" + strconv.Itoa(os.Getpid())
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ip("-n", ns, "link", "set", "lo", "up")

	inNetns(t, ns, func() {
		// Files under /proc/sys/net belong to the namespace of the thread
		// that opens them: this one's.
		if got := strings.TrimSpace(readFile(t, "/proc/sys/net/ipv4/tcp_tw_reuse")); got != "2" {
			t.Fatalf("net.ipv4.tcp_tw_reuse is %s in a new namespace, want the default, 2 (loopback only)", got)
		}
		const port = 50000
		if err := os.WriteFile("/proc/sys/net/ipv4/ip_local_port_range", []byte(fmt.Sprintf("%d %d", port, port)), 0); err != nil {
			t.Fatal(err)
		}

		lfd := mustSocket(t)
		defer unix.Close(lfd)
		srv := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: 8080}
		if err := unix.Bind(lfd, srv); err != nil {
			t.Fatal(err)
		}
		if err := unix.Listen(lfd, 5); err != nil {
			t.Fatal(err)
		}

		// The first connection takes the one port. The client closes
		// first, so its end is the one that waits in TIME_WAIT.
		c := mustSocket(t)
		if err := unix.Connect(c, srv); err != nil {
			t.Fatalf("first connect: %v", err)
		}
		local := sockname(t, c)
		if local != fmt.Sprintf("127.0.0.1:%d", port) {
			t.Fatalf("first connection from %s, want port %d, the whole range", local, port)
		}
		s, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(c)
		unix.Close(s)
		waitTCPState(t, port, "06", true) // 06 is TIME_WAIT in /proc/net/tcp

		// At once: the only port is taken, for this destination.
		if got, err := connectOnce(t, srv); err != unix.EADDRNOTAVAIL {
			t.Fatalf("connect right after the first connection closed: %s, %v; want EADDRNOTAVAIL", got, err)
		}
		// Then, well within TIME_WAIT's 60 s, the same port again; reusing
		// it ends the TIME_WAIT.
		c = connectWhenReused(t, srv, local)
		waitTCPState(t, port, "06", false)

		// The sysctl is the reason: with tcp_tw_reuse 0 the port stays
		// taken, here for 3 s; set back to 2, it is reused.
		s, _, err = unix.Accept4(lfd, unix.SOCK_CLOEXEC)
		if err != nil {
			t.Fatal(err)
		}
		unix.Close(c)
		unix.Close(s)
		waitTCPState(t, port, "06", true)
		setTWReuse(t, "0")
		for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
			if got, err := connectOnce(t, srv); err != unix.EADDRNOTAVAIL {
				t.Fatalf("connect with tcp_tw_reuse 0 while the port is in TIME_WAIT: %s, %v; want EADDRNOTAVAIL", got, err)
			}
		}
		setTWReuse(t, "2")
		unix.Close(connectWhenReused(t, srv, local))
	})
}

// connectOnce connects a new socket to srv and closes it, and returns the
// local address it had.
func connectOnce(t *testing.T, srv unix.Sockaddr) (string, error) {
	t.Helper()
	fd := mustSocket(t)
	defer unix.Close(fd)
	if err := unix.Connect(fd, srv); err != nil {
		return "", err
	}
	return sockname(t, fd), nil
}

// connectWhenReused connects to srv, again and again while connect fails
// with EADDRNOTAVAIL (for at most 15 s), and checks that the connection
// comes from local, the port in TIME_WAIT. It returns the socket.
func connectWhenReused(t *testing.T, srv unix.Sockaddr, local string) int {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		fd := mustSocket(t)
		err := unix.Connect(fd, srv)
		if err == nil {
			if got := sockname(t, fd); got != local {
				t.Errorf("connect after the wait came from %s, want the TIME_WAIT port again, %s", got, local)
			}
			return fd
		}
		unix.Close(fd)
		if err != unix.EADDRNOTAVAIL {
			t.Fatalf("connect while the port is in TIME_WAIT: %v, want EADDRNOTAVAIL until the kernel reuses it", err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("connect still fails with EADDRNOTAVAIL after 15 s: the kernel did not reuse the TIME_WAIT port")
		}
	}
}

func setTWReuse(t *testing.T, v string) {
	t.Helper()
	if err := os.WriteFile("/proc/sys/net/ipv4/tcp_tw_reuse", []byte(v), 0); err != nil {
		t.Fatal(err)
	}
}

// inNetns runs f with this goroutine's thread moved into the named network
// namespace (made by ip netns add). Sockets f creates belong to it for good.
func inNetns(t *testing.T, ns string, f func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(orig)
	target, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(target)
	if err := unix.Setns(target, unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	defer func() {
		// A thread that cannot go back stays locked, and the runtime ends
		// it with its goroutine.
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
	}()
	f()
}

func mustSocket(t *testing.T) int {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	return fd
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// waitTCPState waits until a socket with local port port is (present true)
// or is no longer (present false) in state, as /proc/thread-self/net/tcp
// shows the namespace of this thread.
func waitTCPState(t *testing.T, port int, state string, present bool) {
	t.Helper()
	suffix := fmt.Sprintf(":%04X", port)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		found := false
		for _, l := range strings.Split(readFile(t, "/proc/thread-self/net/tcp"), "\n")[1:] {
			if f := strings.Fields(l); len(f) > 3 && strings.HasSuffix(f[1], suffix) && f[3] == state {
				found = true
			}
		}
		if found == present {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %d in state %s: %v after 15 s, want %v", port, state, found, present)
		}
	}
}
