//go:build grade && linux

// The graders of chapter 11's exercises. Each runs the program as a real
// process (the chapter's own, or the copy BOOK_PROGRAM names) on 127.0.0.1,
// port 0, and plays the clients itself with Go's net package. They need no
// root: the only signals they send (SIGSTOP, SIGCONT) go to the server they
// started.
//
//	go run ./tools/grade 11
//	go run ./tools/grade -program DIR 11
//
// Every wait is bounded: booktest's, and the deadlines on the graders' own
// reads.
package grade

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/socket-to-server/book/tools/booktest"
)

// waitLimit bounds every wait of the graders' own.
const waitLimit = 5 * time.Second

// dial is a UDP socket of the grader's own, connected to the server at
// addr, closed when the test ends.
func dial(t *testing.T, addr string) *net.UDPConn {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialUDP("udp", nil, raddr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Exercise 1: with -bufsize 8 the server still echoes every datagram
// whole, the largest there is included, and each one once: a datagram of
// 24 bytes, one of 65,507, then a short one.
func TestExercise1WholeDatagrams(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server", "-q", "-bufsize", "8")
	c := dial(t, srv.Addr())
	buf := make([]byte, 65536)
	for _, size := range []int{24, 65507, 5} {
		msg := bytes.Repeat([]byte("x"), size-1)
		msg = append(msg, '\n')
		if _, err := c.Write(msg); err != nil {
			t.Fatalf("sending a datagram of %d bytes: %v", size, err)
		}
		c.SetReadDeadline(time.Now().Add(waitLimit))
		got, err := c.Read(buf)
		if err != nil {
			t.Fatalf("sent a datagram of %d bytes to the server started with -bufsize 8, and no echo came in %v (%v): peek with MSG_PEEK|MSG_TRUNC, which leaves the datagram in the queue; MSG_TRUNC alone takes it, and the next receive waits for another; the server's output:\n%s",
				size, waitLimit, err, srv.Output())
		}
		if got != size {
			t.Fatalf("sent a datagram of %d bytes to the server started with -bufsize 8, and the echo has %d: the server must peek at the size (MSG_PEEK|MSG_TRUNC: without MSG_TRUNC the peek returns only what fits) and receive into a buffer that big; its output:\n%s",
				size, got, srv.Output())
		}
	}
	srv.Interrupt()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("the server's exit status after Ctrl-C is %d, want 0; its output:\n%s", code, srv.Output())
	}
}

// waitStopped waits until the process pid is stopped (state T).
func waitStopped(t *testing.T, pid int) {
	t.Helper()
	for deadline := time.Now().Add(waitLimit); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			t.Fatal(err)
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && bytes.HasPrefix(stat[i:], []byte(") T")) {
			return
		}
	}
	t.Fatalf("the server (pid %d) did not stop after SIGSTOP", pid)
}

// Exercise 2: the server reports on stderr the datagrams the kernel
// dropped, as "dropped N datagrams", N counted since its last report. The
// grader stops the server, floods it, lets it go on, and sends a marked
// datagram until one is echoed; it does that twice, and then the server's
// reports must add up to what it sent less what came back.
func TestExercise2CountTheDrops(t *testing.T) {
	s := booktest.NewGrader(t)
	srv := s.Start("server", "-q")
	c := dial(t, srv.Addr())
	c.SetReadBuffer(8 << 20) // room for every echo, so that the grader loses none
	const flood = 5000
	sent, echoed := 0, 0
	buf := make([]byte, 64)
	for round := 1; round <= 2; round++ {
		srv.Send(syscall.SIGSTOP)
		waitStopped(t, srv.Pid())
		for range flood {
			if _, err := c.Write([]byte("flood\n")); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		srv.Send(syscall.SIGCONT)
		// Marked datagrams, one at a time, until the last one sent comes
		// back: by then the server has dealt with everything before it.
		for try := 1; ; try++ {
			mark := fmt.Sprintf("mark %d.%d\n", round, try)
			if _, err := c.Write([]byte(mark)); err != nil {
				t.Fatal(err)
			}
			sent++
			done := false
			for deadline := time.Now().Add(200 * time.Millisecond); !done; {
				c.SetReadDeadline(deadline)
				got, err := c.Read(buf)
				if errors.Is(err, os.ErrDeadlineExceeded) {
					break
				}
				if err != nil {
					t.Fatalf("reading the echoes: %v", err)
				}
				echoed++
				done = string(buf[:got]) == mark
			}
			if done {
				break
			}
			if try == 50 {
				t.Fatalf("50 marked datagrams got no echo; the server's output:\n%s", srv.Output())
			}
		}
		if sent == echoed {
			t.Fatalf("round %d: the kernel dropped nothing (%d sent, all echoed), so there is nothing to grade on this machine", round, sent)
		}
	}
	out := srv.Output()
	reports := regexp.MustCompile(`(?m)^dropped (\d+) datagrams$`).FindAllStringSubmatch(out, -1)
	total := 0
	for _, r := range reports {
		n, _ := strconv.Atoi(r[1])
		total += n
	}
	if total != sent-echoed {
		t.Fatalf("the grader sent %d datagrams in two floods and got %d back, so %d were dropped; the server's %d \"dropped N datagrams\" lines add up to %d: read the SO_RXQ_OVFL count (the socket's total so far) from recvmsg's control message, and report what it grew by since the last report; its output:\n%s",
			sent, echoed, sent-echoed, len(reports), total, tail(out))
	}
	srv.Interrupt()
	if code := srv.ExitCode(); code != 0 {
		t.Errorf("the server's exit status after Ctrl-C is %d, want 0; its output:\n%s", code, tail(out))
	}
}

// tail is the end of a long output: what a student needs to see.
func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 40 {
		return "…\n" + strings.Join(lines[len(lines)-40:], "\n")
	}
	return s
}
