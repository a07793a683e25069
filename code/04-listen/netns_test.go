//go:build linux

package main

import (
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

// The tests in this file change sysctls and read counters that belong to a
// network namespace. They make one of their own, so that the machine's
// settings are never touched and no other socket on the machine moves a
// counter they read.

// inNetns moves the calling test's goroutine into a new network namespace,
// with loopback up, until the test ends. The goroutine stays locked to its
// thread meanwhile, so no other goroutine runs in the namespace; when the
// test ends the thread goes back to the namespace it came from (it may be
// the process's main thread, whose namespace /proc/net shows for every
// thread). Sockets the test creates, sysctls it writes under /proc/sys/net
// and counters it reads from /proc/thread-self/net are the namespace's.
// It needs root.
func inNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates a network namespace")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs ip(8), from iproute2")
	}
	runtime.LockOSThread()
	orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	// Cleanups run on the test's goroutine, so on this thread, and after
	// those registered later: the namespace's sockets are closed by then.
	t.Cleanup(func() {
		// A thread that cannot go back stays locked; the runtime ends
		// it with its goroutine.
		if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		unix.Close(orig)
	})
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		t.Fatalf("unshare(CLONE_NEWNET): %v", err)
	}
	// A process started from this thread is in its namespace.
	if out, err := exec.Command("ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		t.Fatalf("ip link set lo up: %v\n%s", err, out)
	}
}

// setSysctl writes a sysctl of the calling thread's network namespace.
func setSysctl(t *testing.T, name string, v int) {
	t.Helper()
	if err := os.WriteFile("/proc/sys/net/ipv4/"+name, []byte(strconv.Itoa(v)), 0); err != nil {
		t.Fatal(err)
	}
}

// nsCounter reads TcpExt NAME for the calling thread's network namespace.
func nsCounter(t *testing.T, name string) int {
	t.Helper()
	data, err := os.ReadFile("/proc/thread-self/net/netstat")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	for i := 0; i+1 < len(lines); i += 2 {
		names, values := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j, n := range names {
			if names[0] == "TcpExt:" && n == name && j < len(values) {
				v, _ := strconv.Atoi(values[j])
				return v
			}
		}
	}
	t.Fatalf("no TcpExt %s", name)
	return 0
}

// nsStates counts the lines of the namespace's /proc/net/tcp in state st
// (hex, as the file shows it: 02 SYN_SENT, 03 SYN_RECV) whose local (or,
// if !local, remote) port is port.
func nsStates(t *testing.T, port int, st string, local bool) int {
	t.Helper()
	data, err := os.ReadFile("/proc/thread-self/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	col, hex := 2, ":"+strings.ToUpper(strconv.FormatInt(int64(port)+0x10000, 16)[1:])
	if local {
		col = 1
	}
	n := 0
	for _, line := range strings.Split(string(data), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 3 && strings.HasSuffix(f[col], hex) && f[3] == st {
			n++
		}
	}
	return n
}

// settle waits until no client in fds is in SYN_SENT any more or, when the
// server's kernel drops SYNs, until the ones that will complete have: each
// of want connections out of SYN_SENT.
func settle(t *testing.T, fds []int, want int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		done := 0
		for _, fd := range fds {
			if info, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO); err == nil && info.State != unix.BPF_TCP_SYN_SENT {
				done++
			}
		}
		if done >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d connections out of SYN_SENT after 15 s, want %d", done, len(fds), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSynQueueCap: the backlog caps the SYN queue too, at backlog+1
// half-open connections, whatever tcp_max_syn_backlog says. TCP_DEFER_ACCEPT
// keeps each handshake in SYN_RECV (the kernel waits for data), so with
// backlog 2 and eight clients:
//
//   - with SYN cookies on (tcp_syncookies 1, the default), three wait in
//     SYN_RECV, and the next SYNs are answered with cookies: no state kept,
//     the connection made when the ACK comes back, straight into the accept
//     queue, which then holds three; the last two SYNs find the accept queue
//     full and are dropped (TcpExtTCPReqQFullDoCookies counts five SYNs).
//   - with cookies off, three wait in SYN_RECV and the other five SYNs are
//     dropped: nothing reaches the accept queue.
func TestSynQueueCap(t *testing.T) {
	for _, cookies := range []int{1, 0} {
		t.Run("tcp_syncookies="+strconv.Itoa(cookies), func(t *testing.T) {
			booktest.CheckFDs(t)
			inNetns(t)
			setSysctl(t, "tcp_syncookies", cookies)
			maxSyn, err := os.ReadFile("/proc/sys/net/ipv4/tcp_max_syn_backlog")
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("tcp_max_syn_backlog = %s", strings.TrimSpace(string(maxSyn)))
			lfd, addr := listener(t, 2)
			if err := unix.SetsockoptInt(lfd, unix.SOL_TCP, unix.TCP_DEFER_ACCEPT, 30); err != nil {
				t.Fatal(err)
			}
			var fds []int
			for range 8 {
				fds = append(fds, dial(t, addr))
			}
			complete := 3 // the SYN queue's three
			if cookies == 1 {
				complete = 6 // and the accept queue's three
			}
			settle(t, fds, complete)
			queue, synSent := 0, 5
			if cookies == 1 {
				queue, synSent = 3, 2
			}
			if got := nsStates(t, addr.Port, "03", true); got != 3 {
				t.Errorf("%d connections in SYN_RECV, want 3: backlog 2 caps the SYN queue at 3", got)
			}
			if got := queued(t, lfd); got != queue {
				t.Errorf("accept queue %d, want %d", got, queue)
			}
			if got := nsStates(t, addr.Port, "02", false); got != synSent {
				t.Errorf("%d clients in SYN_SENT, want %d", got, synSent)
			}
			t.Logf("TCPReqQFullDoCookies %d, TCPReqQFullDrop %d, ListenOverflows %d",
				nsCounter(t, "TCPReqQFullDoCookies"), nsCounter(t, "TCPReqQFullDrop"), nsCounter(t, "ListenOverflows"))
			// Every SYN that found the SYN queue full: five, plus any
			// retransmission since of the two dropped ones.
			if got := nsCounter(t, "TCPReqQFullDoCookies"); cookies == 1 && got < 5 {
				t.Errorf("TcpExtTCPReqQFullDoCookies = %d, want at least 5", got)
			}
			if got := nsCounter(t, "TCPReqQFullDrop"); cookies == 0 && got < 5 {
				t.Errorf("TcpExtTCPReqQFullDrop = %d, want at least 5", got)
			}
		})
	}
}

// TestAbortOnOverflow: a handshake that got into the SYN queue while there
// was room, and whose ACK reaches a full accept queue. TCP_DEFER_ACCEPT
// makes that easy to arrange: the kernel completes a connection only when
// its first data arrives. With backlog 0 the accept queue holds one: B
// connects, then A connects and sends, and fills the queue; then B sends.
//
// With tcp_abort_on_overflow 1 the kernel answers B's segment with a reset.
// B's connect and write had succeeded; nothing tells B at once: its next
// read fails with ECONNRESET. With 0 (the default) the segment is dropped
// and B stays ESTABLISHED, to retransmit until there is room.
func TestAbortOnOverflow(t *testing.T) {
	for _, abort := range []int{1, 0} {
		t.Run("tcp_abort_on_overflow="+strconv.Itoa(abort), func(t *testing.T) {
			booktest.CheckFDs(t)
			inNetns(t)
			setSysctl(t, "tcp_abort_on_overflow", abort)
			lfd, addr := listener(t, 0)
			if err := unix.SetsockoptInt(lfd, unix.SOL_TCP, unix.TCP_DEFER_ACCEPT, 30); err != nil {
				t.Fatal(err)
			}
			b := socket(t)
			if err := unix.Connect(b, addr); err != nil {
				t.Fatal(err)
			}
			a := socket(t)
			if err := unix.Connect(a, addr); err != nil {
				t.Fatal(err)
			}
			if _, err := unix.Write(a, []byte("a")); err != nil {
				t.Fatal(err)
			}
			for deadline := time.Now().Add(15 * time.Second); queued(t, lfd) != 1; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("A's connection never reached the accept queue")
				}
			}
			before := nsCounter(t, "ListenOverflows")
			if n, err := unix.Write(b, []byte("b")); n != 1 || err != nil {
				t.Fatalf("B's write = %d, %v; want 1: it only queues the byte", n, err)
			}
			if abort == 0 {
				for deadline := time.Now().Add(15 * time.Second); nsCounter(t, "ListenOverflows") == before; time.Sleep(5 * time.Millisecond) {
					if time.Now().After(deadline) {
						t.Fatal("ListenOverflows did not grow: B's segment never met the full queue")
					}
				}
				if st := tcpState(t, b); st != unix.BPF_TCP_ESTABLISHED {
					t.Errorf("B's state %d after its segment was dropped, want ESTABLISHED", st)
				}
				return
			}
			// The reset arrives; B's socket closes, and B knows nothing yet.
			waitState(t, b, unix.BPF_TCP_CLOSE)
			if nsCounter(t, "ListenOverflows") == before {
				t.Error("ListenOverflows did not grow")
			}
			tv := unix.Timeval{Sec: 15}
			if err := unix.SetsockoptTimeval(b, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
				t.Fatal(err)
			}
			if n, err := unix.Read(b, make([]byte, 1)); err != unix.ECONNRESET {
				t.Errorf("B's next read = %d, %v; want ECONNRESET", n, err)
			}
		})
	}
}

func tcpState(t *testing.T, fd int) uint8 {
	t.Helper()
	info, err := unix.GetsockoptTCPInfo(fd, unix.SOL_TCP, unix.TCP_INFO)
	if err != nil {
		t.Fatal(err)
	}
	return info.State
}
